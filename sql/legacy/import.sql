-- The cut-over import (contract §13): landing tables (sql/legacy/landing.sql) → data.*, one
-- set-based step per old table, each run by `python -m legacy_import` in its own transaction
-- (resumable: a killed run restarted re-lands and re-runs the steps, and every write is an
-- upsert, so it ends in the same state; a second run writes nothing).
--
-- Every step has a view `legacy.<step>_fixed`: one row per landed row with the values to write,
-- skip_reason (why the row is not written, null when it is) and repairs (the defects repaired on
-- the way). legacy.import_step materialises the view once, records the skipped and repaired rows
-- in legacy.issues and calls the step's upsert. The documented rules:
--   users        e-mails are trimmed and lower-cased; accounts whose e-mails then collide are
--                merged into one survivor: the active one first, then the oldest (created_at, id).
--                The others' favorites, progress and roles move to the survivor; their password
--                hashes are dropped (reported). Ids are kept (old ids are uuids: legacy.user_map
--                says which person each old account became). Hashes are stored as they are
--                (bcrypt of sha256-hex); auth_service upgrades them to argon2id at the first
--                sign-in, and a re-import never replaces an argon2id hash.
--   user_roles   by role name; duplicates (also those a merge creates) dropped, unknown roles and
--                system roles (people may not hold them) skipped.
--   favorites,   a merged account's row loses to the survivor's own row of the same title, then
--   progress     to the earliest (favorites) or latest (progress) other row; rows of a title that
--                was not imported are skipped.

create or replace function legacy.json_texts(value json) returns text[]
language sql immutable set search_path = '' as $$
  select case when pg_catalog.json_typeof(value) = 'array'
              then array(select pg_catalog.json_array_elements_text(value)) else '{}'::text[] end
$$;

-- old free-text columns that should hold an address or a json document: null when they do not
create or replace function legacy.try_inet(value text) returns inet
language plpgsql immutable set search_path = '' as $$
begin
  return value::inet;
exception when others then
  return null;
end
$$;

create or replace function legacy.try_jsonb(value json) returns jsonb
language plpgsql immutable set search_path = '' as $$
begin
  return value::jsonb;
exception when others then  -- e.g. \u0000, which jsonb cannot hold
  return null;
end
$$;

create or replace function legacy.try_uuid(value text) returns uuid
language sql immutable set search_path = '' as $$
  select case when value ~* '^[0-9a-f]{8}-?([0-9a-f]{4}-?){3}[0-9a-f]{12}$' then value::uuid end
$$;

-- the steps in order and the old tables each lands first
create or replace function legacy.plan() returns table (step text, tables text[])
language sql immutable set search_path = '' as $$
  values ('users', array['users']),
         ('user_roles', array['roles', 'user_roles']),
         ('anime', array['anime']),
         ('bindings', array['parser_sources', 'anime_external', 'anime_external_binding']),
         ('episodes', array['releases', 'episodes']),
         ('favorites', array['favorites']),
         ('watch_progress', array['watch_progress']),
         ('audit_logs', array['audit_logs']),
         ('parser_settings', array['parser_settings'])
$$;

-- what of the old data has no place here, and why (printed with every report)
create or replace function legacy.not_carried() returns table (what text, why text)
language sql immutable set search_path = '' as $$
  values
    ('refresh_tokens', 'sessions are not carried: everyone signs in once with the old password'),
    ('roles, permissions, role_permissions', 'this platform seeds the same contract (§6); old role links map by name'),
    ('releases', 'there are no releases here: their episodes belong to the title'),
    ('episodes.iframe_url, available_translations, available_qualities', 'players need a Kodik translation id the old rows lack; the next Kodik sync restores them'),
    ('anime.genres', 'genres are Shikimori genre ids here; the next catalog sync restores them for bound titles'),
    ('anime_external (staging), anime_episodes_external, anime_translations, anime_schedule', 'staging is refetched by the next sync; only the bindings (title ↔ Shikimori id) are carried, as data.anime.shikimori_id'),
    ('parser_sources, parser_jobs, parser_job_logs', 'upstream limits are data.upstream_limits; old job history is not carried'),
    ('parser_settings.dry_run, preferred_*_priority', 'no counterpart (dry_run silently disabled publishing, original-system §10.23)')
$$;

/* Rows of merged accounts (legacy.user_map) that lose to another row of the same person and
   title: the survivor's own row wins, then the earliest favorite / the latest progress. Only the
   rows of people with a merged account are ranked (two scans, no index on the landing tables). */
create or replace function legacy.merged_duplicates(p_table text) returns table (id uuid)
language sql stable set search_path = '' as $$
  with merged as (select distinct m.user_id from legacy.user_map m where m.legacy_id <> m.user_id),
       rows as (
         select f.id, m.user_id, f.anime_id, m.legacy_id = m.user_id as own, f.created_at as earliest,
                null::timestamptz as latest
           from legacy.favorites f join legacy.user_map m on m.legacy_id = f.user_id
          where p_table = 'favorites' and m.user_id in (select user_id from merged)
         union all
         select p.id, m.user_id, p.anime_id, m.legacy_id = m.user_id, null,
                coalesce(p.last_watched_at, p.created_at, 'epoch')
           from legacy.watch_progress p join legacy.user_map m on m.legacy_id = p.user_id
          where p_table = 'watch_progress' and m.user_id in (select user_id from merged))
  select r.id from (select rows.id, row_number() over (partition by rows.user_id, rows.anime_id
                                                       order by rows.own desc, rows.earliest, rows.latest desc,
                                                                rows.id) as n
                      from rows) r
   where r.n > 1
$$;

create or replace view legacy.users_fixed as
select x.id::text as legacy_id, x.id, x.email, x.password_hash, x.avatar_url, x.is_active, x.created_at,
       x.survivor,
       coalesce(x.invalid,
                case when exists (select 1 from data.users d where d.email = x.email and d.id <> x.survivor)
                     then 'email_taken_in_new_system' end,
                case when x.survivor <> x.id then 'email_case_duplicate_merged' end) as skip_reason,
       array_remove(array[case when x.email_raw <> x.email then 'email_normalised' end,
                          case when x.avatar is not null and x.avatar_url is null then 'avatar_dropped_not_https' end],
                    null) as repairs,
       jsonb_build_object('email', x.email_raw, 'survivor', x.survivor, 'is_active', x.is_active,
                          'created_at', x.created_at, 'avatar', x.avatar) as detail
  from (select s.*,
               case when s.invalid is null
                    then first_value(s.id) over (partition by s.invalid is null, s.email
                                                 order by s.is_active desc, s.created_at, s.id) end as survivor
          from (select u.id, u.email as email_raw, lower(btrim(u.email)) as email, u.password_hash, u.avatar,
                       case when u.avatar ~ '^https://' and length(u.avatar) <= 2048 then u.avatar end as avatar_url,
                       coalesce(u.is_active, true) as is_active, coalesce(u.created_at, 'epoch') as created_at,
                       case when u.id is null then 'id_missing'
                            when lower(btrim(u.email)) !~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' or length(btrim(u.email)) > 254
                              or u.email is null then 'email_invalid'
                            when u.password_hash is null or u.password_hash !~ '^\$2[aby]\$' then 'password_hash_not_legacy_bcrypt'
                       end as invalid
                  from legacy.users u) s) x;

create or replace view legacy.user_roles_fixed as
select x.legacy_id, x.user_id, x.role, x.granted_by, x.granted_at,
       coalesce(x.invalid,
                case when row_number() over (partition by x.invalid is null, x.user_id, x.role
                                             order by x.granted_at, x.legacy_id) > 1
                     then 'duplicate_role_link' end) as skip_reason,
       '{}'::text[] as repairs, x.detail
  from (select ur.id::text as legacy_id, m.user_id, r.name as role, g.user_id as granted_by,
               coalesce(ur.granted_at, u.created_at, 'epoch') as granted_at,
               case when m.user_id is null then 'user_not_imported'
                    when dr.name is null then 'role_unknown'
                    when dr.is_system then 'system_role_for_person' end as invalid,
               jsonb_build_object('user_id', ur.user_id, 'role', coalesce(r.name, ur.role_id::text),
                                  'granted_at', ur.granted_at) as detail
          from legacy.user_roles ur
          left join legacy.user_map m on m.legacy_id = ur.user_id
          left join legacy.users u on u.id = ur.user_id
          left join legacy.roles r on r.id = ur.role_id
          left join data.roles dr on dr.name = r.name
          left join legacy.user_map g on g.legacy_id = ur.granted_by) x;

create or replace view legacy.anime_fixed as
select x.*, array_remove(array[
         case when x.state_raw is distinct from x.state then 'state_unknown_set_draft' end,
         case when x.source_raw is distinct from x.source then 'source_unknown_set_manual' end,
         case when x.status_raw is distinct from x.status then 'status_unknown_dropped' end,
         case when x.season_raw is distinct from x.season then 'season_unknown_dropped' end,
         case when x.year_raw is distinct from x.year then 'year_out_of_range_dropped' end,
         case when x.poster_raw is distinct from x.poster_url then 'poster_url_not_absolute_dropped' end,
         case when x.lock_dropped then 'lock_field_unknown_dropped' end,
         case when x.user_dropped then 'user_reference_dropped' end], null) as repairs
  from (select a.id::text as legacy_id, a.id, a.title, a.title_ru, a.title_en, a.title_original, a.description,
               case when a.poster_url ~ '^https?://' then a.poster_url end as poster_url, a.poster_url as poster_raw,
               case when a.year between 1900 and 2100 then a.year end as year, a.year as year_raw,
               case when a.season in ('winter', 'spring', 'summer', 'fall') then a.season end as season, a.season as season_raw,
               case when a.status in ('anons', 'ongoing', 'released') then a.status end as status, a.status as status_raw,
               case when a.state in ('draft', 'pending', 'published', 'broken', 'archived') then a.state else 'draft' end as state,
               a.state as state_raw,
               case when a.source in ('manual', 'parser', 'import') then a.source else 'manual' end as source,
               a.source as source_raw,
               case when not coalesce(a.is_locked, false) then '{}'::text[]
                    when coalesce(cardinality(a.locked_fields), 0) = 0 then private.anime_content_fields()
                    else array(select f from unnest(a.locked_fields) f where f = any (private.anime_editable_fields())) end
                 as locked_fields,
               coalesce(a.is_locked and cardinality(a.locked_fields) > 0
                        and not a.locked_fields <@ private.anime_editable_fields(), false) as lock_dropped,
               case when a.is_locked then lb.user_id end as locked_by,
               case when a.is_locked then a.locked_reason end as locked_reason,
               case when a.is_locked then coalesce(a.locked_at, a.updated_at, a.created_at, 'epoch') end as locked_at,
               case when a.is_deleted then coalesce(a.deleted_at, a.updated_at, a.created_at, 'epoch') end as deleted_at,
               case when a.is_deleted then db.user_id end as deleted_by,
               case when a.is_deleted then a.delete_reason end as delete_reason,
               cb.user_id as created_by, ub.user_id as updated_by,
               coalesce(a.created_at, 'epoch') as created_at, coalesce(a.updated_at, a.created_at, 'epoch') as updated_at,
               (a.created_by is not null and cb.user_id is null) or (a.updated_by is not null and ub.user_id is null)
                 or (a.is_locked and a.locked_by is not null and lb.user_id is null)
                 or (a.is_deleted and a.deleted_by is not null and db.user_id is null) as user_dropped,
               case when a.title is null or btrim(a.title) = '' then 'title_missing' end as skip_reason,
               jsonb_build_object('title', a.title, 'state', a.state, 'source', a.source, 'year', a.year,
                                  'season', a.season, 'status', a.status, 'poster_url', a.poster_url,
                                  'locked_fields', a.locked_fields) as detail
          from legacy.anime a
          left join legacy.user_map cb on cb.legacy_id = a.created_by
          left join legacy.user_map ub on ub.legacy_id = a.updated_by
          left join legacy.user_map lb on lb.legacy_id = a.locked_by
          left join legacy.user_map db on db.legacy_id = a.deleted_by) x;

-- title ↔ Shikimori id: the old bindings and manual matches of staging rows
create or replace view legacy.bindings_fixed as
select x.legacy_id, x.anime_id, x.shikimori_id,
       coalesce(x.invalid,
                case when count(*) over (partition by x.invalid is null, x.shikimori_id) > 1
                       or count(*) over (partition by x.invalid is null, x.anime_id) > 1 then 'bound_twice' end,
                case when exists (select 1 from data.anime t where t.shikimori_id = x.shikimori_id and t.id <> x.anime_id)
                     then 'shikimori_id_taken' end) as skip_reason,
       '{}'::text[] as repairs, x.detail
  from (select min(c.legacy_id) as legacy_id, c.anime_id, c.shikimori_id,
               case when c.anime_id is null then 'anime_id_not_uuid'
                    when c.shikimori_id is null then 'not_a_shikimori_id'
                    when not exists (select 1 from data.anime t where t.id = c.anime_id) then 'anime_missing' end as invalid,
               jsonb_build_object('anime_id', min(c.anime_raw), 'external_id', min(c.external_id)) as detail
          from (select 'binding:' || b.id as legacy_id, legacy.try_uuid(b.anime_id) as anime_id, b.anime_id as anime_raw,
                       e.external_id,
                       case when s.code = 'shikimori' and e.external_id ~ '^[1-9][0-9]{0,8}$' then e.external_id::integer end
                         as shikimori_id
                  from legacy.anime_external_binding b
                  left join legacy.anime_external e on e.id = b.anime_external_id
                  left join legacy.parser_sources s on s.id = e.source_id
                union all
                select 'match:' || e.id, legacy.try_uuid(e.anime_id), e.anime_id, e.external_id,
                       case when s.code = 'shikimori' and e.external_id ~ '^[1-9][0-9]{0,8}$' then e.external_id::integer end
                  from legacy.anime_external e
                  left join legacy.parser_sources s on s.id = e.source_id
                 where e.matched_by = 'manual' and e.anime_id is not null) c
         group by c.anime_id, c.shikimori_id) x;

create or replace view legacy.episodes_fixed as
select x.legacy_id, x.id, x.anime_id, x.number, x.title, x.source, x.locked_fields, x.deleted_at,
       coalesce(x.invalid,
                case when row_number() over (partition by x.invalid is null, x.anime_id, x.number
                                             order by x.deleted_at is not null, x.updated_at desc nulls last, x.id) > 1
                     then 'duplicate_number' end) as skip_reason,
       array_remove(array[case when x.source_raw is distinct from x.source then 'source_unknown_set_manual' end], null) as repairs,
       x.detail
  from (select e.id::text as legacy_id, e.id, r.anime_id, e.number, e.title,
               case when e.source in ('manual', 'parser', 'import') then e.source else 'manual' end as source,
               e.source as source_raw,
               -- '*': the whole episode is locked (ingest.keeps)
               case when e.is_locked then coalesce(nullif(e.locked_fields, '{}'), '{*}') else '{}'::text[] end as locked_fields,
               case when e.is_deleted then coalesce(e.deleted_at, e.updated_at, 'epoch') end as deleted_at,
               e.updated_at,
               case when r.anime_id is null then 'release_missing'
                    when not exists (select 1 from data.anime a where a.id = r.anime_id) then 'anime_missing'
                    when e.number is null or e.number < 1 then 'number_not_positive' end as invalid,
               jsonb_build_object('release_id', e.release_id, 'anime_id', r.anime_id, 'number', e.number) as detail
          from legacy.episodes e
          left join legacy.releases r on r.id = e.release_id) x;

-- (detail is built only for a skipped row: building it for two million rows costs seconds)
create or replace view legacy.favorites_fixed as
select x.legacy_id, x.user_id, x.anime_id, x.created_at, x.skip_reason, '{}'::text[] as repairs,
       case when x.skip_reason is not null
            then jsonb_build_object('user_id', x.legacy_user_id, 'anime_id', x.anime_id, 'created_at', x.created_at) end
         as detail
  from (select f.id::text as legacy_id, m.user_id, f.user_id as legacy_user_id, f.anime_id,
               coalesce(f.created_at, 'epoch') as created_at,
               case when m.user_id is null then 'user_not_imported'
                    when not exists (select 1 from data.anime a where a.id = f.anime_id) then 'anime_missing'
                    when d.id is not null then 'duplicate_after_email_merge' end as skip_reason
          from legacy.favorites f
          left join legacy.user_map m on m.legacy_id = f.user_id
          left join legacy.merged_duplicates('favorites') d on d.id = f.id) x;

create or replace view legacy.watch_progress_fixed as
select y.legacy_id, y.user_id, y.anime_id, y.episode_number, y.position_seconds, y.progress_percent,
       y.last_watched_at, y.skip_reason, y.repairs,
       case when y.skip_reason is not null or y.repairs <> '{}'
            then jsonb_build_object('user_id', y.legacy_user_id, 'anime_id', y.anime_id, 'episode', y.episode_number,
                                    'position_seconds', y.position_raw, 'progress_percent', y.percent_raw,
                                    'last_watched_at', y.last_watched_at) end as detail
  from (select x.legacy_id, x.user_id, x.legacy_user_id, x.anime_id, x.episode_number, x.position_seconds,
               x.position_raw, x.progress_percent, x.percent_raw, x.last_watched_at,
               coalesce(x.invalid,
                        case when x.position_seconds is null and x.progress_percent is null then 'no_position' end,
                        case when x.duplicate then 'duplicate_after_email_merge' end) as skip_reason,
               array_remove(array[case when x.percent_raw is distinct from x.progress_percent then 'percent_out_of_range_clamped' end,
                                  case when x.position_raw is distinct from x.position_seconds then 'position_negative_dropped' end],
                            null) as repairs
          from (select p.id, p.id::text as legacy_id, m.user_id, p.user_id as legacy_user_id, p.anime_id,
                       p.episode as episode_number, d.id is not null as duplicate,
                       case when p.position_seconds >= 0 then p.position_seconds end as position_seconds,
                       p.position_seconds as position_raw,
                       -- greatest() ignores nulls: an unknown percent stays unknown
                       case when p.progress_percent is not null
                            then round(least(greatest(p.progress_percent, 0), 100)::numeric, 2) end as progress_percent,
                       round(p.progress_percent::numeric, 2) as percent_raw,
                       coalesce(p.last_watched_at, p.created_at, 'epoch') as last_watched_at,
                       case when m.user_id is null then 'user_not_imported'
                            when not exists (select 1 from data.anime a where a.id = p.anime_id) then 'anime_missing'
                            when p.episode is null or p.episode < 1 then 'episode_not_positive' end as invalid
                  from legacy.watch_progress p
                  left join legacy.user_map m on m.legacy_id = p.user_id
                  left join legacy.merged_duplicates('watch_progress') d on d.id = p.id) x) y;

create or replace view legacy.audit_logs_fixed as
select x.*,
       case when x.actor_type is null or x.actor_type not in ('user', 'system', 'anonymous') then 'actor_type_invalid'
            when x.action is null or x.action !~ '^[a-z_]+(\.[a-z_]+)+$' then 'action_invalid'
            when x.entity_type is null then 'entity_type_missing'
            when x.actor_type = 'user' and x.actor_id is null and x.action not like 'security.%' then 'user_actor_missing'
       end as skip_reason,
       array_remove(array[case when x.ip_raw is not null and x.ip is null then 'ip_invalid_dropped' end,
                          case when (x.before_raw is not null and x.before is null)
                                 or (x.after_raw is not null and x.after is null) then 'json_invalid_dropped' end,
                          case when x.actor_raw is not null and x.actor_id is null then 'user_reference_dropped' end],
                    null) as repairs
  from (select l.id, l.id::text as legacy_id, m.user_id as actor_id, l.actor_id as actor_raw, l.actor_type, l.action,
               l.entity_type, l.entity_id, legacy.try_jsonb(l.before) as before, l.before::text as before_raw,
               legacy.try_jsonb(l.after) as after, l.after::text as after_raw, l.reason,
               legacy.try_inet(l.ip_address) as ip, l.ip_address as ip_raw, l.user_agent,
               coalesce(l.created_at, 'epoch') as created_at,
               jsonb_build_object('actor_id', l.actor_id, 'actor_type', l.actor_type, 'action', l.action,
                                  'entity_type', l.entity_type, 'entity_id', l.entity_id, 'ip_address', l.ip_address,
                                  'created_at', l.created_at) as detail
          from legacy.audit_logs l
          left join legacy.user_map m on m.legacy_id = l.actor_id) x;

-- the first row is the one the old system used
create or replace view legacy.parser_settings_fixed as
select x.*,
       null::text as skip_reason,
       array_remove(array[case when x.mode_raw is distinct from x.mode then 'mode_unknown_set_manual' end,
                          case when x.interval_raw is distinct from x.autoupdate_interval_minutes then 'interval_clamped' end,
                          case when x.types_dropped then 'translation_type_unknown_dropped' end,
                          case when x.ids_dropped then 'blacklist_id_not_numeric_dropped' end], null) as repairs
  from (select s.id::text as legacy_id,
               case when s.mode in ('auto', 'manual') then s.mode else 'manual' end as mode, s.mode as mode_raw,
               coalesce(s.publish_enabled, false) and not coalesce(s.stage_only, true) as auto_publish,
               coalesce(s.enable_autoupdate, false) as autoupdate_enabled,
               least(greatest(coalesce(s.update_interval_minutes, 60), 0), 1440) as autoupdate_interval_minutes,
               coalesce(s.update_interval_minutes, 60) as interval_raw,
               -- an empty old list meant "no filter": both types
               coalesce(nullif(array(select distinct case t when 'sub' then 'subtitles' when 'subtitles' then 'subtitles'
                                                          when 'voice' then 'voice' end
                                       from unnest(legacy.json_texts(s.allowed_translation_types)) t
                                      where t in ('sub', 'subtitles', 'voice') order by 1), '{}'),
                        '{voice,subtitles}') as allowed_translation_types,
               exists (select 1 from unnest(legacy.json_texts(s.allowed_translation_types)) t
                        where t not in ('sub', 'subtitles', 'voice')) as types_dropped,
               legacy.json_texts(s.allowed_translations) as allowed_translations,
               legacy.json_texts(s.allowed_qualities) as allowed_qualities,
               legacy.json_texts(s.blacklist_titles) as blacklist_titles,
               array(select i::integer from unnest(legacy.json_texts(s.blacklist_external_ids)) i
                      where i ~ '^[0-9]{1,9}$') as blacklist_shikimori_ids,
               exists (select 1 from unnest(legacy.json_texts(s.blacklist_external_ids)) i
                        where i !~ '^[0-9]{1,9}$') as ids_dropped,
               to_jsonb(s) as detail
          from legacy.parser_settings s
         order by s.id
         limit 1) x;

/* The first import into an empty table (the cut-over itself) loads it as pg_restore does: the
   foreign keys are checked once, set-based, after the insert instead of once per row, and the
   secondary indexes are built once instead of maintained row by row (together two thirds of the
   favorites step). Both are re-created from their own definitions (pg_get_constraintdef,
   pg_get_indexdef), so sql/data/ stays their one owner; the table is locked for the step. The
   primary key stays (the upsert needs it). A re-run (table not empty) changes nothing of this. */
create or replace function legacy.bulk_load_begin(p_table regclass) returns text[]
language plpgsql set search_path = '' as $$
declare
  v_empty boolean;
  v_restore text[];
  v_drop text;
begin
  execute format('select not exists (select from %s)', p_table) into v_empty;
  if not v_empty then
    return '{}';
  end if;
  select coalesce(array_agg(format('alter table %s add constraint %I %s', p_table, c.conname,
                                   pg_get_constraintdef(c.oid))), '{}')
    into v_restore
    from pg_constraint c where c.conrelid = p_table and c.contype = 'f';
  select v_restore || coalesce(array_agg(pg_get_indexdef(i.indexrelid)), '{}')
    into v_restore
    from pg_index i
   where i.indrelid = p_table
     and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid);
  for v_drop in
    select format('alter table %s drop constraint %I', p_table, c.conname)
      from pg_constraint c where c.conrelid = p_table and c.contype = 'f'
    union all
    select format('drop index %s', i.indexrelid::regclass)
      from pg_index i
     where i.indrelid = p_table and not exists (select 1 from pg_constraint c where c.conindid = i.indexrelid)
  loop
    execute v_drop;
  end loop;
  return v_restore;
end
$$;

create or replace function legacy.bulk_load_end(p_restore text[]) returns void
language plpgsql set search_path = '' as $$
declare
  v_statement text;
begin
  if p_restore <> '{}' then
    perform set_config('maintenance_work_mem', '256MB', true);  -- index builds in memory
  end if;
  foreach v_statement in array p_restore loop
    execute v_statement;
  end loop;
end
$$;

-- The upserts, one per step, reading pg_temp.legacy_rows (the step's view, materialised).
-- Each returns how many rows it wrote; an unchanged row is not written.
create or replace function legacy.write_users() returns bigint
language plpgsql set search_path = '' as $$
declare
  n bigint;
begin
  truncate legacy.user_map;
  insert into legacy.user_map (legacy_id, user_id, email)
  select r.id, case when r.skip_reason is null then r.id
                    when r.skip_reason = 'email_case_duplicate_merged' then r.survivor end, r.email
    from pg_temp.legacy_rows r where r.id is not null;
  insert into data.users as d (id, email, password_hash, avatar_url, is_active, created_at)
  select r.id, r.email, r.password_hash, r.avatar_url, r.is_active, r.created_at
    from pg_temp.legacy_rows r where r.skip_reason is null
  on conflict (id) do update
     set email = excluded.email, avatar_url = excluded.avatar_url, is_active = excluded.is_active,
         created_at = excluded.created_at,
         -- a hash upgraded at a sign-in here is newer than the old system's
         password_hash = case when d.password_hash like '$argon2id$%' then d.password_hash else excluded.password_hash end
   where (d.email, d.avatar_url, d.is_active, d.created_at)
           is distinct from (excluded.email, excluded.avatar_url, excluded.is_active, excluded.created_at)
      or (d.password_hash not like '$argon2id$%' and d.password_hash <> excluded.password_hash);
  get diagnostics n = row_count;
  return n;
end
$$;

create or replace function legacy.write_user_roles() returns bigint
language plpgsql set search_path = '' as $$
declare
  n bigint;
begin
  insert into data.user_roles as d (user_id, role, granted_by, granted_at)
  select r.user_id, r.role, r.granted_by, r.granted_at from pg_temp.legacy_rows r where r.skip_reason is null
  on conflict (user_id, role) do update set granted_by = excluded.granted_by, granted_at = excluded.granted_at
   where (d.granted_by, d.granted_at) is distinct from (excluded.granted_by, excluded.granted_at);
  get diagnostics n = row_count;
  return n;
end
$$;

create or replace function legacy.write_anime() returns bigint
language plpgsql set search_path = '' as $$
declare
  n bigint;
begin
  insert into data.anime as d (id, title, title_ru, title_en, title_original, description, poster_url, year,
                               season, status, state, source, locked_fields, locked_by, locked_reason, locked_at,
                               deleted_at, deleted_by, delete_reason, created_by, updated_by, created_at, updated_at)
  select r.id, r.title, r.title_ru, r.title_en, r.title_original, r.description, r.poster_url, r.year,
         r.season, r.status, r.state, r.source, r.locked_fields, r.locked_by, r.locked_reason, r.locked_at,
         r.deleted_at, r.deleted_by, r.delete_reason, r.created_by, r.updated_by, r.created_at, r.updated_at
    from pg_temp.legacy_rows r where r.skip_reason is null
  on conflict (id) do update
     set title = excluded.title, title_ru = excluded.title_ru, title_en = excluded.title_en,
         -- the old system never generated names: a Russian title it replaces is not generated
         title_ru_generated = d.title_ru_generated and excluded.title_ru is not distinct from d.title_ru,
         title_original = excluded.title_original, description = excluded.description,
         poster_url = excluded.poster_url, year = excluded.year, season = excluded.season,
         status = excluded.status, state = excluded.state, source = excluded.source,
         locked_fields = excluded.locked_fields, locked_by = excluded.locked_by,
         locked_reason = excluded.locked_reason, locked_at = excluded.locked_at,
         deleted_at = excluded.deleted_at, deleted_by = excluded.deleted_by,
         delete_reason = excluded.delete_reason, created_by = excluded.created_by,
         updated_by = excluded.updated_by, created_at = excluded.created_at
   where (d.title, d.title_ru, d.title_en, d.title_original, d.description, d.poster_url, d.year, d.season,
          d.status, d.state, d.source, d.locked_fields, d.locked_by, d.locked_reason, d.locked_at, d.deleted_at,
          d.deleted_by, d.delete_reason, d.created_by, d.updated_by, d.created_at)
         is distinct from
         (excluded.title, excluded.title_ru, excluded.title_en, excluded.title_original, excluded.description,
          excluded.poster_url, excluded.year, excluded.season, excluded.status, excluded.state, excluded.source,
          excluded.locked_fields, excluded.locked_by, excluded.locked_reason, excluded.locked_at,
          excluded.deleted_at, excluded.deleted_by, excluded.delete_reason, excluded.created_by,
          excluded.updated_by, excluded.created_at);
  get diagnostics n = row_count;
  return n;
end
$$;

create or replace function legacy.write_bindings() returns bigint
language plpgsql set search_path = '' as $$
declare
  n bigint;
begin
  update data.anime a set shikimori_id = r.shikimori_id
    from pg_temp.legacy_rows r
   where r.skip_reason is null and a.id = r.anime_id and a.shikimori_id is distinct from r.shikimori_id;
  get diagnostics n = row_count;
  return n;
end
$$;

create or replace function legacy.write_episodes() returns bigint
language plpgsql set search_path = '' as $$
declare
  n bigint;
begin
  insert into data.episodes as d (id, anime_id, number, title, source, locked_fields, deleted_at)
  select r.id, r.anime_id, r.number, r.title, r.source, r.locked_fields, r.deleted_at
    from pg_temp.legacy_rows r where r.skip_reason is null
  on conflict (anime_id, number) do update
     set title = excluded.title, source = excluded.source, locked_fields = excluded.locked_fields,
         deleted_at = excluded.deleted_at
   where (d.title, d.source, d.locked_fields, d.deleted_at)
         is distinct from (excluded.title, excluded.source, excluded.locked_fields, excluded.deleted_at);
  get diagnostics n = row_count;
  return n;
end
$$;

create or replace function legacy.write_favorites() returns bigint
language plpgsql set search_path = '' as $$
declare
  n bigint;
  v_keys text[] := legacy.bulk_load_begin('data.favorites');
begin
  -- the old system had no list status: every title lands as 'planned' (the default); a status
  -- set here after the cut-over is kept
  insert into data.favorites as d (user_id, anime_id, created_at)
  select r.user_id, r.anime_id, r.created_at from pg_temp.legacy_rows r where r.skip_reason is null
  on conflict (user_id, anime_id) do update set created_at = excluded.created_at
   where d.created_at <> excluded.created_at;
  get diagnostics n = row_count;
  perform legacy.bulk_load_end(v_keys);
  return n;
end
$$;

create or replace function legacy.write_watch_progress() returns bigint
language plpgsql set search_path = '' as $$
declare
  n bigint;
  v_keys text[] := legacy.bulk_load_begin('data.watch_progress');
begin
  insert into data.watch_progress as d (user_id, anime_id, episode_number, episode_id, position_seconds,
                                        progress_percent, last_watched_at)
  select r.user_id, r.anime_id, r.episode_number, e.id, r.position_seconds, r.progress_percent, r.last_watched_at
    from pg_temp.legacy_rows r
    left join data.episodes e on e.anime_id = r.anime_id and e.number = r.episode_number
   where r.skip_reason is null
  -- progress saved here after the cut-over is newer and stays
  on conflict (user_id, anime_id) do update
     set episode_number = excluded.episode_number, episode_id = excluded.episode_id,
         position_seconds = excluded.position_seconds, progress_percent = excluded.progress_percent,
         last_watched_at = excluded.last_watched_at, updated_at = now()
   where d.last_watched_at < excluded.last_watched_at;
  get diagnostics n = row_count;
  perform legacy.bulk_load_end(v_keys);
  return n;
end
$$;

create or replace function legacy.write_audit_logs() returns bigint
language plpgsql set search_path = '' as $$
declare
  n bigint;
begin
  insert into legacy.audit_map (legacy_id, audit_id)
  select r.id, nextval(pg_get_serial_sequence('data.audit_log', 'id'))
    from pg_temp.legacy_rows r
   where r.skip_reason is null and not exists (select 1 from legacy.audit_map m where m.legacy_id = r.id);
  insert into data.audit_log (id, actor_id, actor_type, action, entity_type, entity_id, before, after, reason,
                              ip, user_agent, created_at)
  overriding system value
  select m.audit_id, r.actor_id, r.actor_type, r.action, r.entity_type, r.entity_id, r.before, r.after, r.reason,
         r.ip, r.user_agent, r.created_at
    from pg_temp.legacy_rows r join legacy.audit_map m on m.legacy_id = r.id
   where r.skip_reason is null and not exists (select 1 from data.audit_log a where a.id = m.audit_id);
  get diagnostics n = row_count;
  return n;
end
$$;

create or replace function legacy.write_parser_settings() returns bigint
language plpgsql set search_path = '' as $$
declare
  n bigint;
begin
  update data.ingest_settings s
     set mode = r.mode, auto_publish = r.auto_publish, autoupdate_enabled = r.autoupdate_enabled,
         autoupdate_interval_minutes = r.autoupdate_interval_minutes,
         allowed_translation_types = r.allowed_translation_types, allowed_translations = r.allowed_translations,
         allowed_qualities = r.allowed_qualities, blacklist_titles = r.blacklist_titles,
         blacklist_shikimori_ids = r.blacklist_shikimori_ids, updated_at = now()
    from pg_temp.legacy_rows r
   where (s.mode, s.auto_publish, s.autoupdate_enabled, s.autoupdate_interval_minutes, s.allowed_translation_types,
          s.allowed_translations, s.allowed_qualities, s.blacklist_titles, s.blacklist_shikimori_ids)
         is distinct from
         (r.mode, r.auto_publish, r.autoupdate_enabled, r.autoupdate_interval_minutes, r.allowed_translation_types,
          r.allowed_translations, r.allowed_qualities, r.blacklist_titles, r.blacklist_shikimori_ids);
  get diagnostics n = row_count;
  return n;
end
$$;

/* One step of the import, in the caller's transaction: materialise the step's view, record its
   skipped and repaired rows (replacing the previous run's) and write. The report row: rows landed
   (read), written (inserted or changed), skipped and repaired. */
create or replace function legacy.import_step(p_step text)
returns table (step text, read bigint, written bigint, skipped bigint, repaired bigint)
language plpgsql security definer set search_path = '' as $$
declare
  v_read bigint;
  v_written bigint;
begin
  if not exists (select 1 from legacy.plan() p where p.step = p_step) then
    raise exception 'unknown import step %', p_step using errcode = '22023';
  end if;
  drop table if exists pg_temp.legacy_rows;
  execute format('create temp table legacy_rows on commit drop as select * from legacy.%I', p_step || '_fixed');
  execute 'select count(*) from pg_temp.legacy_rows' into v_read;
  delete from legacy.issues i where i.step = p_step;
  execute $sql$
    insert into legacy.issues (step, legacy_id, action, reason, detail)
    select $1, r.legacy_id, 'skipped', r.skip_reason, r.detail from pg_temp.legacy_rows r where r.skip_reason is not null
    union all
    select $1, r.legacy_id, 'repaired', x.reason, r.detail
      from pg_temp.legacy_rows r cross join unnest(r.repairs) x(reason) where r.skip_reason is null
  $sql$ using p_step;
  execute format('select legacy.%I()', 'write_' || p_step) into v_written;
  drop table pg_temp.legacy_rows;
  return query
    select p_step, v_read, v_written,
           count(*) filter (where i.action = 'skipped'), count(*) filter (where i.action = 'repaired')
      from legacy.issues i where i.step = p_step;
end
$$;

-- every skipped and repaired row of the last run, step by step in plan order
create or replace function legacy.issues_report()
returns table (step text, legacy_id text, action text, reason text, detail jsonb)
language sql stable security definer set search_path = '' as $$
  select i.step, i.legacy_id, i.action, i.reason, i.detail
    from legacy.issues i
    join (select p.step, row_number() over () as position from legacy.plan() p) p on p.step = i.step
   order by p.position, i.action, i.reason, i.legacy_id
$$;
