-- depends: 0035.anime-relations
-- Search speed (issue 10): the typo tier of api.search_anime reads single names, each a whole-name
-- key of data.catalog_search_keys (ending in '|'), through their own trigram index, instead of
-- the documents of all of a title's names (sql/api/catalog.sql says why).
create index catalog_search_keys_name_trgm_idx on data.catalog_search_keys using gin (key public.gin_trgm_ops)
  where key like '%|';
