-- Jobs: deferring syncs from SQL (operators, periodic ticks, the stalled-job sweeper), the
-- emergency stop and the settings. Every sync job carries lock = queueing_lock = its task's lock
-- in data.sync_tasks (ingest/tasks.py declares the same): one runs, at most one waits.

create or replace function ingest.sync_tasks() returns text[]
language sql stable parallel safe set search_path = '' as $$
  select array_agg(t.task order by t.task) from data.sync_tasks t
$$;

/* Queue a sync job; null when one is already waiting (its queueing lock is taken). A job
   queued by an HTTP request (an admin RPC through PostgREST) carries that request's
   X-Request-Id as the `request_id` argument, so the worker's log lines for it name the request
   (observability/logs.py checks its form); a resumed job keeps it in its arguments. */
create or replace function ingest.defer(p_task text, p_args jsonb default '{}') returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_lock text;
  v_request_id text := pg_catalog.left(private.request_header('x-request-id'), 64);
begin
  p_args := coalesce(p_args, '{}');
  if v_request_id is not null and not p_args ? 'request_id' then
    p_args := p_args || jsonb_build_object('request_id', v_request_id);
  end if;
  select t.lock into v_lock from data.sync_tasks t where t.task = p_task;
  if v_lock is null then
    raise exception 'unknown sync task %', p_task using errcode = 'KI005',
      hint = 'one of ' || pg_catalog.array_to_string(ingest.sync_tasks(), ', ');
  end if;
  return private.defer_job('sync', p_task, v_lock, v_lock, p_args);
end
$$;

/* Operators (and the admin API): start a sync now. Works in manual mode; refused during an
   emergency stop. Returns the job id, or null when one is already queued. */
create or replace function ingest.trigger_sync(p_task text, p_args jsonb default '{}') returns bigint
language plpgsql volatile security definer set search_path = '' as $$
begin
  if (select s.stopped_at is not null from data.ingest_settings s) then
    raise exception 'ingest is stopped (emergency stop); call ingest.resume() first' using errcode = 'KI002';
  end if;
  return ingest.defer(p_task, p_args);
end
$$;
comment on function ingest.trigger_sync(text, jsonb) is 'Queue a sync (a task of data.sync_tasks); null if one already waits.';

/* A periodic tick: does p_task have work now? The settings decide (mode, stop, intervals,
   autoupdate switch); a sync already queued or running makes the tick a no-op. Returns what
   it decided: deferred, stopped, manual_mode, disabled, not_due or busy. */
create or replace function ingest.tick(p_task text, p_tick bigint) returns text
language plpgsql volatile security definer set search_path = '' as $$
declare
  s data.ingest_settings;
  v_every integer;
begin
  select * into s from data.ingest_settings;
  if s.stopped_at is not null then
    return 'stopped';
  elsif s.mode <> 'auto' then
    return 'manual_mode';
  elsif p_task = 'autoupdate' and not s.autoupdate_enabled then
    return 'disabled';
  end if;
  v_every := case p_task when 'sync_catalog' then s.catalog_interval_minutes
                         when 'sync_schedule' then s.schedule_interval_minutes
                         when 'sync_episodes' then s.episodes_interval_minutes
                         when 'autoupdate' then s.autoupdate_interval_minutes end;
  if exists (select 1 from data.sync_runs r
              where r.task = p_task and r.status = 'succeeded'
                and r.started_at > now() - pg_catalog.make_interval(mins => v_every)) then
    return 'not_due';
  end if;
  if exists (select 1 from procrastinate.procrastinate_jobs j
              where j.task_name = p_task and j.status in ('todo', 'doing')) then
    return 'busy';
  end if;
  return case when ingest.defer(p_task, jsonb_build_object('tick', p_tick)) is null then 'busy' else 'deferred' end;
end
$$;

/* The stalled-job sweeper. A job is stalled when it is 'doing' and its worker's heartbeat is
   older than p_seconds (or the worker row is gone). Retrying it in place would collide with a
   job waiting on the same queueing lock, so instead: the dead job is marked failed (freeing
   the lock), its sync run is marked interrupted, and a job is queued unless one already waits;
   whichever job runs next resumes the run from its saved cursor. A send_mail job is queued
   again (a worker killed while sending). Other jobs (ticks) are just failed: the next tick
   replaces them. Returns the number of jobs swept. */
create or replace function ingest.sweep_stalled(p_seconds double precision) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  j record;
  v_count integer := 0;
begin
  for j in
    select job.id, job.task_name, job.args
      from procrastinate.procrastinate_jobs job
      left join procrastinate.procrastinate_workers w on w.id = job.worker_id
     where job.status = 'doing'
       and (job.worker_id is null or w.id is null
            or w.last_heartbeat < now() - pg_catalog.make_interval(secs => p_seconds))
     for update of job skip locked
  loop
    perform procrastinate.procrastinate_finish_job_v1(j.id, 'failed', false);
    v_count := v_count + 1;
    if j.task_name = any (ingest.sync_tasks()) then
      update data.sync_runs
         set status = 'interrupted', error_code = 'worker_lost',
             error = format('job %s lost its worker; resuming from the saved cursor', j.id)
       where job_id = j.id and status = 'running';
      if not exists (select 1 from data.ingest_settings s where s.stopped_at is not null) then
        perform ingest.defer(j.task_name, j.args);
      end if;
    elsif j.task_name = 'send_mail' then
      -- a mail is never lost: queued again (the outbox row says whether it was delivered)
      perform private.defer_mail((j.args ->> 'outbox_id')::bigint);
    end if;
  end loop;
  return v_count;
end
$$;

/* Emergency stop: no sync starts, queued sync jobs are cancelled, running ones are asked to
   abort (they also stop at their next page), interrupted runs are closed. */
create or replace function ingest.emergency_stop(p_reason text) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_count integer := 0;
  j record;
begin
  update data.ingest_settings
     set stopped_at = now(), stopped_reason = coalesce(nullif(btrim(p_reason), ''), 'emergency stop'),
         mode = 'manual', updated_at = now();
  for j in select id from procrastinate.procrastinate_jobs
            where task_name = any (ingest.sync_tasks()) and status in ('todo', 'doing')
  loop
    if procrastinate.procrastinate_cancel_job_v1(j.id, true, false) is not null then
      v_count := v_count + 1;
    end if;
  end loop;
  update data.sync_runs
     set status = 'cancelled', error_code = 'emergency_stop',
         error = (select s.stopped_reason from data.ingest_settings s), finished_at = now()
   where status = 'interrupted';
  return v_count;
end
$$;
comment on function ingest.emergency_stop(text) is 'Stop all ingest now (mode manual, jobs cancelled); ingest.resume() undoes it.';

create or replace function ingest.resume(p_mode text default 'auto') returns void
language sql volatile security definer set search_path = '' as $$
  update data.ingest_settings set stopped_at = null, stopped_reason = null, mode = p_mode, updated_at = now();
$$;

/* Change settings: a JSON object of column -> value (unknown keys are an error). */
create or replace function ingest.update_settings(p_patch jsonb) returns data.ingest_settings
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_bad text;
  r data.ingest_settings;
begin
  select k into v_bad from jsonb_object_keys(p_patch) k
   where k not in (select a.attname from pg_catalog.pg_attribute a
                    where a.attrelid = 'data.ingest_settings'::regclass and a.attnum > 0 and not a.attisdropped)
      or k in ('id', 'updated_at', 'stopped_at', 'stopped_reason')
   limit 1;
  if v_bad is not null then
    raise exception 'unknown or read-only setting %', v_bad using errcode = 'KI006';
  end if;
  update data.ingest_settings s
     set (mode, new_title_state, auto_publish, catalog_interval_minutes, schedule_interval_minutes,
          episodes_interval_minutes, autoupdate_enabled, autoupdate_interval_minutes,
          allowed_translation_types, allowed_translations, allowed_qualities, blacklist_titles,
          blacklist_shikimori_ids, updated_at)
       = (select n.mode, n.new_title_state, n.auto_publish, n.catalog_interval_minutes, n.schedule_interval_minutes,
                 n.episodes_interval_minutes, n.autoupdate_enabled, n.autoupdate_interval_minutes,
                 n.allowed_translation_types, n.allowed_translations, n.allowed_qualities, n.blacklist_titles,
                 n.blacklist_shikimori_ids, now()
            from jsonb_populate_record(s, p_patch) n)
  returning * into r;
  return r;
end
$$;
comment on function ingest.update_settings(jsonb) is 'Update ingest settings from a JSON object of column -> value.';

/* Titles the autoupdate refreshes: ongoing, or announced with a known next episode. */
create or replace function ingest.ongoing_shikimori_ids() returns integer[]
language sql stable security definer set search_path = '' as $$
  select coalesce(array_agg(a.shikimori_id order by a.shikimori_id), '{}')
    from data.anime a
   where a.shikimori_id is not null and a.deleted_at is null
     and (a.status = 'ongoing' or (a.status = 'anons' and a.next_episode_at is not null))
$$;

-- The hourly search_words task (ingest/tasks.py): recount the words search corrects typos to
-- (the rule lives with the search, sql/private/catalog_search.sql).
create or replace function ingest.refresh_search_words() returns integer
language sql volatile security definer set search_path = '' as $$
  select private.catalog_search_words_refresh()
$$;
