"""Security and hygiene invariants as catalog queries: each returns the violations, so a
clean schema returns zero rows (style H6, after supabase/splinter)."""

from __future__ import annotations

# schemas whose tables are private: never exposed, always under row-level security
PRIVATE_SCHEMAS = "('data', 'private', 'auth', 'ingest')"
OUR_SCHEMAS = "('data', 'private', 'auth', 'ingest', 'api')"

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
           and not exists (select 1 from unnest(coalesce(p.proconfig, '{{}}')) c where c like 'search_path=%')""",
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
             'private.security_headers', 'private.response_headers', 'private.raise_error', 'private.anime_search_text',
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
