-- Cluster-wide roles (contract §2). Idempotent: roles are shared by every database of the
-- cluster, so they are created when missing and never dropped. Passwords are set by
-- `python -m ops.db roles` from the environment (never stored here).
do $$
declare
  r record;
begin
  for r in
    select * from (values
      ('kitsu_owner',   true,  false),  -- owns every object; used by migrations only
      ('authenticator', true,  true),   -- PostgREST's login; may only SET ROLE anon/web_user
      ('anon',          false, false),  -- callers without a token
      ('web_user',      false, false),  -- every signed-in person (JWT role claim)
      ('auth_service',  true,  false),  -- the FastAPI auth service
      ('ingest_worker', true,  false),  -- Procrastinate workers
      ('legacy_importer', true, false)  -- the cut-over import (python -m legacy_import)
    ) as t(name, can_login, no_inherit)
  loop
    if not exists (select 1 from pg_roles where rolname = r.name) then
      execute format('create role %I %s %s', r.name,
                     case when r.can_login then 'login' else 'nologin' end,
                     case when r.no_inherit then 'noinherit' else 'inherit' end);
    end if;
    execute format('alter role %I %s %s nosuperuser nocreatedb nocreaterole nobypassrls', r.name,
                   case when r.can_login then 'login' else 'nologin' end,
                   case when r.no_inherit then 'noinherit' else 'inherit' end);
  end loop;
end $$;

grant anon, web_user to authenticator;
-- Procrastinate lives in its own schema; its CLI and workers connect as ingest_worker.
alter role ingest_worker set search_path = procrastinate, pg_catalog;
-- Planner settings of the web roles, applied by PostgREST on every request (impersonated role
-- settings, PostgREST >= 11.1). random_page_cost 1.1: the catalog lives in memory or on SSD, and
-- at the default 4 the planner sorts the whole catalog for a deep `offset` page instead of
-- skipping through the covering index (anime_published_updated_idx). jit off: JIT compilation
-- costs more than any of these short queries.
alter role anon set random_page_cost = 1.1;
alter role web_user set random_page_cost = 1.1;
alter role anon set jit = off;
alter role web_user set jit = off;
-- Generic plans: PostgREST prepares each statement with LIMIT and OFFSET as parameters, so a
-- generic plan's estimate (10 % of the rows) always looks dearer than a custom plan's (LIMIT 20)
-- and PostgreSQL re-plans every request. The inlined search takes 3 ms to plan and 0.5-1.5 ms
-- to run (rpc/search_anime?q=an&limit=20 at one connection: 243 -> 559 requests/s). The
-- catalog lints and the browse plans are checked as generic plans too (tests/db/catalog_lints.py).
alter role anon set plan_cache_mode = force_generic_plan;
alter role web_user set plan_cache_mode = force_generic_plan;
-- Statement timeouts (contract §11): no request holds a connection longer than its role's
-- limit; a cancelled statement answers at once (57014) instead of hanging. PostgREST applies the
-- web roles' settings inside each request's transaction (impersonated role settings, read when
-- it loads its configuration), so they bind every statement of a request.
alter role anon set statement_timeout = '3s';
alter role web_user set statement_timeout = '5s';
-- PostgREST's own session (schema cache, LISTEN): its queries are short; bounded all the same.
alter role authenticator set statement_timeout = '10s';
-- auth_service: each call is one short statement (a cancelled one is its 503 database_unavailable);
-- 10 s leaves room for the periodic auth.purge on a large table.
alter role auth_service set statement_timeout = '10s';
-- ingest: ingest.publish is one statement for a whole sync (~7 s for 20,000 titles here) and waits
-- for another publisher on its advisory lock, so the limit only stops a statement that is stuck.
alter role ingest_worker set statement_timeout = '10min';
-- kitsu_owner runs migrations (index builds, backfills) and keeps no limit.
-- Metrics (contract §14): ingest.database_metrics() runs as kitsu_owner and counts every
-- backend by role and state, which pg_stat_activity shows only to members of pg_read_all_stats
-- (it reads statistics, never data; the function returns counts only).
grant pg_read_all_stats to kitsu_owner;
-- A code rebuild under traffic (`make migrate`, database/build.py apply_code) can meet a request
-- in a lock cycle; the rebuild gives up after 500 ms (its lock_timeout) and retries, and
-- PostgREST's sessions look for deadlocks only after 5 s, so the request is never the victim.
alter role authenticator set deadlock_timeout = '5s';
