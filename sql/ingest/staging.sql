-- Staging: one call per upstream page, in one transaction with the run's progress (cursor and
-- counters), so a resumed run continues exactly after the last committed page. Raw upstream
-- JSON comes in; the mapping rules live here. Unchanged items (same content hash) are not
-- written.

/* Absolute URL: protocol-relative '//host/x' gets https:, a path '/x' gets the base URL. */
create or replace function ingest.absolute_url(p_url text, p_base text) returns text
language sql immutable parallel safe set search_path = '' as $$
  select case
    when p_url is null or btrim(p_url) = '' then null
    when p_url ~ '^https?://' then p_url
    when p_url like '//%' then 'https:' || p_url
    when p_url like '/%' and p_base ~ '^https?://' then pg_catalog.rtrim(p_base, '/') || p_url
    else null
  end
$$;

/* One Shikimori GraphQL `animes` node -> the normalised payload staged and published. Values
   the catalog would reject become null (unknown), never an error. */
create or replace function ingest.shikimori_payload(r jsonb, p_base text) returns jsonb
language sql stable parallel safe set search_path = '' as $$
  with v as (
    select nullif(btrim(r ->> 'name'), '') as name,
           nullif(btrim(r ->> 'russian'), '') as russian,
           nullif(btrim(r -> 'english' ->> 0), '') as english,
           nullif(btrim(r -> 'japanese' ->> 0), '') as japanese,
           case when r ->> 'kind' in ('tv', 'movie', 'ova', 'ona', 'special', 'tv_special', 'music', 'pv', 'cm')
                then r ->> 'kind'
                when r ->> 'kind' in ('tv_13', 'tv_24', 'tv_48') then 'tv' end as kind,
           case when r ->> 'status' in ('anons', 'ongoing', 'released') then r ->> 'status' end as status,
           case when r ->> 'rating' in ('none', 'g', 'pg', 'pg_13', 'r', 'r_plus', 'rx') then r ->> 'rating' end as rating,
           nullif((r ->> 'episodes')::integer, 0) as episodes,
           greatest((r ->> 'episodesAired')::integer, 0) as episodes_aired,
           case when (r ->> 'score')::numeric > 0 and (r ->> 'score')::numeric <= 10
                then round((r ->> 'score')::numeric, 2) end as score,
           (r -> 'airedOn' ->> 'year')::integer as year,
           (r -> 'airedOn' ->> 'date')::date as aired_on,
           (r -> 'releasedOn' ->> 'date')::date as released_on,
           (r ->> 'nextEpisodeAt')::timestamptz as next_episode_at,
           split_part(r ->> 'season', '_', 1) as season_word,
           (r -> 'airedOn' ->> 'month')::integer as month
  )
  select jsonb_build_object(
    'title', coalesce(v.name, v.english, v.russian, v.japanese, '#' || (r ->> 'id')),
    'title_ru', v.russian,
    -- not a Shikimori field: a source whose Russian names are made up says so in `generated`
    -- (the offline upstream's real titles: ["romaji", "russian"]); such a name is marked
    'title_ru_generated', v.russian is not null and jsonb_typeof(r -> 'generated') = 'array'
                          and r -> 'generated' ? 'russian',
    'title_en', v.english,
    'title_original', v.japanese,
    'synonyms', coalesce((select jsonb_agg(s order by o) from jsonb_array_elements_text(
                   case when jsonb_typeof(r -> 'synonyms') = 'array' then r -> 'synonyms' else '[]' end)
                   with ordinality as t(s, o) where btrim(s) <> ''), '[]'),
    'kind', v.kind,
    'status', v.status,
    'episodes_total', case when v.episodes > 0 then v.episodes end,
    'episodes_aired', v.episodes_aired,
    'score', v.score,
    'rating', v.rating,
    'year', case when v.year between 1900 and 2100 then v.year end,
    'season', case when v.season_word in ('winter', 'spring', 'summer', 'fall') then v.season_word
                   when v.month in (12, 1, 2) then 'winter' when v.month in (3, 4, 5) then 'spring'
                   when v.month in (6, 7, 8) then 'summer' when v.month in (9, 10, 11) then 'fall' end,
    'aired_on', v.aired_on,
    'released_on', case when v.released_on >= v.aired_on or v.aired_on is null then v.released_on end,
    'next_episode_at', v.next_episode_at,
    'poster_url', ingest.absolute_url(coalesce(r -> 'poster' ->> 'originalUrl', r -> 'poster' ->> 'mainUrl',
                                               r -> 'image' ->> 'original'), p_base),
    'description', nullif(btrim(r ->> 'description'), ''),
    'genres', coalesce((select jsonb_agg(jsonb_build_object('id', (g ->> 'id')::integer, 'name', g ->> 'name',
                                                            'russian', g ->> 'russian') order by (g ->> 'id')::integer)
                          from jsonb_array_elements(case when jsonb_typeof(r -> 'genres') = 'array'
                                                         then r -> 'genres' else '[]' end) g
                         where g ->> 'id' is not null and nullif(g ->> 'name', '') is not null), '[]'),
    -- related anime (not manga), once each, by id; a kind the catalog cannot store becomes 'other'
    'related', coalesce((select jsonb_agg(jsonb_build_object('shikimori_id', x.id, 'relation', x.relation) order by x.id)
                           from (select distinct on ((rel -> 'anime' ->> 'id')::integer)
                                        (rel -> 'anime' ->> 'id')::integer as id,
                                        case when lower(rel ->> 'relationKind') ~ '^[a-z_]{1,40}$'
                                             then lower(rel ->> 'relationKind') else 'other' end as relation
                                   from jsonb_array_elements(case when jsonb_typeof(r -> 'related') = 'array'
                                                                  then r -> 'related' else '[]' end) rel
                                  where rel -> 'anime' ->> 'id' ~ '^[0-9]{1,9}$'
                                    and (rel -> 'anime' ->> 'id')::integer > 0
                                  order by (rel -> 'anime' ->> 'id')::integer) x), '[]'))
  from v
$$;

/* Stage one page of Shikimori titles for run p_run_id and advance its cursor to p_cursor. */
create or replace function ingest.stage_anime(p_run_id bigint, p_job_id bigint, p_cursor jsonb,
                                              p_items jsonb, p_base_url text, p_requests integer default 1)
returns jsonb
language plpgsql volatile security definer set search_path = '' set timezone = 'UTC' as $$
declare
  s data.ingest_settings;
  v_fetched integer;
  v_skipped integer;
  v_inserted integer;
  v_updated integer;
begin
  perform ingest.claim_run(p_run_id, p_job_id);
  select * into s from data.ingest_settings;
  v_fetched := jsonb_array_length(p_items);
  with raw as (
    select distinct on ((e ->> 'id')::integer) (e ->> 'id')::integer as shikimori_id, e
      from jsonb_array_elements(p_items) e
     where (e ->> 'id')::integer > 0
     order by (e ->> 'id')::integer
  ), norm as (
    select raw.shikimori_id, ingest.shikimori_payload(raw.e, p_base_url) as payload from raw
  ), kept as (
    select n.* from norm n
     where not n.shikimori_id = any (s.blacklist_shikimori_ids)
       and not exists (
         select 1 from unnest(s.blacklist_titles) b, jsonb_array_elements_text(
                  jsonb_build_array(n.payload ->> 'title', n.payload ->> 'title_ru', n.payload ->> 'title_en',
                                    n.payload ->> 'title_original') || (n.payload -> 'synonyms')) t
          where btrim(b) <> '' and strpos(lower(t), lower(btrim(b))) > 0)
  ), up as (
    insert into data.staging_anime as sa (shikimori_id, payload, content_hash, run_id, fetched_at)
    select k.shikimori_id, k.payload, md5(k.payload::text), p_run_id, now() from kept k
    on conflict (shikimori_id) do update
       set payload = excluded.payload, content_hash = excluded.content_hash,
           run_id = excluded.run_id, fetched_at = excluded.fetched_at
     where sa.content_hash <> excluded.content_hash
    returning (xmax = 0) as inserted
  )
  select (select count(*) from raw) - (select count(*) from kept),
         count(*) filter (where inserted), count(*) filter (where not inserted)
    into v_skipped, v_inserted, v_updated
    from up;
  v_skipped := v_skipped + (v_fetched - (select count(*) from (
                 select distinct (e ->> 'id')::integer from jsonb_array_elements(p_items) e
                  where (e ->> 'id')::integer > 0) d));
  update data.sync_runs
     set cursor = p_cursor, pages_done = pages_done + 1, requests = requests + p_requests,
         items_fetched = items_fetched + v_fetched, items_inserted = items_inserted + v_inserted,
         items_updated = items_updated + v_updated, items_skipped = items_skipped + v_skipped,
         items_unchanged = items_unchanged + (v_fetched - v_skipped - v_inserted - v_updated),
         progressed_at = now()
   where id = p_run_id;
  return jsonb_build_object('fetched', v_fetched, 'inserted', v_inserted, 'updated', v_updated,
                            'skipped', v_skipped);
end
$$;

/* Kodik results -> one staged row per (shikimori_id, translation): episode number -> https
   player URL. Serials take their episodes from `seasons` (lowest season first, specials "0"
   last), movies are episode 1. Settings filter translation types, names and qualities. */
create or replace function ingest.stage_episodes(p_run_id bigint, p_job_id bigint, p_cursor jsonb,
                                                 p_items jsonb, p_pages_total integer default null,
                                                 p_requests integer default 1)
returns jsonb
language plpgsql volatile security definer set search_path = '' set timezone = 'UTC' as $$
declare
  s data.ingest_settings;
  v_fetched integer;
  v_rows integer;
  v_inserted integer;
  v_updated integer;
begin
  perform ingest.claim_run(p_run_id, p_job_id);
  select * into s from data.ingest_settings;
  v_fetched := jsonb_array_length(p_items);
  with raw as (
    select case when e ->> 'shikimori_id' ~ '^[0-9]{1,9}$' then (e ->> 'shikimori_id')::integer end as shikimori_id,
           (e -> 'translation' ->> 'id')::integer as translation_id,
           coalesce(nullif(btrim(e -> 'translation' ->> 'title'), ''), 'Kodik #' || (e -> 'translation' ->> 'id')) as translation_title,
           case when e -> 'translation' ->> 'type' in ('subtitles', 'sub', 'subs') then 'subtitles' else 'voice' end as translation_type,
           nullif(btrim(e ->> 'quality'), '') as quality,
           e
      from jsonb_array_elements(p_items) e
  ), eps as (
    select r.shikimori_id, r.translation_id, r.translation_title, r.translation_type, r.quality,
           coalesce((
             select jsonb_object_agg(x.num, x.url)
               from (select distinct on (ep.key::integer) ep.key::integer as num,
                            ingest.absolute_url(case jsonb_typeof(ep.value) when 'string' then ep.value #>> '{}'
                                                    else ep.value ->> 'link' end, null) as url
                       from jsonb_each(case when jsonb_typeof(r.e -> 'seasons') = 'object' then r.e -> 'seasons' else '{}' end) sn,
                            jsonb_each(case when jsonb_typeof(sn.value -> 'episodes') = 'object' then sn.value -> 'episodes' else '{}' end) ep
                      where sn.key ~ '^[0-9]{1,4}$' and ep.key ~ '^[0-9]{1,5}$' and ep.key::integer >= 1
                      order by ep.key::integer, (sn.key::integer = 0), sn.key::integer) x
              where x.url like 'https://%'),
             case when ingest.absolute_url(r.e ->> 'link', null) like 'https://%'
                  then jsonb_build_object('1', ingest.absolute_url(r.e ->> 'link', null)) end) as episodes,
           (r.e ->> 'updated_at') as updated_at
      from raw r
     where r.shikimori_id is not null and r.translation_id is not null
  ), kept as (
    select distinct on (e.shikimori_id, e.translation_id) e.*
      from eps e
     where e.episodes is not null
       and e.translation_type = any (s.allowed_translation_types)
       and (cardinality(s.allowed_translations) = 0
            or exists (select 1 from unnest(s.allowed_translations) t
                        where lower(t) in (lower(e.translation_title), e.translation_id::text)))
       and (cardinality(s.allowed_qualities) = 0
            or exists (select 1 from unnest(s.allowed_qualities) q where lower(q) = lower(e.quality)))
       and not e.shikimori_id = any (s.blacklist_shikimori_ids)
     order by e.shikimori_id, e.translation_id, e.updated_at desc nulls last
  ), up as (
    insert into data.staging_episodes as se (shikimori_id, translation_id, translation_title, translation_type,
                                             quality, episodes, content_hash, run_id, fetched_at)
    select k.shikimori_id, k.translation_id, k.translation_title, k.translation_type, k.quality, k.episodes,
           md5(jsonb_build_array(k.translation_title, k.translation_type, k.quality, k.episodes)::text),
           p_run_id, now()
      from kept k
    on conflict (shikimori_id, translation_id) do update
       set translation_title = excluded.translation_title, translation_type = excluded.translation_type,
           quality = excluded.quality, episodes = excluded.episodes, content_hash = excluded.content_hash,
           run_id = excluded.run_id, fetched_at = excluded.fetched_at
     where se.content_hash <> excluded.content_hash
    returning (xmax = 0) as inserted
  )
  select (select count(*) from kept), count(*) filter (where inserted), count(*) filter (where not inserted)
    into v_rows, v_inserted, v_updated
    from up;
  update data.sync_runs
     set cursor = p_cursor, pages_done = pages_done + 1, pages_total = coalesce(p_pages_total, pages_total),
         requests = requests + p_requests,
         items_fetched = items_fetched + v_fetched, items_inserted = items_inserted + v_inserted,
         items_updated = items_updated + v_updated, items_skipped = items_skipped + (v_fetched - v_rows),
         items_unchanged = items_unchanged + (v_rows - v_inserted - v_updated),
         progressed_at = now()
   where id = p_run_id;
  return jsonb_build_object('fetched', v_fetched, 'inserted', v_inserted, 'updated', v_updated,
                            'skipped', v_fetched - v_rows);
end
$$;

/* The Shikimori calendar (one request): the next episode of each listed title. */
create or replace function ingest.stage_schedule(p_run_id bigint, p_job_id bigint, p_items jsonb,
                                                 p_requests integer default 1)
returns jsonb
language plpgsql volatile security definer set search_path = '' set timezone = 'UTC' as $$
declare
  v_fetched integer;
  v_rows integer;
  v_inserted integer;
  v_updated integer;
begin
  perform ingest.claim_run(p_run_id, p_job_id);
  v_fetched := jsonb_array_length(p_items);
  with kept as (
    select distinct on ((e -> 'anime' ->> 'id')::integer)
           (e -> 'anime' ->> 'id')::integer as shikimori_id, (e ->> 'next_episode')::integer as episode_number,
           (e ->> 'next_episode_at')::timestamptz as airs_at
      from jsonb_array_elements(p_items) e
     where (e -> 'anime' ->> 'id')::integer > 0 and (e ->> 'next_episode')::integer >= 1
       and e ->> 'next_episode_at' is not null
     order by (e -> 'anime' ->> 'id')::integer, (e ->> 'next_episode_at')::timestamptz
  ), up as (
    insert into data.staging_schedule as ss (shikimori_id, episode_number, airs_at, content_hash, run_id, fetched_at)
    select k.shikimori_id, k.episode_number, k.airs_at,
           md5(k.episode_number::text || '@' || extract(epoch from k.airs_at)::text), p_run_id, now()
      from kept k
    on conflict (shikimori_id) do update
       set episode_number = excluded.episode_number, airs_at = excluded.airs_at,
           content_hash = excluded.content_hash, run_id = excluded.run_id, fetched_at = excluded.fetched_at
     where ss.content_hash <> excluded.content_hash
    returning (xmax = 0) as inserted
  )
  select (select count(*) from kept), count(*) filter (where inserted), count(*) filter (where not inserted)
    into v_rows, v_inserted, v_updated
    from up;
  update data.sync_runs
     set cursor = '{"done": true}', pages_done = pages_done + 1, pages_total = 1, requests = requests + p_requests,
         items_fetched = items_fetched + v_fetched, items_inserted = items_inserted + v_inserted,
         items_updated = items_updated + v_updated, items_skipped = items_skipped + (v_fetched - v_rows),
         items_unchanged = items_unchanged + (v_rows - v_inserted - v_updated), progressed_at = now()
   where id = p_run_id;
  return jsonb_build_object('fetched', v_fetched, 'inserted', v_inserted, 'updated', v_updated);
end
$$;
