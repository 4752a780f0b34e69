/* Admin over ingest: the gated row sources behind the api views of sql/api/admin_ingest.sql,
   and the helpers of its RPCs (docs/admin-api.md, "Ingest"). Same pattern as private/admin.sql,
   whose helpers (admin_gate, admin_denied, audit, jsonb_pick, ...) are reused, not copied:

   - each api view reads a view here owned by kitsu_owner (it reads past RLS, and reads the
     procrastinate queue, on which no web role may hold a grant) whose only qualifier is
     private.admin_gate(<permission>): 403 without the permission, checked once before any row.
   - the *_all views are the same rows ungated, read by the security definer RPCs for their
     answers; no grant.
   - functions called inside the gated views run as the caller (web_user): the views call none
     but the gate, and read the sync tasks from data.sync_tasks (as the view's owner).

   The engine (sql/ingest/) is not changed: the RPCs check permissions, validate, lock,
   call ingest.* and audit. Code: re-applied with create or replace. */

-- Settings an admin may change through rpc/admin_update_ingest_settings (mode has its own RPC;
-- stopped_at / stopped_reason belong to the emergency stop; id and updated_at are not settings).
create or replace function private.ingest_setting_fields() returns text[]
language sql immutable parallel safe set search_path = '' as $$
  select array['new_title_state', 'auto_publish', 'catalog_interval_minutes',
               'schedule_interval_minutes', 'episodes_interval_minutes', 'autoupdate_enabled',
               'autoupdate_interval_minutes', 'allowed_translation_types', 'allowed_translations',
               'allowed_qualities', 'blacklist_titles', 'blacklist_shikimori_ids']
$$;

-- The filters among them: changing one also needs parser.configure ("Change ingest filters").
create or replace function private.ingest_filter_fields() returns text[]
language sql immutable parallel safe set search_path = '' as $$
  select array['allowed_translation_types', 'allowed_translations', 'allowed_qualities',
               'blacklist_titles', 'blacklist_shikimori_ids']
$$;

-- Settings and the state of the queue, ungated (RPC answers). One row.
create or replace view private.admin_ingest_settings_all as
select s.mode, s.stopped_at is not null as stopped, s.stopped_at, s.stopped_reason,
       s.new_title_state, s.auto_publish, s.catalog_interval_minutes, s.schedule_interval_minutes,
       s.episodes_interval_minutes, s.autoupdate_enabled, s.autoupdate_interval_minutes,
       s.allowed_translation_types, s.allowed_translations, s.allowed_qualities,
       s.blacklist_titles, s.blacklist_shikimori_ids, s.updated_at,
       (select count(*)::integer from procrastinate.procrastinate_jobs j
         where j.task_name in (select t.task from data.sync_tasks t)
           and j.status = 'todo') as jobs_queued,
       (select count(*)::integer from procrastinate.procrastinate_jobs j
         where j.task_name in (select t.task from data.sync_tasks t)
           and j.status = 'doing') as jobs_running,
       (select count(*)::integer from data.sync_runs r where r.finished_at is null)
         as runs_unfinished
  from data.ingest_settings s;

create or replace function private.admin_ingest_settings_json() returns jsonb
language sql stable set search_path = '' as $$
  select to_jsonb(r) from private.admin_ingest_settings_all r
$$;

-- Sync runs with their job's queue state and derived timings, ungated.
create or replace view private.admin_sync_runs_all as
select r.id, r.task, r.status, r.args, r.tick, r.job_id, j.status::text as job_status,
       coalesce(j.abort_requested, false) as abort_requested, r.worker_pid, r.attempts, r.cursor,
       r.pages_done, r.pages_total,
       case when r.pages_total > 0
            then round(100.0 * least(r.pages_done, r.pages_total) / r.pages_total, 1) end as progress_percent,
       r.items_fetched, r.items_inserted, r.items_updated, r.items_unchanged, r.items_skipped,
       r.requests, r.published, r.error_code, r.error, r.started_at, r.progressed_at, r.finished_at,
       round(extract(epoch from coalesce(r.finished_at, now()) - r.started_at), 3) as duration_seconds,
       case when r.finished_at is null
            then round(extract(epoch from now() - r.progressed_at), 3) end as idle_seconds
  from data.sync_runs r
  left join procrastinate.procrastinate_jobs j on j.id = r.job_id;

-- Procrastinate jobs of the sync tasks (queued, running and finished), ungated.
create or replace view private.admin_sync_jobs_all as
select j.id, j.task_name as task, j.status::text as status, j.args, j.attempts, j.abort_requested,
       j.queue_name, j.lock, j.scheduled_at,
       (select min(e.at) from procrastinate.procrastinate_events e
         where e.job_id = j.id and e.type = 'deferred') as queued_at,
       (select max(e.at) from procrastinate.procrastinate_events e
         where e.job_id = j.id and e.type = 'started') as started_at,
       (select r.id from data.sync_runs r where r.job_id = j.id order by r.id desc limit 1) as run_id
  from procrastinate.procrastinate_jobs j
 where j.task_name in (select t.task from data.sync_tasks t);

/* The staging area: each staged Shikimori title with its match and publish state, ungated.
   publish_state: published (this version is in the catalog), pending (changes wait for the next
   publish), unmatched (an admin unlinked it: never published until matched again). */
create or replace view private.admin_staging_anime_all as
select sa.shikimori_id, sa.payload ->> 'title' as title, sa.payload ->> 'title_ru' as title_ru,
       sa.payload ->> 'title_en' as title_en, sa.payload ->> 'title_original' as title_original,
       sa.payload ->> 'kind' as kind, sa.payload ->> 'status' as status,
       (sa.payload ->> 'year')::integer as year, sa.anime_id, sa.matched_by,
       a.title as anime_title, a.state as anime_state, a.shikimori_id as anime_shikimori_id,
       a.deleted_at is not null as anime_deleted,
       case when sa.matched_by = 'unmatched' then 'unmatched'
            when sa.published_hash = sa.content_hash then 'published'
            else 'pending' end as publish_state,
       (select count(*)::integer from data.staging_episodes se where se.shikimori_id = sa.shikimori_id)
         as translations_staged,
       sa.run_id, sa.fetched_at, sa.published_at, sa.content_hash, sa.published_hash, sa.payload
  from data.staging_anime sa
  left join data.anime a on a.id = sa.anime_id;

create or replace function private.admin_staging_json(shikimori_id integer) returns jsonb
language sql stable set search_path = '' as $$
  select to_jsonb(r) - 'payload' from private.admin_staging_anime_all r
   where r.shikimori_id = admin_staging_json.shikimori_id
$$;

-- The staged title to change, locked for this transaction: 404 when unknown.
create or replace function private.admin_staging_for_update(shikimori_id integer)
returns data.staging_anime
language plpgsql volatile set search_path = '' as $$
declare
  target data.staging_anime;
begin
  select * into target from data.staging_anime sa
   where sa.shikimori_id = admin_staging_for_update.shikimori_id for update;
  if not found then
    perform private.raise_error(404, 'staging_not_found', 'No staged title has this shikimori_id.',
                                hint => 'GET /admin_staging_anime');
  end if;
  return target;
end
$$;

-- 400 invalid_mode unless auto or manual.
create or replace function private.ingest_check_mode(mode text) returns void
language plpgsql stable set search_path = '' as $$
begin
  if ingest_check_mode.mode is null or ingest_check_mode.mode not in ('auto', 'manual') then
    perform private.raise_error(400, 'invalid_mode', 'mode must be auto or manual.');
  end if;
end
$$;

-- The gated row sources (owner rights; see the header). web_user may select from these only.
create or replace view private.admin_ingest_settings as
select r.* from private.admin_ingest_settings_all r where private.admin_gate('admin.parser.settings');

create or replace view private.admin_sync_runs as
select r.* from private.admin_sync_runs_all r where private.admin_gate('admin.parser.logs');

create or replace view private.admin_sync_jobs as
select r.* from private.admin_sync_jobs_all r where private.admin_gate('admin.parser.logs');

create or replace view private.admin_staging_anime as
select r.* from private.admin_staging_anime_all r where private.admin_gate('admin.parser.settings');
