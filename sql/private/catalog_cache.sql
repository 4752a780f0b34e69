/* Caching the public catalog without Redis (contract §10). Every write of a catalog table moves
   data.catalog_version in the writer's transaction (one statement trigger per table); an
   anonymous GET of a catalog resource gets Cache-Control and an ETag computed from that version
   before its query runs, so the gateway's micro-cache and a browser's If-None-Match (304) stay
   exact: a response is reused only while nothing in the catalog has changed. */

create or replace function private.catalog_changed() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  update data.catalog_version set version = version + 1, changed_at = now();
  return null;
end
$$;

create or replace trigger anime_catalog_changed after insert or update or delete or truncate on data.anime
  for each statement execute function private.catalog_changed();
create or replace trigger genres_catalog_changed after insert or update or delete or truncate on data.genres
  for each statement execute function private.catalog_changed();
create or replace trigger anime_genres_catalog_changed after insert or update or delete or truncate on data.anime_genres
  for each statement execute function private.catalog_changed();
create or replace trigger episodes_catalog_changed after insert or update or delete or truncate on data.episodes
  for each statement execute function private.catalog_changed();
create or replace trigger translations_catalog_changed after insert or update or delete or truncate on data.translations
  for each statement execute function private.catalog_changed();
create or replace trigger episode_sources_catalog_changed after insert or update or delete or truncate on data.episode_sources
  for each statement execute function private.catalog_changed();
create or replace trigger schedule_catalog_changed after insert or update or delete or truncate on data.schedule
  for each statement execute function private.catalog_changed();
create or replace trigger anime_relations_catalog_changed after insert or update or delete or truncate on data.anime_relations
  for each statement execute function private.catalog_changed();

-- the order of a title's players (api.episode_sources.preference) is public too
create or replace trigger translation_priorities_catalog_changed after insert or update or delete or truncate on data.translation_priorities
  for each statement execute function private.catalog_changed();
create or replace trigger quality_priorities_catalog_changed after insert or update or delete or truncate on data.quality_priorities
  for each statement execute function private.catalog_changed();

-- The resources whose anonymous GETs may be cached (the gateway's micro-cache has the same list).
create or replace function private.cacheable_path(path text) returns boolean
language sql immutable parallel safe set search_path = '' as $$
  select path in ('/anime', '/episodes', '/episode_sources', '/schedule', '/genres', '/related', '/rpc/search_anime')
$$;

/* The caching headers of an anonymous catalog GET: public for a few seconds, and an ETag of the
   catalog version and the headers that shape the body (the query string is part of the URL a
   validator belongs to, so it need not be in it). Null for every other request. */
create or replace function private.catalog_cache_headers() returns jsonb
language sql stable set search_path = '' as $$
  select case when current_setting('request.method', true) in ('GET', 'HEAD')
                   and private.cacheable_path(current_setting('request.path', true)) then
    jsonb_build_array(
      jsonb_build_object('Cache-Control', 'public, max-age=5'),
      jsonb_build_object('ETag', format('W/"%s-%s"', (select v.version from data.catalog_version v),
        left(md5(concat_ws(' ', h ->> 'accept', h ->> 'prefer', h ->> 'range', h ->> 'range-unit',
                           h ->> 'accept-profile')), 12))))
  end
    from (select nullif(current_setting('request.headers', true), '')::jsonb as h) r
$$;
