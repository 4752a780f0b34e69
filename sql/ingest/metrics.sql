-- Metrics read at scrape time by the workers' /metrics (ingest/metrics.py; contract §14). Each
-- answers a handful of aggregate rows from indexed or tiny tables, so a scrape every 15 s per
-- worker costs the database next to nothing. These functions are the documented "view" of the
-- database's own figures (docs/runbook.md, "Reading the metrics").

/* The queue: jobs by (queue, task, status), and per queue one row with task null holding the
   jobs waiting to start (status todo and due) and the age in seconds of the oldest of them,
   counted from when it was deferred or scheduled, whichever is later. */
create or replace function ingest.queue_metrics()
returns table (queue text, task text, status text, jobs bigint, oldest_todo_age double precision)
language sql stable security definer set search_path = '' as $$
  select j.queue_name::text, j.task_name::text, j.status::text, pg_catalog.count(*), null::double precision
    from procrastinate.procrastinate_jobs j
   group by 1, 2, 3
  union all
  select j.queue_name::text, null, 'todo', pg_catalog.count(*),
         coalesce(pg_catalog.max(extract(epoch from pg_catalog.now() - greatest(
           (select pg_catalog.min(e.at) from procrastinate.procrastinate_events e
             where e.job_id = j.id and e.type = 'deferred'), j.scheduled_at)))::double precision, 0)
    from procrastinate.procrastinate_jobs j
   where j.status = 'todo' and (j.scheduled_at is null or j.scheduled_at <= pg_catalog.now())
   group by 1
$$;

/* The latest run of each sync task: its status and progress, whether one is unfinished, and
   the seconds since the task last succeeded (null if it never did). */
create or replace function ingest.sync_progress()
returns table (task text, status text, pages_done integer, pages_total integer, items_fetched integer,
               requests integer, running boolean, last_success_age double precision)
language sql stable security definer set search_path = '' as $$
  select t.task, r.status, r.pages_done, r.pages_total, r.items_fetched, r.requests,
         coalesce(r.finished_at is null, false),
         (select extract(epoch from pg_catalog.now() - pg_catalog.max(s.finished_at))::double precision
            from data.sync_runs s where s.task = t.task and s.status = 'succeeded')
    from data.sync_tasks t
    left join lateral (select * from data.sync_runs r where r.task = t.task order by r.id desc limit 1) r on true
$$;

/* The mail outbox (contract §12, §14) by kind: mails not delivered yet, those of them whose
   every attempt so far failed, and the age in seconds of the oldest waiting one. Every kind has
   its row (zeros when none waits). Reads only the undelivered rows (the partial index
   mail_outbox_unsent_idx), so a long history of delivered mail costs a scrape nothing;
   delivered and failed counts are the workers' own counters (ingest_mail_*_total). */
create or replace function ingest.mail_metrics()
returns table (kind text, queued bigint, failing bigint, oldest_queued_age double precision)
language sql stable security definer set search_path = '' as $$
  select k.kind, coalesce(w.queued, 0), coalesce(w.failing, 0), coalesce(w.oldest_age, 0)
    from (values ('password_reset'), ('email_verification')) k (kind)
    left join (select m.kind, pg_catalog.count(*) as queued, pg_catalog.count(*) filter (where m.failures > 0) as failing,
                      extract(epoch from pg_catalog.now() - pg_catalog.min(m.created_at))::double precision as oldest_age
                 from data.mail_outbox m
                where m.sent_at is null
                group by m.kind) w on w.kind = k.kind
   order by k.kind
$$;

/* The server's own figures as (kind, name, detail, value) rows:
   - connections: backends of this cluster by role and state (client backends only);
   - max_connections: the limit they count against (the connection budget, docs/runbook.md);
   - replica_lag: replay lag in seconds of each streaming replica (on a primary);
   - statement_mean_seconds / statement_calls: the 10 statements with the most total time, by
     queryid and role, when the pg_stat_statements extension is installed in this database
     (read through dynamic SQL, so the function exists without it).
   Runs as its owner, a member of pg_read_all_stats (sql/roles.sql), so every backend's state
   is visible; it returns counts only, never query texts or addresses. */
create or replace function ingest.database_metrics()
returns table (kind text, name text, detail text, value double precision)
language plpgsql stable security definer set search_path = '' as $$
declare
  v_schema name;
begin
  return query
    select 'connections', coalesce(a.usename::text, '(none)'), coalesce(a.state, 'unknown'),
           pg_catalog.count(*)::double precision
      from pg_catalog.pg_stat_activity a
     where a.backend_type = 'client backend'
     group by 2, 3;
  return query
    select 'max_connections', 'max_connections', '', pg_catalog.current_setting('max_connections')::double precision;
  return query
    select 'replica_lag', coalesce(r.application_name, r.client_addr::text, '?'), '',
           coalesce(extract(epoch from r.replay_lag), 0)::double precision
      from pg_catalog.pg_stat_replication r;
  select n.nspname into v_schema
    from pg_catalog.pg_extension x join pg_catalog.pg_namespace n on n.oid = x.extnamespace
   where x.extname = 'pg_stat_statements';
  if v_schema is not null then
    return query execute pg_catalog.format($q$
      with top as (
        select s.queryid::text as queryid, coalesce(u.rolname::text, '?') as role,
               s.mean_exec_time / 1000.0 as mean_seconds, s.calls::double precision as calls
          from %I.pg_stat_statements s
          left join pg_catalog.pg_roles u on u.oid = s.userid
         where s.dbid = (select d.oid from pg_catalog.pg_database d where d.datname = pg_catalog.current_database())
         order by s.total_exec_time desc
         limit 10)
      select 'statement_mean_seconds', queryid, role, mean_seconds from top
      union all
      select 'statement_calls', queryid, role, calls from top $q$, v_schema);
  end if;
end
$$;
