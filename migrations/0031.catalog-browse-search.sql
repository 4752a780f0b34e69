-- depends: 0030.admin-complete
-- Catalog v1.1 browsing and search filters (issue 10, contract §15).
-- * data.anime.genre_ids / data.catalog_search.genre_ids: a title's genre ids (ascending), kept
--   by the triggers that keep data.anime.genres. The GIN index is on the search table: its
--   policy is `true`, so the non-LEAKPROOF array operators (@>) may use it for anon and
--   web_user, which they may not under anime_public_read. api.anime reads the column from there.
-- * data.genres.anime_count: published titles per genre, moved by a statement trigger on
--   data.catalog_search (which holds exactly the published titles), so GET /genres reads ~100
--   rows instead of counting a million.
-- * indexes for the documented browse filters: top rated, airing now, this season, each with the
--   id as the unique tiebreak of stable pages.
-- The triggers themselves are code (sql/private/catalog_search.sql, rebuilt on migrate).

alter table data.anime add column genre_ids integer[] not null default '{}';
alter table data.catalog_search add column genre_ids integer[] not null default '{}';
alter table data.genres add column anime_count integer not null default 0;

update data.anime a
   set genre_ids = g.ids
  from (select anime_id, array_agg(genre_id order by genre_id) as ids from data.anime_genres group by anime_id) g
 where g.anime_id = a.id;
update data.catalog_search s set genre_ids = a.genre_ids from data.anime a where a.id = s.anime_id;
update data.genres g
   set anime_count = c.n
  from (select x.id, count(*) as n from data.catalog_search s, unnest(s.genre_ids) x(id) group by x.id) c
 where c.id = g.id;

create index catalog_search_genre_ids_idx on data.catalog_search using gin (genre_ids);

drop index data.anime_published_score_idx;
create index anime_published_score_idx on data.anime (score desc nulls last, id)
  where state = 'published' and deleted_at is null;
drop index data.anime_published_season_idx;
create index anime_published_season_idx on data.anime (year, season, score desc nulls last, id)
  where state = 'published' and deleted_at is null;
create index anime_published_status_idx on data.anime (status, score desc nulls last, id)
  where state = 'published' and deleted_at is null;

-- the rank walk of api.search_anime filters by rating and genre ids now (genre names are
-- resolved to ids once per call), so the covering index carries those instead of the names
drop index data.catalog_search_rank_idx;
create index catalog_search_rank_idx on data.catalog_search (score desc nulls last, anime_id)
  include (doc, kind, status, year, season, rating, genre_ids);
