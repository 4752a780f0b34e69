-- Publish: staging -> public catalog, set-based, in one transaction. The original system's
-- rules hold: a field an editor changed (edited_fields) or locked (locked_fields; '*' locks the
-- whole row) is never overwritten; new titles enter in the state the settings say; an editor's
-- manual match is kept; rows staged by a run still in progress are not published.

/* Does ingest keep its hands off this field of this row? */
create or replace function ingest.keeps(p_edited text[], p_locked text[], p_field text) returns boolean
language sql immutable parallel safe set search_path = '' as $$
  select p_field = any (p_edited) or p_field = any (p_locked) or '*' = any (p_locked)
$$;

/* The content fields ingest may write on a title: those an editor neither changed nor locked. */
create or replace function ingest.writable_fields(p_edited text[], p_locked text[]) returns text[]
language sql immutable parallel safe set search_path = '' as $$
  select array(select f from unnest(private.anime_content_fields()) f
                where not ingest.keeps(p_edited, p_locked, f))
$$;

/* What the system actor's audit rows of a publish compare: the content fields and shikimori_id. */
create or replace function ingest.audited_fields() returns text[]
language sql immutable parallel safe set search_path = '' as $$
  select private.anime_content_fields() || 'shikimori_id'::text
$$;

/* The reason of those rows: which run published (null: a publish outside a sync). */
create or replace function ingest.audit_reason(p_run_id bigint) returns text
language sql immutable parallel safe set search_path = '' as $$
  select case when p_run_id is null then 'publish' else 'sync run ' || p_run_id end
$$;

/* Rows staged by a run count once that run is finished (or when it is the run publishing). */
create or replace function ingest.staged_by_finished_run(p_staged_by bigint, p_run_id bigint) returns boolean
language sql stable parallel safe set search_path = '' as $$
  select p_staged_by is null or p_staged_by = p_run_id
      or not exists (select 1 from data.sync_runs r where r.id = p_staged_by and r.finished_at is null)
$$;

/* Publish step 1: titles and their genres (matched, inserted, updated); returns counts. */
create or replace function ingest.publish_titles(p_run_id bigint, p_only integer[], p_new_title_state text)
returns jsonb
language plpgsql volatile security definer set search_path = '' set timezone = 'UTC' as $$
declare
  v_ids        integer[];
  v_n          integer;
  v_m          integer;
  v_genres_before jsonb;
  v_result     jsonb := '{}';
begin
  -- titles: match staged rows to catalog rows that already carry their shikimori_id
  update data.staging_anime sa
     set anime_id = a.id, matched_by = 'auto'
    from data.anime a
   where sa.anime_id is null and sa.matched_by is null and a.shikimori_id = sa.shikimori_id
     and not exists (select 1 from data.staging_anime x where x.anime_id = a.id);

  select coalesce(array_agg(sa.shikimori_id), '{}') into v_ids
    from data.staging_anime sa
   where sa.published_hash is distinct from sa.content_hash
     and sa.matched_by is distinct from 'unmatched'
     and (p_only is null or sa.shikimori_id = any (p_only))
     and ingest.staged_by_finished_run(sa.run_id, p_run_id);

  insert into data.genres as g (id, name, name_ru)
  select distinct on ((x ->> 'id')::integer) (x ->> 'id')::integer, x ->> 'name', nullif(x ->> 'russian', '')
    from data.staging_anime sa
    join unnest(v_ids) c(id) on c.id = sa.shikimori_id
   cross join jsonb_array_elements(sa.payload -> 'genres') x
   order by (x ->> 'id')::integer
  on conflict (id) do update set name = excluded.name, name_ru = excluded.name_ru
   where (g.name, g.name_ru) is distinct from (excluded.name, excluded.name_ru);
  get diagnostics v_n = row_count;
  v_result := v_result || jsonb_build_object('genres_written', v_n);

  -- new titles: the payload's content fields, in the state the settings say; each one audited
  -- as the system actor (ingest.anime_create, after = its content fields), in this transaction
  with ins as (
    insert into data.anime (shikimori_id, title, title_ru, title_en, title_original, synonyms, kind, status,
                            episodes_total, episodes_aired, score, rating, year, season, aired_on, released_on,
                            next_episode_at, poster_url, description, state, source, content_hash, genres, genre_ids,
                            title_ru_generated)
    select sa.shikimori_id, r.title, r.title_ru, r.title_en, r.title_original, r.synonyms, r.kind, r.status,
           r.episodes_total, r.episodes_aired, r.score, r.rating, r.year, r.season, r.aired_on, r.released_on,
           r.next_episode_at, r.poster_url, r.description, p_new_title_state, 'parser', sa.content_hash,
           -- what the genre links below will give it, so they need not rewrite the new row
           private.genre_names(g.ids), private.genre_ids(g.ids),
           coalesce((sa.payload ->> 'title_ru_generated')::boolean, false) and r.title_ru is not null
      from data.staging_anime sa
      join unnest(v_ids) c(id) on c.id = sa.shikimori_id
     cross join lateral jsonb_populate_record(null::data.anime,
                          private.jsonb_pick(sa.payload, private.anime_content_fields())) r
     cross join lateral (select array(select (x ->> 'id')::integer
                                        from jsonb_array_elements(sa.payload -> 'genres') x) as ids) g
     where sa.anime_id is null and sa.matched_by is null
    on conflict (shikimori_id) do nothing
    returning *
  ), audited as (
    insert into data.audit_log (actor_type, action, entity_type, entity_id, after, reason)
    select 'system', 'ingest.anime_create', 'anime', ins.id::text,
           private.jsonb_pick(to_jsonb(ins), ingest.audited_fields() || 'genres'::text), ingest.audit_reason(p_run_id)
      from ins
  ), linked as (
    update data.staging_anime sa set anime_id = ins.id, matched_by = 'auto'
      from ins where sa.shikimori_id = ins.shikimori_id
    returning 1
  )
  select count(*) into v_n from linked;
  v_result := v_result || jsonb_build_object('anime_inserted', v_n);

  -- changed titles: the title row with every content field but the ones an editor changed or
  -- locked replaced from the payload; written only when something differs, and audited as the
  -- system actor: one row per title, before/after of the fields that changed (`before` reads the
  -- statement's snapshot, i.e. the row as it was)
  -- materialized, with the record built in FROM: built once per title (a `(f()).*` in a select
  -- list, or a CTE inlined into the update's join, calls f once per column)
  with n as materialized (
    select r.*
      from data.staging_anime sa
      join unnest(v_ids) c(id) on c.id = sa.shikimori_id
      join data.anime a on a.id = sa.anime_id
     cross join lateral jsonb_populate_record(a,
              private.jsonb_pick(sa.payload, ingest.writable_fields(a.edited_fields, a.locked_fields))
              || jsonb_build_object('shikimori_id', coalesce(a.shikimori_id, sa.shikimori_id),
                                    'content_hash', sa.content_hash)
              -- the Russian title's marker follows the payload while ingest writes title_ru
              || case when not ingest.keeps(a.edited_fields, a.locked_fields, 'title_ru')
                      then jsonb_build_object('title_ru_generated',
                                              coalesce((sa.payload ->> 'title_ru_generated')::boolean, false)
                                              and sa.payload ->> 'title_ru' is not null)
                      else '{}' end) r
  ), up as (
    update data.anime a
       set title = n.title, title_ru = n.title_ru, title_en = n.title_en, title_original = n.title_original,
           synonyms = n.synonyms, kind = n.kind, status = n.status, episodes_total = n.episodes_total,
           episodes_aired = n.episodes_aired, score = n.score, rating = n.rating, year = n.year, season = n.season,
           aired_on = n.aired_on, released_on = n.released_on, next_episode_at = n.next_episode_at,
           poster_url = n.poster_url, description = n.description, shikimori_id = n.shikimori_id,
           content_hash = n.content_hash, title_ru_generated = n.title_ru_generated
      from n
     where a.id = n.id and row(a.*) is distinct from row(n.*)
    returning a.*
  ), changes as (
    select up.id, to_jsonb(b) as before_doc, to_jsonb(up) as after_doc,
           array(select f from unnest(ingest.audited_fields()) f
                  where to_jsonb(b) -> f is distinct from to_jsonb(up) -> f) as fields
      from up join data.anime b on b.id = up.id
  ), audited as (
    insert into data.audit_log (actor_type, action, entity_type, entity_id, before, after, reason)
    select 'system', 'ingest.anime_update', 'anime', c.id::text, private.jsonb_pick(c.before_doc, c.fields),
           private.jsonb_pick(c.after_doc, c.fields), ingest.audit_reason(p_run_id)
      from changes c
     where cardinality(c.fields) > 0
  )
  select count(*) into v_n from up;
  v_result := v_result || jsonb_build_object('anime_updated', v_n);

  -- genres of those titles (unless an editor changed or locked `genres`); the stored
  -- anime.genres follows by trigger, so it is compared before and after for the audit
  select coalesce(jsonb_object_agg(a.id, to_jsonb(a.genres)), '{}') into v_genres_before
    from data.staging_anime sa
    join unnest(v_ids) c(id) on c.id = sa.shikimori_id
    join data.anime a on a.id = sa.anime_id;
  delete from data.anime_genres ag
   using data.staging_anime sa, unnest(v_ids) c(id), data.anime a
   where c.id = sa.shikimori_id and ag.anime_id = sa.anime_id and a.id = sa.anime_id
     and not ingest.keeps(a.edited_fields, a.locked_fields, 'genres')
     and not exists (select 1 from jsonb_array_elements(sa.payload -> 'genres') x
                      where (x ->> 'id')::integer = ag.genre_id);
  get diagnostics v_n = row_count;
  insert into data.anime_genres (anime_id, genre_id)
  select sa.anime_id, (x ->> 'id')::integer
    from data.staging_anime sa
    join unnest(v_ids) c(id) on c.id = sa.shikimori_id
    join data.anime a on a.id = sa.anime_id
   cross join jsonb_array_elements(sa.payload -> 'genres') x
   where not ingest.keeps(a.edited_fields, a.locked_fields, 'genres')
  on conflict do nothing;
  get diagnostics v_m = row_count;
  v_result := v_result || jsonb_build_object('anime_genres_written', v_n + v_m);
  insert into data.audit_log (actor_type, action, entity_type, entity_id, before, after, reason)
  select 'system', 'ingest.genres_update', 'anime', a.id::text, jsonb_build_object('genres', b.genres),
         jsonb_build_object('genres', a.genres), ingest.audit_reason(p_run_id)
    from jsonb_each(v_genres_before) b(anime_id, genres)
    join data.anime a on a.id = b.anime_id::uuid
   where b.genres is distinct from to_jsonb(a.genres);

  -- related titles of those titles, as the payload lists them (payloads staged before relations
  -- were fetched carry no `related` and leave them alone)
  delete from data.anime_relations ar
   using data.staging_anime sa, unnest(v_ids) c(id)
   where c.id = sa.shikimori_id and ar.anime_id = sa.anime_id and sa.payload ? 'related'
     and not exists (select 1 from jsonb_array_elements(sa.payload -> 'related') x
                      where (x ->> 'shikimori_id')::integer = ar.related_shikimori_id);
  get diagnostics v_n = row_count;
  insert into data.anime_relations as ar (anime_id, related_shikimori_id, relation)
  select sa.anime_id, (x ->> 'shikimori_id')::integer, x ->> 'relation'
    from data.staging_anime sa
    join unnest(v_ids) c(id) on c.id = sa.shikimori_id
   cross join jsonb_array_elements(sa.payload -> 'related') x
   where sa.anime_id is not null and sa.payload ? 'related'
  on conflict (anime_id, related_shikimori_id) do update set relation = excluded.relation
   where ar.relation <> excluded.relation;
  get diagnostics v_m = row_count;
  v_result := v_result || jsonb_build_object('relations_written', v_n + v_m);

  update data.staging_anime sa
     set published_hash = sa.content_hash, published_at = now()
    from unnest(v_ids) c(id)
   where c.id = sa.shikimori_id and sa.anime_id is not null;

  return v_result;
end
$$;

/* Publish step 2: translations, episodes and player links of titles in the catalog. */
create or replace function ingest.publish_players(p_run_id bigint, p_only integer[])
returns jsonb
language plpgsql volatile security definer set search_path = '' set timezone = 'UTC' as $$
declare
  v_n          integer;
  v_result     jsonb := '{}';
begin
  -- players: staged (title, translation) rows whose title is in the catalog
  create temp table if not exists ingest_publish_episodes (
    shikimori_id integer, translation_id integer, anime_id uuid
  ) on commit drop;
  truncate pg_temp.ingest_publish_episodes;
  insert into pg_temp.ingest_publish_episodes
  select se.shikimori_id, se.translation_id, coalesce(sa.anime_id, a.id)
    from data.staging_episodes se
    left join data.staging_anime sa on sa.shikimori_id = se.shikimori_id and sa.anime_id is not null
    left join data.anime a on a.shikimori_id = se.shikimori_id
   where se.published_hash is distinct from se.content_hash
     and coalesce(sa.anime_id, a.id) is not null
     and (p_only is null or se.shikimori_id = any (p_only))
     and ingest.staged_by_finished_run(se.run_id, p_run_id);

  insert into data.translations as t (id, title, type)
  select distinct on (se.translation_id) se.translation_id, se.translation_title, se.translation_type
    from data.staging_episodes se
    join pg_temp.ingest_publish_episodes c using (shikimori_id, translation_id)
   order by se.translation_id, se.fetched_at desc
  on conflict (id) do update set title = excluded.title, type = excluded.type
   where (t.title, t.type) is distinct from (excluded.title, excluded.type);

  insert into data.episodes (anime_id, number, source)
  select distinct c.anime_id, k.num::integer, 'parser'
    from data.staging_episodes se
    join pg_temp.ingest_publish_episodes c using (shikimori_id, translation_id)
   cross join jsonb_object_keys(se.episodes) k(num)
  on conflict (anime_id, number) do nothing;
  get diagnostics v_n = row_count;
  v_result := v_result || jsonb_build_object('episodes_inserted', v_n);

  /* player links, except on deleted episodes, episodes whose links (or whole row) are locked,
     and links fixed by hand (source manual) or locked one by one; a hidden link stays hidden.
     Audited as the system actor: one row per title, before/after {"<episode>/<translation>":
     {player_url, quality}} of the links written (`before` from the statement's snapshot). */
  with incoming as (
    select e.id as episode_id, e.anime_id, e.number, se.translation_id, se.quality, x.url
      from data.staging_episodes se
      join pg_temp.ingest_publish_episodes c using (shikimori_id, translation_id)
     cross join jsonb_each_text(se.episodes) x(num, url)
      join data.episodes e on e.anime_id = c.anime_id and e.number = x.num::integer
     where e.deleted_at is null and not ingest.keeps('{}', e.locked_fields, 'sources')
  ), up as (
    insert into data.episode_sources as es (episode_id, translation_id, quality, player_url, source)
    select i.episode_id, i.translation_id, i.quality, i.url, 'parser' from incoming i
    on conflict (episode_id, translation_id) do update
       set quality = excluded.quality, player_url = excluded.player_url, updated_at = now()
     where (es.quality, es.player_url) is distinct from (excluded.quality, excluded.player_url)
       and es.source <> 'manual' and es.locked_at is null
    returning es.episode_id, es.translation_id, es.quality, es.player_url
  ), audited as (
    insert into data.audit_log (actor_type, action, entity_type, entity_id, before, after, reason)
    select 'system', 'ingest.players_update', 'anime', i.anime_id::text,
           jsonb_object_agg(i.number || '/' || i.translation_id,
                            case when b.episode_id is not null
                                 then jsonb_build_object('player_url', b.player_url, 'quality', b.quality) end),
           jsonb_object_agg(i.number || '/' || i.translation_id,
                            jsonb_build_object('player_url', up.player_url, 'quality', up.quality)),
           ingest.audit_reason(p_run_id)
      from up
      join incoming i using (episode_id, translation_id)
      left join data.episode_sources b on b.episode_id = up.episode_id and b.translation_id = up.translation_id
     group by i.anime_id
  )
  select count(*) into v_n from up;
  v_result := v_result || jsonb_build_object('episode_sources_written', v_n);

  update data.staging_episodes se
     set published_hash = se.content_hash, published_at = now()
    from pg_temp.ingest_publish_episodes c
   where c.shikimori_id = se.shikimori_id and c.translation_id = se.translation_id;

  return v_result;
end
$$;

/* Publish step 3: the airing schedule of titles in the catalog. Audited as the system actor,
   in the same statement: one row per title whose airings changed (ingest.schedule_update),
   before/after {"<episode>": airs_at} of the airings written (before null: a new airing). */
create or replace function ingest.publish_schedule(p_run_id bigint, p_only integer[])
returns jsonb
language plpgsql volatile security definer set search_path = '' set timezone = 'UTC' as $$
declare
  v_n          integer;
  v_result     jsonb := '{}';
begin
  -- schedule
  with c as (
    select ss.shikimori_id, coalesce(sa.anime_id, a.id) as anime_id
      from data.staging_schedule ss
      left join data.staging_anime sa on sa.shikimori_id = ss.shikimori_id and sa.anime_id is not null
      left join data.anime a on a.shikimori_id = ss.shikimori_id
     where ss.published_hash is distinct from ss.content_hash
       and coalesce(sa.anime_id, a.id) is not null
       and (p_only is null or ss.shikimori_id = any (p_only))
       and ingest.staged_by_finished_run(ss.run_id, p_run_id)
  ), up as (
    insert into data.schedule as d (anime_id, episode_number, airs_at)
    select c.anime_id, ss.episode_number, ss.airs_at
      from c join data.staging_schedule ss using (shikimori_id)
    on conflict (anime_id, episode_number) do update set airs_at = excluded.airs_at, updated_at = now()
     where d.airs_at is distinct from excluded.airs_at
    returning d.anime_id, d.episode_number, d.airs_at
  ), audited as (
    -- `b`: the statement's snapshot, so the airing as it was before this insert
    insert into data.audit_log (actor_type, action, entity_type, entity_id, before, after, reason)
    select 'system', 'ingest.schedule_update', 'anime', up.anime_id::text,
           jsonb_object_agg(up.episode_number::text, b.airs_at),
           jsonb_object_agg(up.episode_number::text, up.airs_at),
           ingest.audit_reason(p_run_id)
      from up
      left join data.schedule b on b.anime_id = up.anime_id and b.episode_number = up.episode_number
     group by up.anime_id
  ), marked as (
    update data.staging_schedule ss set published_hash = ss.content_hash
      from c where c.shikimori_id = ss.shikimori_id
    returning 1
  )
  select (select count(*) from up) into v_n;
  v_result := v_result || jsonb_build_object('schedule_written', v_n);
  return v_result;
end
$$;

/* Publish every staged change (or only the titles in p_only). p_run_id: the run calling it
   (its own rows count as finished). Returns what changed, by table. The steps run in this
   order because players and schedule attach to the titles step 1 published. */
create or replace function ingest.publish(p_run_id bigint default null, p_only integer[] default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' set timezone = 'UTC' as $$
declare
  v_state text;
begin
  -- one publisher at a time (catalog, episodes and schedule syncs may finish together)
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('kitsu.ingest.publish'));
  select s.new_title_state into v_state from data.ingest_settings s;
  return ingest.publish_titles(p_run_id, p_only, v_state)
      || ingest.publish_players(p_run_id, p_only)
      || ingest.publish_schedule(p_run_id, p_only);
end
$$;
comment on function ingest.publish(bigint, integer[]) is 'Publish staged changes into the catalog (all, or only the given shikimori ids); returns counts.';

/* Editors: link a staged title to a catalog row (kept across re-syncs), or unlink it. */
create or replace function ingest.match(p_shikimori_id integer, p_anime_id uuid) returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  update data.staging_anime set anime_id = null, matched_by = 'unmatched'
   where anime_id = p_anime_id and shikimori_id <> p_shikimori_id;
  update data.staging_anime set anime_id = p_anime_id, matched_by = 'manual', published_hash = null
   where shikimori_id = p_shikimori_id;
  if not found then
    raise exception 'no staged title with shikimori id %', p_shikimori_id using errcode = 'KI004';
  end if;
end
$$;

create or replace function ingest.unmatch(p_shikimori_id integer) returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  update data.staging_anime set anime_id = null, matched_by = 'unmatched', published_hash = null
   where shikimori_id = p_shikimori_id;
  if not found then
    raise exception 'no staged title with shikimori id %', p_shikimori_id using errcode = 'KI004';
  end if;
end
$$;
