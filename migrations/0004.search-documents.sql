-- depends: 0003.catalog-browse-indexes
-- Search and paging that RLS does not turn into sequential scans (issue 7).
-- * data.anime.genres: the genre names stored on the title, kept by triggers on its genre links,
--   so a catalog page no longer runs a subquery per row (skipped offset rows included).
-- * data.catalog_search / data.catalog_search_keys: the published titles' search documents,
--   public data kept in the same transaction as every write of a title; their policy is `true`,
--   so pg_trgm's non-leakproof operators may use the indexes for anon and web_user.
-- The code layer (sql/private/catalog_search.sql) defines the same helpers and the triggers;
-- the helpers are created here too because the backfill needs them before the code layer runs.

alter table data.anime add column genres text[] not null default '{}';
update data.anime a
   set genres = g.names
  from (select ag.anime_id, array_agg(coalesce(g.name_ru, g.name) order by g.name) as names
          from data.anime_genres ag join data.genres g on g.id = ag.genre_id
         group by ag.anime_id) g
 where g.anime_id = a.id;

create or replace function private.search_normalize(value text) returns text
language sql immutable parallel safe set search_path = '' as $$
  select pg_catalog.btrim(pg_catalog.regexp_replace(
           pg_catalog.lower(public.unaccent('public.unaccent'::regdictionary, value)), '[|[:space:]]+', ' ', 'g'))
$$;

create or replace function private.search_document(title text, title_ru text, title_en text,
                                                   title_original text, synonyms text[]) returns text
language sql immutable parallel safe set search_path = '' as $$
  -- one unaccent and two regex passes for the whole title: names are joined first (a '|' inside
  -- a name becomes a space, inside a synonym it splits it), then normalised as search_normalize does
  select pg_catalog.regexp_replace(pg_catalog.regexp_replace(
           pg_catalog.lower(public.unaccent('public.unaccent'::regdictionary,
             '|' || concat_ws('|', replace(title, '|', ' '), replace(title_ru, '|', ' '), replace(title_en, '|', ' '),
                              replace(title_original, '|', ' '), pg_catalog.array_to_string(synonyms, '|')) || '|')),
           '[[:space:]]+', ' ', 'g'), ' ?\| ?', '|', 'g')
$$;

create table data.catalog_search (
  anime_id uuid primary key references data.anime (id) on delete cascade,
  doc      text not null,
  score    numeric(4, 2),
  kind     text,
  status   text,
  year     integer,
  season   text,
  rating   text,
  genres   text[] not null default '{}'
) with (fillfactor = 90, parallel_workers = 0);  -- room for HOT updates of the filter columns
create index catalog_search_doc_trgm_idx on data.catalog_search using gin (doc public.gin_trgm_ops);
create index catalog_search_rank_idx on data.catalog_search (score desc nulls last, anime_id)
  include (doc, kind, status, year, season, genres);  -- the rank walk of api.search_anime reads only this index
alter table data.catalog_search enable row level security;
create policy catalog_search_public_read on data.catalog_search for select to anon, web_user using (true);
comment on table data.catalog_search is 'Search documents of published titles (public; kept by triggers on data.anime).';

-- Derived rows, written only by private.catalog_search_sync and removed with their document
-- (trigger catalog_search_removed): no primary or foreign key, whose checks would cost more than
-- the rest of a publish (one lookup per row, a dozen rows per title).
create table data.catalog_search_keys (
  key      text collate "C" not null,
  anime_id uuid not null,
  score    numeric(4, 2)
) with (parallel_workers = 0);
create index catalog_search_keys_rank_idx on data.catalog_search_keys (key, score desc nulls last, anime_id);
create index catalog_search_keys_anime_idx on data.catalog_search_keys (anime_id);
alter table data.catalog_search_keys enable row level security;
create policy catalog_search_keys_public_read on data.catalog_search_keys for select to anon, web_user using (true);
comment on table data.catalog_search_keys is 'Btree keys of every name of a published title: its first 2 and 3 characters, and the whole name followed by ''|''.';

insert into data.catalog_search (anime_id, doc, score, kind, status, year, season, rating, genres)
select a.id, private.search_document(a.title, a.title_ru, a.title_en, a.title_original, a.synonyms),
       a.score, a.kind, a.status, a.year, a.season, a.rating, a.genres
  from data.anime a
 where a.state = 'published' and a.deleted_at is null;
insert into data.catalog_search_keys (key, anime_id, score)
select distinct k.key, s.anime_id, s.score
  from data.catalog_search s
 cross join unnest(string_to_array(btrim(s.doc, '|'), '|')) n(name)
 cross join lateral (values (left(n.name, 2)), (left(n.name, 3)), (n.name || '|')) k(key)
 where length(n.name) >= 2;

-- distinct times for the rows of one statement (see private.touch_updated_at)
alter table data.anime alter column updated_at set default clock_timestamp();

-- catalog pages: keyset paging (updated_at, id) and index-only skipping of deep offsets for the
-- list card's columns
drop index data.anime_published_updated_idx;
create index anime_published_updated_idx on data.anime (updated_at desc, id desc)
  include (title, title_ru, title_original, kind, status, year, poster_url, score)
  where state = 'published' and deleted_at is null;

-- the old per-row trigram expression is replaced by catalog_search
drop index data.anime_search_trgm_idx;
drop function private.anime_search_text(text, text, text, text, text[]);
