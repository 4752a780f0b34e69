"""The database build: cluster roles, the database, yoyo migrations and the re-applied code
layer of sql/ (product code: the image's migrate step runs it; `python -m database`).

Every entry point reads ``DATABASE_URL`` (an administrative connection to an existing server)
and ``KITSU_DB`` (the database to create and use), as contract §9 describes.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

ROOT = Path(__file__).resolve().parent.parent
SQL_DIR = ROOT / "sql"
MIGRATIONS_DIR = ROOT / "migrations"
DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"

# login role -> environment variable holding its password (unset: no password, e.g. trust auth)
ROLE_PASSWORDS = {
    "kitsu_owner": "KITSU_OWNER_PASSWORD",
    "authenticator": "AUTHENTICATOR_PASSWORD",
    "auth_service": "AUTH_SERVICE_DB_PASSWORD",
    "ingest_worker": "INGEST_DB_PASSWORD",
    "legacy_importer": "LEGACY_IMPORTER_DB_PASSWORD",
}


def admin_url() -> str:
    return os.environ.get("DATABASE_URL") or DEFAULT_ADMIN_URL


def database_name() -> str:
    return os.environ.get("KITSU_DB", "kitsu")


def role_url(dbname: str, role: str | None = None, *, scheme: str = "postgresql") -> str:
    """Connection URL for ``role`` on ``dbname``, on the server of DATABASE_URL."""
    params = conninfo_to_dict(admin_url())
    params["dbname"] = dbname
    if role is not None:
        params["user"] = role
        params.pop("password", None)
        if password := os.environ.get(ROLE_PASSWORDS.get(role, ""), ""):
            params["password"] = password
    host, port = params.get("host", "127.0.0.1"), params.get("port", "5432")
    auth = str(params["user"]) + (f":{params['password']}" if params.get("password") else "")
    return f"{scheme}://{auth}@{host}:{port}/{dbname}"


def manifest() -> dict[str, list[Path]]:
    """The [state] and [code] file lists of sql/manifest.txt, in load order."""
    sections: dict[str, list[Path]] = {}
    current = None
    for raw in (SQL_DIR / "manifest.txt").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), [])
        elif current is None:
            raise ValueError(f"manifest line outside a section: {line}")
        else:
            current.append(SQL_DIR / line)
    return sections


def ensure_roles() -> None:
    """Create the cluster-wide roles of contract §2 (idempotent) and set their passwords."""
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        # roles are cluster-wide: serialise concurrent setups (tests, make run) on one lock
        conn.execute("select pg_advisory_lock(hashtext('kitsu.ensure_roles'))")
        try:
            conn.execute((SQL_DIR / "roles.sql").read_text())
            for role, variable in ROLE_PASSWORDS.items():
                if password := os.environ.get(variable):
                    conn.execute(sql.SQL("alter role {} password {}").format(
                        sql.Identifier(role), sql.Literal(password)))
        finally:
            conn.execute("select pg_advisory_unlock(hashtext('kitsu.ensure_roles'))")


def ensure_database(dbname: str, template: str | None = None) -> bool:
    """Create ``dbname`` owned by kitsu_owner if missing; return True when it was created."""
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        if conn.execute("select 1 from pg_database where datname = %s", (dbname,)).fetchone():
            return False
        query = sql.SQL("create database {} owner kitsu_owner").format(sql.Identifier(dbname))
        if template:
            query += sql.SQL(" template {}").format(sql.Identifier(template))
        conn.execute(query)
        conn.execute(sql.SQL("revoke all on database {} from public").format(sql.Identifier(dbname)))
        conn.execute(sql.SQL("grant connect on database {} to authenticator, auth_service, ingest_worker,"
                             " legacy_importer").format(sql.Identifier(dbname)))
        return True


def database_exists(dbname: str) -> bool:
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        return conn.execute("select 1 from pg_database where datname = %s", (dbname,)).fetchone() is not None


def drop_database(dbname: str) -> None:
    with psycopg.connect(admin_url(), autocommit=True) as conn:
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(dbname)))


def apply_migrations(dbname: str) -> int:
    """Apply pending yoyo migrations as kitsu_owner; return how many were applied."""
    from yoyo import get_backend, read_migrations

    backend = get_backend(role_url(dbname, "kitsu_owner", scheme="postgresql+psycopg"))
    migrations = read_migrations(str(MIGRATIONS_DIR))
    try:
        with backend.lock():
            pending = backend.to_apply(migrations)
            backend.apply_migrations(pending)
    finally:
        backend.connection.close()  # a lingering connection would block CREATE DATABASE ... TEMPLATE
    return len(pending)


def load_files(conn: psycopg.Connection, files: list[Path]) -> None:
    for path in files:
        try:
            conn.execute(path.read_text())
        except psycopg.Error as exc:
            raise RuntimeError(f"{path.relative_to(ROOT)}: {exc}") from exc


# Code objects this transaction did not (re)create: sql/ no longer defines them. Every
# `create or replace` rewrites the object's catalog row, so its xmin is the current transaction.
STALE_CODE = """
select kind, name from (
  select 'function' as kind, p.oid::regprocedure::text as name, p.xmin
    from pg_proc p join pg_namespace n on n.oid = p.pronamespace
   where n.nspname in ('private', 'auth', 'ingest', 'legacy')
     and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
  union all
  select 'view', c.oid::regclass::text, c.xmin
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
   where n.nspname in ('private', 'auth', 'ingest', 'legacy') and c.relkind = 'v'
  union all
  select 'trigger', format('%I on %s', t.tgname, t.tgrelid::regclass), t.xmin
    from pg_trigger t join pg_class c on c.oid = t.tgrelid join pg_namespace n on n.oid = c.relnamespace
   where not t.tgisinternal and n.nspname in ('data', 'private', 'auth', 'ingest', 'legacy')
) code
where code.xmin::text <> (pg_catalog.txid_current() % 4294967296)::text
order by 1, 2
"""


# Rebuilding the code under traffic (a deploy's `make migrate`): the transaction takes its locks
# one object at a time, so it can deadlock with requests, and while it waits for a lock every new
# request queues behind it. Each wait is bounded (CODE_LOCK_TIMEOUT) and a deadlock or timeout
# rolls everything back and tries again; tests/faults/test_under_load.py runs it under load.
# The rebuild is the one that gives way: its lock wait ends well before PostgREST's sessions
# would look for a deadlock (authenticator's deadlock_timeout, sql/roles.sql), so a request
# caught in a cycle with it waits a moment instead of failing.
CODE_LOCK_TIMEOUT = "500ms"
CODE_ATTEMPTS = 10


def apply_code(dbname: str) -> None:
    """Rebuild `api`, re-apply functions, triggers and grants in one transaction, drop the code
    objects sql/ no longer defines, then tell PostgREST to reload its schema cache. Retried
    whole when it deadlocks with traffic or waits too long for a lock."""
    for attempt in range(1, CODE_ATTEMPTS + 1):
        try:
            _apply_code(dbname)
            return
        except RuntimeError as exc:
            retryable = isinstance(exc.__cause__, psycopg.errors.DeadlockDetected | psycopg.errors.LockNotAvailable)
            if not retryable or attempt == CODE_ATTEMPTS:
                raise
            time.sleep(0.2 * attempt)


def _apply_code(dbname: str) -> None:
    with psycopg.connect(role_url(dbname, "kitsu_owner")) as conn:
        conn.execute(f"set local lock_timeout = '{CODE_LOCK_TIMEOUT}'")
        try:
            _rebuild_code(conn)
        except (psycopg.errors.DeadlockDetected, psycopg.errors.LockNotAvailable) as exc:
            raise RuntimeError(f"code rebuild: {exc}") from exc


def _rebuild_code(conn: psycopg.Connection) -> None:
    conn.execute("drop schema if exists api cascade")
    conn.execute("create schema api")
    conn.execute("comment on schema api is 'Kitsu public API: views and functions served by PostgREST.'")
    files = manifest()
    load_files(conn, files["code"])
    for kind, name in conn.execute(STALE_CODE).fetchall():
        # restrict: state that still needs it (a policy, an index) fails the migrate loudly
        conn.execute(f"drop {kind} {name} restrict")
    load_files(conn, files["grants"])  # after: revoking rewrites every object's catalog row
    conn.execute("notify pgrst, 'reload schema'")


def load_state(dbname: str) -> None:
    """Build the schema straight from sql/ (the desired state), without migrations."""
    with psycopg.connect(role_url(dbname, "kitsu_owner")) as conn:
        load_files(conn, manifest()["state"])


def ensure_autonomous(dbname: str) -> bool:
    """Load sql/autonomous.sql (the counter of refused admin reads, which needs a superuser's
    dblink) as the administrative role of DATABASE_URL; False, saying so, when that role is no
    superuser: refused reads are then answered uncounted."""
    params = conninfo_to_dict(admin_url())
    params["dbname"] = dbname
    with psycopg.connect(**params, autocommit=True) as conn:  # type: ignore[arg-type]
        row = conn.execute("select rolsuper from pg_roles where rolname = current_user").fetchone()
        if not (row and row[0]):
            print(f"database {dbname}: DATABASE_URL is no superuser; refused admin reads are not counted",
                  flush=True)
            return False
        with conn.transaction():
            conn.execute("select pg_advisory_xact_lock(hashtext('kitsu.ensure_autonomous'))")
            conn.execute((SQL_DIR / "autonomous.sql").read_text())
    return True


def migrate(dbname: str) -> int:
    applied = apply_migrations(dbname)
    apply_code(dbname)
    ensure_autonomous(dbname)
    return applied


def setup(dbname: str) -> None:
    """Roles, database, migrations, code: everything `make run` and the tests need. Idempotent."""
    ensure_roles()
    created = ensure_database(dbname)
    applied = migrate(dbname)
    print(f"database {dbname}: {'created' if created else 'exists'}, {applied} migration(s) applied, code re-applied",
          flush=True)


def grant_role(dbname: str, email: str, role: str) -> None:
    """Grant an RBAC role to a person (e.g. the first super_admin)."""
    with psycopg.connect(role_url(dbname, "kitsu_owner")) as conn:
        row = conn.execute(
            "insert into data.user_roles (user_id, role) "
            "select id, %s from data.users where email = lower(btrim(%s)) "
            "on conflict do nothing returning user_id", (role, email)).fetchone()
        exists = conn.execute("select 1 from data.users where email = lower(btrim(%s))", (email,)).fetchone()
        if not exists:
            raise SystemExit(f"no user with email {email}")
        print(f"{email}: {role} {'granted' if row else 'already held'}")
