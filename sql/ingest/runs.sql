-- Sync runs: begin (or resume), progress fencing, finish. Errors with SQLSTATE class KI are
-- listed in docs/errors.md (ingest section).

/* Start a run of p_task for job p_job_id, or take over the task's unfinished run (left by a
   job whose worker died): the caller continues from its cursor. Returns null while the
   emergency stop is on. Procrastinate's lock guarantees one job per task runs at a time, so an
   unfinished run found here has no live owner; taking it over moves the fencing token
   (job_id), and a zombie owner's next write fails with KI001. */
create or replace function ingest.begin_run(p_task text, p_job_id bigint, p_args jsonb,
                                            p_tick bigint, p_worker_pid integer)
returns data.sync_runs
language plpgsql volatile security definer set search_path = '' as $$
declare
  r data.sync_runs;
begin
  if (select s.stopped_at is not null from data.ingest_settings s) then
    return null;
  end if;
  update data.sync_runs
     set status = 'running', job_id = p_job_id, worker_pid = p_worker_pid,
         attempts = attempts + 1, progressed_at = now()
   where task = p_task and finished_at is null
  returning * into r;
  if found then
    return r;
  end if;
  insert into data.sync_runs (task, args, tick, job_id, worker_pid)
  values (p_task, coalesce(p_args, '{}'), p_tick, p_job_id, p_worker_pid)
  returning * into r;
  return r;
end
$$;

/* Lock the run row for a progress write; fail unless p_job_id still owns it and the emergency
   stop is off. Called at the start of every staging transaction. */
create or replace function ingest.claim_run(p_run_id bigint, p_job_id bigint) returns data.sync_runs
language plpgsql volatile security definer set search_path = '' as $$
declare
  r data.sync_runs;
begin
  select * into r from data.sync_runs where id = p_run_id for update;
  if not found or r.job_id is distinct from p_job_id or r.status <> 'running' then
    raise exception 'sync run % is no longer owned by job %', p_run_id, p_job_id
      using errcode = 'KI001';
  end if;
  if (select s.stopped_at is not null from data.ingest_settings s) then
    raise exception 'ingest is stopped (emergency stop)' using errcode = 'KI002';
  end if;
  return r;
end
$$;

/* Count requests (including retries) without staging anything, e.g. after a failed page. */
create or replace function ingest.note_requests(p_run_id bigint, p_job_id bigint, p_requests integer)
returns void
language sql volatile security definer set search_path = '' as $$
  update data.sync_runs set requests = requests + p_requests, progressed_at = now()
   where id = p_run_id and job_id = p_job_id;
$$;

/* End a run. 'succeeded' publishes staging into the catalog in the same transaction when the
   settings say auto_publish (p_publish = false skips it), unless the run is a dry run (args
   {"dry_run": true}, rpc/admin_trigger_sync): it fetched and staged, and publishes nothing;
   what it staged waits for a publish (admin_publish_preview shows it). */
create or replace function ingest.finish_run(p_run_id bigint, p_job_id bigint, p_status text,
                                             p_error_code text default null, p_error text default null,
                                             p_publish boolean default true)
returns data.sync_runs
language plpgsql volatile security definer set search_path = '' as $$
declare
  r data.sync_runs;
  v_published jsonb;
begin
  select * into r from data.sync_runs where id = p_run_id for update;
  if not found or r.job_id is distinct from p_job_id or r.finished_at is not null then
    raise exception 'sync run % is no longer owned by job %', p_run_id, p_job_id using errcode = 'KI001';
  end if;
  if p_status = 'succeeded' and p_publish and (select s.auto_publish from data.ingest_settings s)
     and not coalesce(r.args @> '{"dry_run": true}', false) then
    v_published := ingest.publish(p_run_id);
  end if;
  update data.sync_runs
     set status = p_status, error_code = p_error_code, error = p_error, published = v_published,
         pages_total = case when p_status = 'succeeded' then coalesce(pages_total, pages_done) else pages_total end,
         finished_at = pg_catalog.clock_timestamp(), progressed_at = pg_catalog.clock_timestamp()
   where id = p_run_id
  returning * into r;
  return r;
end
$$;
