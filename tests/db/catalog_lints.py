"""Security and hygiene invariants as catalog queries: each returns the violations, so a
clean schema returns zero rows (style H6, after supabase/splinter)."""

from __future__ import annotations

import psycopg

from database import build as db

# schemas whose tables are private: never exposed, always under row-level security
PRIVATE_SCHEMAS = "('data', 'private', 'auth', 'ingest')"
# autonomous: the superuser's counter of refused reads and dblink (sql/autonomous.sql)
OUR_SCHEMAS = "('data', 'private', 'auth', 'ingest', 'api', 'legacy', 'autonomous')"

LINTS: dict[str, str] = {
    "table without row-level security in a private schema": f"""
        select n.nspname || '.' || c.relname
          from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where c.relkind in ('r', 'p') and n.nspname in {PRIVATE_SCHEMAS} and not c.relrowsecurity""",
    "table (or other stored relation) in api": """
        select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'api' and c.relkind in ('r', 'p', 'm', 'f', 'S')""",
    "security definer function without a fixed search_path": f"""
        select n.nspname || '.' || p.proname
          from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where n.nspname in {OUR_SCHEMAS} and p.prosecdef
           and not exists (select 1 from unnest(coalesce(p.proconfig, '{{}}')) c where c like 'search_path=%')
           -- dblink's own (dblink_connect_u): executable by nobody (the PUBLIC lint below)
           and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')""",
    "foreign key without an index on its columns": f"""
        select c.conrelid::regclass || ' ' || c.conname
          from pg_constraint c join pg_namespace n on n.oid = c.connamespace
         where c.contype = 'f' and n.nspname in {OUR_SCHEMAS}
           and not exists (
             select 1 from pg_index i
              where i.indrelid = c.conrelid
                and (i.indkey::int2[])[0:cardinality(c.conkey) - 1] @> c.conkey
                and (i.indkey::int2[])[0:cardinality(c.conkey) - 1] <@ c.conkey)""",
    "api view or function without a comment": """
        select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'api' and c.relkind = 'v' and obj_description(c.oid, 'pg_class') is null
        union all
        select p.proname from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where n.nspname = 'api' and obj_description(p.oid, 'pg_proc') is null""",
    "api view column without a comment": """
        select c.relname || '.' || a.attname
          from pg_class c join pg_namespace n on n.oid = c.relnamespace
          join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
         where n.nspname = 'api' and c.relkind = 'v' and col_description(c.oid, a.attnum) is null""",
    "api view that is not security_invoker (would bypass row-level security)": """
        select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = 'api' and c.relkind = 'v'
           and not coalesce('security_invoker=true' = any (c.reloptions), false)""",
    "object outside api that depends on api (api must stay rebuildable)": """
        select distinct dependent.oid::regclass::text
          from pg_depend d
          join pg_rewrite r on r.oid = d.objid
          join pg_class dependent on dependent.oid = r.ev_class
          join pg_class referenced on referenced.oid = d.refobjid
         where referenced.relnamespace = 'api'::regnamespace
           and dependent.relnamespace <> 'api'::regnamespace""",
    "function anon may execute that is not on the allow-list": f"""
        select n.nspname || '.' || p.proname
          from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where n.nspname in {OUR_SCHEMAS} and has_function_privilege('anon', p.oid, 'execute')
           and n.nspname || '.' || p.proname not in (
             'private.pre_request', 'private.jwt_claims', 'private.uid', 'private.sid',
             'private.security_headers', 'private.response_headers', 'private.raise_error',
             'private.search_normalize', 'private.search_terms', 'private.search_typos', 'private.search_options',
             'private.search_sorts',
             'private.search_passes', 'private.search_like', 'private.search_words',
             'private.search_letters',
             'private.catalog_cache_headers', 'private.cacheable_path',
             -- db-pre-request refuses banned client addresses (issue 13)
             'private.ip_banned', 'private.client_ip', 'private.request_header',
             'private.replica_pre_request', 'private.replica_lag_seconds',
             -- the order of an episode's players, inlined into api.episode_sources (issue 13)
             'private.player_preference', 'private.quality_key',
             'api.search_anime')""",
    "function anyone (PUBLIC) may execute": f"""
        select n.nspname || '.' || p.proname
          from pg_proc p join pg_namespace n on n.oid = p.pronamespace
         where n.nspname in {OUR_SCHEMAS}
           and (p.proacl is null or exists (select 1 from aclexplode(p.proacl) a where a.grantee = 0))""",
    "web role granted anything on a queue or auth table": """
        select t.table_schema || '.' || t.table_name || ' to ' || t.grantee
          from information_schema.role_table_grants t
         where t.grantee in ('anon', 'web_user', 'authenticator')
           and (t.table_schema in ('procrastinate', 'auth', 'ingest')
                or t.table_name in ('refresh_tokens', 'rate_limits', 'audit_log'))""",
}


# Search and browsing must stay index searches for the web roles. pg_trgm's operators and the
# array operators are not LEAKPROOF, so under a row policy that is not `true` PostgreSQL may not
# use them as index conditions and scans instead. Each query names the index conditions (or
# indexes) its plan must contain: one per tier shape of search (2 letters, 3, 5+ with typo
# tolerance), every filter and every sort of contract §15, and each documented browse filter
# of api.anime and api.schedule. With sequential scans discouraged the planner takes any index
# it may use, so a missing condition means it may not (or the index is gone).
SORTED = {sort: f"select * from api.search_anime('kai', sort => '{sort}')"
          for sort in ("relevance", "score", "year", "title", "updated")}
SEARCH_PLAN_QUERIES = {
    "select * from api.search_anime('ka')": ["Index Cond: (key = "],
    "select * from api.search_anime('kai')": ["Index Cond: (key = ", "Index Cond: (doc ~~ "],
    "select * from api.search_anime('frieren')": ["Index Cond: (doc ~~ "],
    "select * from api.search_anime('kaijuu', kind => 'tv', genre => 'Action')": ["Index Cond: (doc ~~ "],
    "select * from api.search_anime('kaijuu', status => 'ongoing', year => 2020, season => 'fall', "
    "rating => 'pg_13', min_score => 7, genres => '{Action,Comedy}', sort => 'score')":
        ["Index Cond: (doc ~~ "],
    **{query: ["Index Cond: (key = ", "Index Cond: (doc ~~ "] for query in SORTED.values()},
}
# browse (README §15): genres, airing now, this season, top rated, recently updated, schedule.
# Planned over a real catalog (tests/db/test_search.py): on empty tables every estimate is one
# row, and the planner may then prefer walking any index of data.anime to the one a filter
# needs, which would say nothing about that filter.
BROWSE_PLAN_QUERIES = {
    "select count(*) from api.anime where genre_ids @> '{1,4}'": ["Index Cond: (genre_ids @> "],
    "select id from api.anime where status = 'ongoing' order by score desc nulls last, id limit 20":
        ["anime_published_status_idx"],
    "select id from api.anime where year = 2026 and season = 'fall' order by score desc nulls last, id limit 20":
        ["anime_published_season_idx"],
    "select id from api.anime order by score desc nulls last, id limit 20": ["anime_published_score_idx"],
    "select id from api.anime order by updated_at desc, id desc limit 20": ["anime_published_updated_idx"],
    "select * from api.schedule where airs_at >= now() and airs_at < now() + interval '7 days' order by airs_at":
        ["schedule_airs_at_idx"],
}


def search_plan_violations(dbname: str, role: str) -> list[str]:
    """Sequential scans and missing index conditions in the search plans as ``role``."""
    return plan_violations(dbname, role, SEARCH_PLAN_QUERIES)


def browse_plan_violations(dbname: str, role: str, plant: str | None = None) -> list[str]:
    """The same for the browse plans, over a database holding a catalog; ``plant`` runs first
    in the same rolled-back transaction (DDL included), to see a violation caught."""
    return plan_violations(dbname, role, BROWSE_PLAN_QUERIES, plant)


def plan_violations(dbname: str, role: str, queries: dict[str, list[str]], plant: str | None = None) -> list[str]:
    found = []
    # the administrative login may SET ROLE to a web role, as PostgREST's authenticator does
    with psycopg.connect(db.role_url(dbname)) as conn, conn.transaction(force_rollback=True):
        if plant:
            conn.execute(plant)
        conn.execute("select set_config('role', %s, true), set_config('enable_seqscan', 'off', true), "
                     "set_config('plan_cache_mode', 'force_generic_plan', true)", (role,))
        for number, (query, conditions) in enumerate(queries.items()):
            # as written, and as PostgREST runs it: prepared, its page size a parameter, with the
            # web roles' generic plans (sql/roles.sql: plan_cache_mode)
            conn.execute(f"prepare lint_{number}(bigint) as select * from ({query}) q limit $1")
            for shape, explain in (("", "explain " + query), (" (generic plan)", f"explain execute lint_{number}(20)")):
                plan = "\n".join(row[0] for row in conn.execute(explain))
                found += [f"{role}: {query}{shape}: {line.strip()}" for line in plan.splitlines() if "Seq Scan" in line]
                found += [f"{role}: {query}{shape}: no {c!r}" for c in conditions if c not in plan]
    return found
