/* Admin resources over ingest (contract §5 "Admin", §8; reference: docs/admin-api.md, "Ingest").
   Same access pattern as sql/api/admin.sql: views read gated owner-rights views
   (private/admin_ingest.sql) and answer 403 without the permission (GET is read-only: not
   audited); RPCs are security definer, check the permission first and answer a refusal with an
   audited 403 through response.status (private.admin_denied_unless). They call the ingest
   engine (sql/ingest/) for every change and audit what changed. Anonymous callers: 401. */

-- Settings, mode, emergency stop -------------------------------------------------------------

create view api.admin_ingest_settings with (security_invoker = true) as
select r.mode, r.stopped, r.stopped_at, r.stopped_reason, r.new_title_state, r.auto_publish,
       r.catalog_interval_minutes, r.schedule_interval_minutes, r.episodes_interval_minutes,
       r.autoupdate_enabled, r.autoupdate_interval_minutes, r.allowed_translation_types,
       r.allowed_translations, r.allowed_qualities, r.blacklist_titles, r.blacklist_shikimori_ids,
       r.updated_at, r.jobs_queued, r.jobs_running, r.runs_unfinished
  from private.admin_ingest_settings r;
comment on view api.admin_ingest_settings is $$Ingest settings (permission admin.parser.settings)
One row: mode, emergency stop, publishing of new titles, intervals, filters, and how many sync jobs wait or
run. Change it with rpc/admin_update_ingest_settings, rpc/admin_set_ingest_mode, rpc/admin_emergency_stop and
rpc/admin_resume_ingest. Without admin.parser.settings: 403 permission_denied.$$;
comment on column api.admin_ingest_settings.mode is 'auto: periodic ticks start syncs when due; manual: only admins and operators start them.';
comment on column api.admin_ingest_settings.stopped is 'The emergency stop is on: no sync starts or continues.';
comment on column api.admin_ingest_settings.stopped_at is 'When the emergency stop was set; null when not stopped.';
comment on column api.admin_ingest_settings.stopped_reason is 'Why it was stopped.';
comment on column api.admin_ingest_settings.new_title_state is 'State of titles ingest creates: published or pending (waits for review).';
comment on column api.admin_ingest_settings.auto_publish is 'Publish staging into the catalog at the end of every successful sync; false: only rpc/admin_publish does.';
comment on column api.admin_ingest_settings.catalog_interval_minutes is 'In auto mode, a catalog sync is due this long after the last successful one (0 to 10080).';
comment on column api.admin_ingest_settings.schedule_interval_minutes is 'The same for the calendar (0 to 10080).';
comment on column api.admin_ingest_settings.episodes_interval_minutes is 'The same for Kodik players (0 to 10080).';
comment on column api.admin_ingest_settings.autoupdate_enabled is 'Refresh ongoing titles periodically (autoupdate task).';
comment on column api.admin_ingest_settings.autoupdate_interval_minutes is 'The same for the autoupdate (0 to 1440).';
comment on column api.admin_ingest_settings.allowed_translation_types is 'Filter: translation types kept (voice, subtitles).';
comment on column api.admin_ingest_settings.allowed_translations is 'Filter: translation names or Kodik ids kept; empty = all.';
comment on column api.admin_ingest_settings.allowed_qualities is 'Filter: qualities kept (e.g. 1080p); empty = all.';
comment on column api.admin_ingest_settings.blacklist_titles is 'Filter: case-insensitive substrings; a title matching any in any language is not staged.';
comment on column api.admin_ingest_settings.blacklist_shikimori_ids is 'Filter: Shikimori ids never staged.';
comment on column api.admin_ingest_settings.updated_at is 'Last change of the settings.';
comment on column api.admin_ingest_settings.jobs_queued is 'Sync jobs waiting in the queue.';
comment on column api.admin_ingest_settings.jobs_running is 'Sync jobs a worker is running.';
comment on column api.admin_ingest_settings.runs_unfinished is 'Sync runs running or interrupted (waiting to be resumed).';

create function api.admin_update_ingest_settings(patch jsonb, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  requested text[];
  unknown_fields text[];
  filters text[];
  before_row data.ingest_settings;
  after_row data.ingest_settings;
  changed text[];
  audit_id bigint;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('admin.parser.settings', 'rpc/admin_update_ingest_settings', null);
  if refusal is not null then return refusal; end if;
  if admin_update_ingest_settings.patch is null or jsonb_typeof(admin_update_ingest_settings.patch) <> 'object'
     or admin_update_ingest_settings.patch = '{}'::jsonb then
    perform private.raise_error(400, 'empty_patch', 'patch must be a JSON object with at least one setting.');
  end if;
  requested := array(select k from jsonb_object_keys(admin_update_ingest_settings.patch) k order by k);
  unknown_fields := array(select k from unnest(requested) k
                           where k <> all (private.ingest_setting_fields()) order by k);
  if cardinality(unknown_fields) > 0 then
    perform private.raise_error(400, 'unknown_setting',
      format('These settings cannot be changed here: %s.', array_to_string(unknown_fields, ', ')),
      hint => case when 'mode' = any (unknown_fields) then 'mode: rpc/admin_set_ingest_mode. ' else '' end
              || 'Settings: ' || array_to_string(private.ingest_setting_fields(), ', '));
  end if;
  filters := array(select k from unnest(requested) k where k = any (private.ingest_filter_fields()));
  if cardinality(filters) > 0 and not private.has_permission('parser.configure') then
    return private.admin_denied('parser.configure', 'rpc/admin_update_ingest_settings',
                                array_to_string(filters, ','));
  end if;

  select * into before_row from data.ingest_settings s for update;
  after_row := jsonb_populate_record(before_row, admin_update_ingest_settings.patch);
  changed := array(select k from unnest(requested) k
                    where to_jsonb(before_row) -> k is distinct from to_jsonb(after_row) -> k);
  if cardinality(changed) = 0 then
    return jsonb_build_object('settings', private.admin_ingest_settings_json(), 'audit_log_id', null,
                              'warnings', jsonb_build_array('no_changes'));
  end if;

  after_row := ingest.update_settings(private.jsonb_pick(admin_update_ingest_settings.patch, changed));
  audit_id := private.audit('ingest_settings.update', 'ingest_settings', null,
                            private.jsonb_pick(to_jsonb(before_row), changed),
                            private.jsonb_pick(to_jsonb(after_row), changed),
                            admin_update_ingest_settings.reason);
  return jsonb_build_object('settings', private.admin_ingest_settings_json(), 'audit_log_id', audit_id,
                            'warnings', '[]'::jsonb);
end
$$;
comment on function api.admin_update_ingest_settings(jsonb, text) is $$Change ingest settings (permission admin.parser.settings)
patch: settings to change (new_title_state, auto_publish, *_interval_minutes, autoupdate_enabled, and the filters
allowed_translation_types, allowed_translations, allowed_qualities, blacklist_titles, blacklist_shikimori_ids,
which also need parser.configure). mode has its own RPC. Only changed values are written and audited
(ingest_settings.update, before/after, reason). Returns {settings, audit_log_id, warnings}.$$;

create function api.admin_set_ingest_mode(mode text, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  before_row data.ingest_settings;
  audit_id bigint;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('admin.parser.settings', 'rpc/admin_set_ingest_mode', admin_set_ingest_mode.mode);
  if refusal is not null then return refusal; end if;
  perform private.ingest_check_mode(admin_set_ingest_mode.mode);
  select * into before_row from data.ingest_settings s for update;
  if before_row.stopped_at is not null then
    perform private.raise_error(409, 'ingest_stopped',
      'Ingest is emergency-stopped; resuming it sets the mode.',
      hint => 'rpc/admin_resume_ingest (permission admin.parser.emergency)');
  end if;
  if before_row.mode = admin_set_ingest_mode.mode then
    return jsonb_build_object('settings', private.admin_ingest_settings_json(), 'audit_log_id', null,
                              'warnings', jsonb_build_array('no_changes'));
  end if;
  perform ingest.update_settings(jsonb_build_object('mode', admin_set_ingest_mode.mode));
  audit_id := private.audit('ingest.mode_change', 'ingest_settings', null,
                            jsonb_build_object('mode', before_row.mode),
                            jsonb_build_object('mode', admin_set_ingest_mode.mode),
                            admin_set_ingest_mode.reason);
  return jsonb_build_object('settings', private.admin_ingest_settings_json(), 'audit_log_id', audit_id,
                            'warnings', '[]'::jsonb);
end
$$;
comment on function api.admin_set_ingest_mode(text, text) is $$Switch ingest between auto and manual (permission admin.parser.settings)
auto: periodic ticks start syncs when due; manual: only triggers do. During an emergency stop: 409 ingest_stopped
(rpc/admin_resume_ingest sets the mode). Audited (ingest.mode_change). Returns {settings, audit_log_id, warnings}.$$;

create function api.admin_emergency_stop(reason text)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  before_row data.ingest_settings;
  after_row data.ingest_settings;
  queued integer;
  running integer;
  stopped integer;
  runs_closed integer;
  runs_stopping integer;
  audit_id bigint;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('admin.parser.emergency', 'rpc/admin_emergency_stop', null);
  if refusal is not null then return refusal; end if;
  if coalesce(btrim(admin_emergency_stop.reason), '') = '' then
    perform private.raise_error(400, 'reason_required', 'Say why ingest is stopped (reason).');
  end if;
  select * into before_row from data.ingest_settings s for update;
  -- lock the sync jobs first: workers fetch with skip locked, so the counts stay exact
  select count(*) filter (where x.status = 'todo'), count(*) filter (where x.status = 'doing')
    into queued, running
    from (select j.status from procrastinate.procrastinate_jobs j
           where j.task_name in (select t.task from data.sync_tasks t)
             and j.status in ('todo', 'doing')
             for update) x;
  select count(*) into runs_stopping from data.sync_runs r where r.status = 'running';
  stopped := ingest.emergency_stop(admin_emergency_stop.reason);
  -- ingest.emergency_stop closes interrupted runs with finished_at = now() (this transaction)
  select count(*) into runs_closed from data.sync_runs r
   where r.error_code = 'emergency_stop' and r.status = 'cancelled' and r.finished_at = now();
  select * into after_row from data.ingest_settings s;
  audit_id := private.audit('ingest.emergency_stop', 'ingest_settings', null,
                            private.jsonb_pick(to_jsonb(before_row), array['mode', 'stopped_at', 'stopped_reason']),
                            private.jsonb_pick(to_jsonb(after_row), array['mode', 'stopped_at', 'stopped_reason'])
                              || jsonb_build_object('jobs_cancelled', queued, 'jobs_aborting', running,
                                                    'runs_closed', runs_closed),
                            admin_emergency_stop.reason);
  return jsonb_build_object('settings', private.admin_ingest_settings_json(),
                            'jobs_cancelled', queued, 'jobs_aborting', running, 'jobs_stopped', stopped,
                            'runs_closed', runs_closed, 'runs_stopping', runs_stopping,
                            'audit_log_id', audit_id);
end
$$;
comment on function api.admin_emergency_stop(text) is $$Stop all ingest now (permission admin.parser.emergency)
reason is required. As ingest.emergency_stop: mode becomes manual, no sync starts, queued sync jobs are cancelled,
running ones are asked to abort (they stop at their next page), interrupted runs are closed. Audited
(ingest.emergency_stop). Returns {settings, jobs_cancelled, jobs_aborting, jobs_stopped, runs_closed,
runs_stopping, audit_log_id}. rpc/admin_resume_ingest lifts it.$$;

create function api.admin_resume_ingest(mode text default 'auto', reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  before_row data.ingest_settings;
  after_row data.ingest_settings;
  audit_id bigint;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('admin.parser.emergency', 'rpc/admin_resume_ingest', admin_resume_ingest.mode);
  if refusal is not null then return refusal; end if;
  perform private.ingest_check_mode(admin_resume_ingest.mode);
  select * into before_row from data.ingest_settings s for update;
  if before_row.stopped_at is null then
    return jsonb_build_object('settings', private.admin_ingest_settings_json(), 'changed', false,
                              'audit_log_id', null, 'warnings', jsonb_build_array('not_stopped'));
  end if;
  perform ingest.resume(admin_resume_ingest.mode);
  select * into after_row from data.ingest_settings s;
  audit_id := private.audit('ingest.resume', 'ingest_settings', null,
                            private.jsonb_pick(to_jsonb(before_row), array['mode', 'stopped_at', 'stopped_reason']),
                            private.jsonb_pick(to_jsonb(after_row), array['mode', 'stopped_at', 'stopped_reason']),
                            admin_resume_ingest.reason);
  return jsonb_build_object('settings', private.admin_ingest_settings_json(), 'changed', true,
                            'audit_log_id', audit_id, 'warnings', '[]'::jsonb);
end
$$;
comment on function api.admin_resume_ingest(text, text) is $$Lift the emergency stop (permission admin.parser.emergency)
mode: auto (default: ticks start syncs again) or manual. An interrupted sync is not restarted by itself: in auto
mode the next tick starts its task, or rpc/admin_trigger_sync does. Not stopped: changed=false, warning
not_stopped, nothing audited. Audited (ingest.resume). Returns {settings, changed, audit_log_id, warnings}.$$;

-- Sync runs and jobs ---------------------------------------------------------------------------

create view api.admin_sync_runs with (security_invoker = true) as
select r.id, r.task, r.status, r.args, r.tick, r.job_id, r.job_status, r.abort_requested, r.worker_pid,
       r.attempts, r.cursor, r.pages_done, r.pages_total, r.progress_percent, r.items_fetched,
       r.items_inserted, r.items_updated, r.items_unchanged, r.items_skipped, r.requests, r.published,
       r.error_code, r.error, r.started_at, r.progressed_at, r.finished_at, r.duration_seconds,
       r.idle_seconds
  from private.admin_sync_runs r;
comment on view api.admin_sync_runs is $$Sync runs with progress (permission admin.parser.logs)
One row per run; progress is committed page by page, so a running sync shows its pages and counters live.
Newest first with ?order=id.desc; running ones with ?status=eq.running; failures with ?error_code=not.is.null.
Without admin.parser.logs: 403 permission_denied.$$;
comment on column api.admin_sync_runs.id is 'Run id (increasing).';
comment on column api.admin_sync_runs.task is 'sync_catalog, sync_schedule, sync_episodes or autoupdate.';
comment on column api.admin_sync_runs.status is 'running, interrupted (its worker died; the next job resumes it), succeeded, failed or cancelled.';
comment on column api.admin_sync_runs.args is 'Arguments of the job (e.g. {"shikimori_ids": [...]}, {"tick": ...}).';
comment on column api.admin_sync_runs.tick is 'The periodic tick that started it; null when triggered.';
comment on column api.admin_sync_runs.job_id is 'The Procrastinate job that owns the run now (see admin_sync_jobs).';
comment on column api.admin_sync_runs.job_status is 'That job''s queue status: todo, doing, succeeded, failed, cancelled, aborting, aborted; null when purged.';
comment on column api.admin_sync_runs.abort_requested is 'An abort of the job was requested (emergency stop or cancel).';
comment on column api.admin_sync_runs.worker_pid is 'Process id of the worker running it.';
comment on column api.admin_sync_runs.attempts is 'Jobs that worked on this run (more than 1 after a resume).';
comment on column api.admin_sync_runs.cursor is 'Where a resumed run continues: {"page": n} or {"next": token}.';
comment on column api.admin_sync_runs.pages_done is 'Pages fetched and staged.';
comment on column api.admin_sync_runs.pages_total is 'Pages in all, once known (Kodik up front, Shikimori at the end).';
comment on column api.admin_sync_runs.progress_percent is 'pages_done / pages_total in percent; null while pages_total is unknown.';
comment on column api.admin_sync_runs.items_fetched is 'Items the upstream returned.';
comment on column api.admin_sync_runs.items_inserted is 'Items new to staging.';
comment on column api.admin_sync_runs.items_updated is 'Items whose staged content changed.';
comment on column api.admin_sync_runs.items_unchanged is 'Items equal to what was staged (not written).';
comment on column api.admin_sync_runs.items_skipped is 'Items dropped by filters, blacklists or as duplicates.';
comment on column api.admin_sync_runs.requests is 'HTTP requests made, retries included.';
comment on column api.admin_sync_runs.published is 'What the publish step at the end changed, per table; null when it did not publish.';
comment on column api.admin_sync_runs.error_code is 'Why it failed or stopped (docs/errors.md, ingest section).';
comment on column api.admin_sync_runs.error is 'The error message.';
comment on column api.admin_sync_runs.started_at is 'When the run started.';
comment on column api.admin_sync_runs.progressed_at is 'Last committed progress.';
comment on column api.admin_sync_runs.finished_at is 'When it ended; null while running or interrupted.';
comment on column api.admin_sync_runs.duration_seconds is 'finished_at (or now) minus started_at, in seconds.';
comment on column api.admin_sync_runs.idle_seconds is 'Seconds since the last progress, while unfinished (a stall shows here).';

create view api.admin_sync_jobs with (security_invoker = true) as
select r.id, r.task, r.status, r.args, r.attempts, r.abort_requested, r.queue_name, r.lock,
       r.scheduled_at, r.queued_at, r.started_at, r.run_id
  from private.admin_sync_jobs r;
comment on view api.admin_sync_jobs is $$Sync jobs in the queue (permission admin.parser.logs)
Procrastinate jobs of the sync tasks: waiting (todo), running (doing) and finished. Per task at most one runs
and one waits. ?status=in.(todo,doing) lists the live ones. Without admin.parser.logs: 403 permission_denied.$$;
comment on column api.admin_sync_jobs.id is 'Job id (what rpc/admin_trigger_sync returns).';
comment on column api.admin_sync_jobs.task is 'sync_catalog, sync_schedule, sync_episodes or autoupdate.';
comment on column api.admin_sync_jobs.status is 'todo, doing, succeeded, failed, cancelled, aborting or aborted.';
comment on column api.admin_sync_jobs.args is 'Arguments of the job.';
comment on column api.admin_sync_jobs.attempts is 'Times a worker started it.';
comment on column api.admin_sync_jobs.abort_requested is 'An abort was requested (emergency stop or cancel).';
comment on column api.admin_sync_jobs.queue_name is 'Procrastinate queue.';
comment on column api.admin_sync_jobs.lock is 'Lock shared by the jobs of one task (ingest:<task>).';
comment on column api.admin_sync_jobs.scheduled_at is 'Not before this time; null = as soon as possible.';
comment on column api.admin_sync_jobs.queued_at is 'When it was queued.';
comment on column api.admin_sync_jobs.started_at is 'When a worker last started it.';
comment on column api.admin_sync_jobs.run_id is 'The sync run it works (or worked) on, once it started.';

create function api.admin_trigger_sync(task text, args jsonb default '{}', reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  settings data.ingest_settings;
  job bigint;
  waiting bigint;
  running bigint;
  audit_id bigint;
begin
  -- parser.run is the contract's name; people hold admin.parser.settings (docs/admin-api.md)
  if not (private.has_permission('admin.parser.settings') or private.has_permission('parser.run')) then
    return private.admin_denied('admin.parser.settings', 'rpc/admin_trigger_sync', admin_trigger_sync.task);
  end if;
  if admin_trigger_sync.task is null or admin_trigger_sync.task <> all (ingest.sync_tasks()) then
    perform private.raise_error(400, 'unknown_task', 'No sync task has this name.',
      hint => 'One of ' || array_to_string(ingest.sync_tasks(), ', '));
  end if;
  if admin_trigger_sync.args is not null and jsonb_typeof(admin_trigger_sync.args) <> 'object' then
    perform private.raise_error(400, 'invalid_args', 'args must be a JSON object ({} for a full run).');
  end if;
  -- a dry run fetches and stages but publishes nothing (ingest.finish_run; issue 13)
  if admin_trigger_sync.args ? 'dry_run' and (jsonb_typeof(admin_trigger_sync.args -> 'dry_run') <> 'boolean'
                                              or admin_trigger_sync.task = 'autoupdate') then
    perform private.raise_error(400, 'invalid_args',
      'dry_run must be true or false, and is for sync_catalog, sync_schedule and sync_episodes.');
  end if;
  -- for share: an emergency stop waits for this request, then cancels what it queued
  select * into settings from data.ingest_settings s for share;
  if settings.stopped_at is not null then
    perform private.raise_error(409, 'ingest_stopped', 'Ingest is emergency-stopped; nothing can be queued.',
      hint => 'rpc/admin_resume_ingest (permission admin.parser.emergency)');
  end if;
  job := ingest.trigger_sync(admin_trigger_sync.task, coalesce(admin_trigger_sync.args, '{}'));
  select j.id into running from procrastinate.procrastinate_jobs j
   where j.lock = (select t.lock from data.sync_tasks t where t.task = admin_trigger_sync.task) and j.status = 'doing';
  if job is null then
    select j.id into waiting from procrastinate.procrastinate_jobs j
     where j.queueing_lock = (select t.lock from data.sync_tasks t where t.task = admin_trigger_sync.task)
       and j.status = 'todo';
    return jsonb_build_object('task', admin_trigger_sync.task, 'job_id', waiting, 'already_queued', true,
                              'running_job_id', running, 'audit_log_id', null);
  end if;
  audit_id := private.audit('ingest.trigger', 'sync_task', admin_trigger_sync.task, null,
                            jsonb_build_object('job_id', job, 'args', coalesce(admin_trigger_sync.args, '{}')),
                            admin_trigger_sync.reason);
  return jsonb_build_object('task', admin_trigger_sync.task, 'job_id', job, 'already_queued', false,
                            'running_job_id', running, 'audit_log_id', audit_id);
end
$$;
comment on function api.admin_trigger_sync(text, jsonb, text) is $$Queue a sync now (permission admin.parser.settings, or parser.run)
task: sync_catalog, sync_schedule, sync_episodes or autoupdate; args: {} for a full run (sync_episodes also takes
{"shikimori_ids": [...]}). Works in manual mode; during an emergency stop: 409 ingest_stopped. Per task one job
runs and at most one waits: when one already waits, answers already_queued=true with that job's id and queues
nothing. Audited (ingest.trigger). Returns {task, job_id, already_queued, running_job_id, audit_log_id}.$$;

-- Staging area -----------------------------------------------------------------------------------

create view api.admin_staging_anime with (security_invoker = true) as
select r.shikimori_id, r.title, r.title_ru, r.title_en, r.title_original, r.kind, r.status, r.year,
       r.anime_id, r.matched_by, r.anime_title, r.anime_state, r.anime_shikimori_id, r.anime_deleted,
       r.publish_state, r.translations_staged, r.run_id, r.fetched_at, r.published_at, r.content_hash,
       r.published_hash, r.payload
  from private.admin_staging_anime r;
comment on view api.admin_staging_anime is $$Staging area: titles as last fetched from Shikimori (permission admin.parser.settings)
Each staged title, its match to a catalog title and whether its current version is published. Filter e.g.
?publish_state=eq.pending, ?anime_id=is.null, ?title=ilike.*naruto*; name columns in ?select= to leave out the payload.
Act with rpc/admin_match, rpc/admin_unmatch and rpc/admin_publish. Without admin.parser.settings: 403.$$;
comment on column api.admin_staging_anime.shikimori_id is 'Shikimori id (key of the staging area).';
comment on column api.admin_staging_anime.title is 'Staged title (romaji).';
comment on column api.admin_staging_anime.title_ru is 'Staged Russian title.';
comment on column api.admin_staging_anime.title_en is 'Staged English title.';
comment on column api.admin_staging_anime.title_original is 'Staged original (Japanese) title.';
comment on column api.admin_staging_anime.kind is 'Staged kind (tv, movie, ...).';
comment on column api.admin_staging_anime.status is 'Staged airing status (anons, ongoing, released).';
comment on column api.admin_staging_anime.year is 'Staged year.';
comment on column api.admin_staging_anime.anime_id is 'The catalog title it is matched to; null when not (yet) matched.';
comment on column api.admin_staging_anime.matched_by is 'auto (by shikimori_id or created by publish), manual (rpc/admin_match), unmatched (rpc/admin_unmatch), or null (new: publish creates the title).';
comment on column api.admin_staging_anime.anime_title is 'Title of the matched catalog entry.';
comment on column api.admin_staging_anime.anime_state is 'State of the matched catalog entry.';
comment on column api.admin_staging_anime.anime_shikimori_id is 'shikimori_id the matched catalog entry carries (may differ after a manual match).';
comment on column api.admin_staging_anime.anime_deleted is 'The matched catalog entry is soft-deleted.';
comment on column api.admin_staging_anime.publish_state is 'published (this version is in the catalog), pending (changes wait for a publish) or unmatched (never published until matched again).';
comment on column api.admin_staging_anime.translations_staged is 'Kodik translations staged for this title.';
comment on column api.admin_staging_anime.run_id is 'The sync run that staged the current version.';
comment on column api.admin_staging_anime.fetched_at is 'When the current version was fetched.';
comment on column api.admin_staging_anime.published_at is 'When a version was last published.';
comment on column api.admin_staging_anime.content_hash is 'Hash of the staged payload.';
comment on column api.admin_staging_anime.published_hash is 'Hash of the last published payload (equal to content_hash: up to date).';
comment on column api.admin_staging_anime.payload is 'The normalised payload publish writes (catalog fields and genres).';

create function api.admin_match(shikimori_id integer, anime_id uuid, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  staged data.staging_anime;
  target data.anime;
  holder uuid;
  displaced integer[];
  warnings text[] := '{}';
  audit_id bigint;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('admin.parser.settings', 'rpc/admin_match', admin_match.shikimori_id::text);
  if refusal is not null then return refusal; end if;
  staged := private.admin_staging_for_update(admin_match.shikimori_id);
  target := private.admin_anime_for_update(admin_match.anime_id);
  if staged.anime_id = target.id and staged.matched_by = 'manual' then
    return jsonb_build_object('staging', private.admin_staging_json(staged.shikimori_id), 'changed', false,
                              'displaced', '[]'::jsonb, 'audit_log_id', null,
                              'warnings', jsonb_build_array('no_changes'));
  end if;
  /* Publishing the match gives the target this shikimori_id when it has none; another title
     holding it would make that publish fail on anime_shikimori_id_key. */
  select a.id into holder from data.anime a
   where a.shikimori_id = staged.shikimori_id and a.id <> target.id and target.shikimori_id is null;
  if holder is not null then
    perform private.raise_error(409, 'shikimori_id_taken',
      format('Another title (%s) already carries shikimori_id %s.', holder, staged.shikimori_id),
      details => holder::text,
      hint => 'Match to that title, or merge that title into the target (rpc/admin_merge_anime) when it is a duplicate.');
  end if;
  if target.shikimori_id is not null and target.shikimori_id <> staged.shikimori_id then
    warnings := warnings || 'shikimori_id_differs'::text;
  end if;
  displaced := array(select sa.shikimori_id from data.staging_anime sa
                      where sa.anime_id = target.id and sa.shikimori_id <> staged.shikimori_id
                      order by sa.shikimori_id);
  perform ingest.match(staged.shikimori_id, target.id);
  audit_id := private.audit('ingest.match', 'staging_anime', staged.shikimori_id::text,
                            jsonb_build_object('anime_id', staged.anime_id, 'matched_by', staged.matched_by),
                            jsonb_build_object('anime_id', target.id, 'matched_by', 'manual',
                                               'displaced', to_jsonb(displaced)),
                            admin_match.reason);
  return jsonb_build_object('staging', private.admin_staging_json(staged.shikimori_id), 'changed', true,
                            'displaced', to_jsonb(displaced), 'audit_log_id', audit_id,
                            'warnings', to_jsonb(warnings));
end
$$;
comment on function api.admin_match(integer, uuid, text) is $$Match a staged title to a catalog title (permission admin.parser.settings)
The link is manual: kept across re-syncs; a staged title linked to the same catalog title before is unlinked
(displaced, matched_by unmatched). The next publish writes the staged fields into that title (fields edited or
locked by hand excepted). 404 staging_not_found / anime_not_found, 410 anime_deleted, 409 shikimori_id_taken.
Audited (ingest.match). Returns {staging, changed, displaced, audit_log_id, warnings}.$$;

create function api.admin_unmatch(shikimori_id integer, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  staged data.staging_anime;
  audit_id bigint;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('admin.parser.settings', 'rpc/admin_unmatch', admin_unmatch.shikimori_id::text);
  if refusal is not null then return refusal; end if;
  staged := private.admin_staging_for_update(admin_unmatch.shikimori_id);
  if staged.matched_by = 'unmatched' then
    return jsonb_build_object('staging', private.admin_staging_json(staged.shikimori_id), 'changed', false,
                              'audit_log_id', null, 'warnings', jsonb_build_array('no_changes'));
  end if;
  perform ingest.unmatch(staged.shikimori_id);
  audit_id := private.audit('ingest.unmatch', 'staging_anime', staged.shikimori_id::text,
                            jsonb_build_object('anime_id', staged.anime_id, 'matched_by', staged.matched_by),
                            jsonb_build_object('anime_id', null, 'matched_by', 'unmatched'),
                            admin_unmatch.reason);
  return jsonb_build_object('staging', private.admin_staging_json(staged.shikimori_id), 'changed', true,
                            'audit_log_id', audit_id, 'warnings', '[]'::jsonb);
end
$$;
comment on function api.admin_unmatch(integer, text) is $$Unlink a staged title from the catalog (permission admin.parser.settings)
It is not matched again automatically and not published until rpc/admin_match links it; the catalog title stays
as it is. 404 staging_not_found. Audited (ingest.unmatch). Returns {staging, changed, audit_log_id, warnings}.$$;

create function api.admin_publish(shikimori_ids integer[] default null, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  held integer;
  result jsonb;
  changed boolean;
  audit_id bigint;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('admin.parser.settings', 'rpc/admin_publish',
                                         array_to_string(admin_publish.shikimori_ids, ','));
  if refusal is not null then return refusal; end if;
  -- rows staged by a run still in progress wait for it (ingest.publish holds them back)
  select count(*) into held from data.staging_anime sa
   where sa.published_hash is distinct from sa.content_hash and sa.matched_by is distinct from 'unmatched'
     and (admin_publish.shikimori_ids is null or sa.shikimori_id = any (admin_publish.shikimori_ids))
     and exists (select 1 from data.sync_runs r where r.id = sa.run_id and r.finished_at is null);
  result := ingest.publish(null, admin_publish.shikimori_ids);
  changed := exists (select 1 from jsonb_each(result) e where jsonb_typeof(e.value) = 'number'
                                                          and (e.value #>> '{}')::numeric > 0);
  if changed then
    audit_id := private.audit('ingest.publish', 'staging',
                              array_to_string(admin_publish.shikimori_ids, ','), null,
                              jsonb_build_object('shikimori_ids', to_jsonb(admin_publish.shikimori_ids))
                                || result,
                              admin_publish.reason);
  end if;
  return jsonb_build_object('published', result, 'held_back', held, 'audit_log_id', audit_id,
                            'warnings', case when changed then '[]'::jsonb else jsonb_build_array('no_changes') end);
end
$$;
comment on function api.admin_publish(integer[], text) is $$Publish staged changes into the catalog now (permission admin.parser.settings)
shikimori_ids: only these staged titles (their players and schedule too); omitted or null: everything staged.
As at the end of a sync: fields edited or locked by hand are kept, new titles enter as new_title_state, unmatched
titles are skipped, rows of a run still in progress are held back (held_back counts them). One transaction.
Audited (ingest.publish) when something changed. Returns {published (counts per table), held_back, audit_log_id, warnings}.$$;
