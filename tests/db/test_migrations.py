"""sql/ is the truth, migrations/ the path: applying every migration must give the schema that
loading sql/ gives (style H3). The comparison is a normalised `pg_dump --schema-only`."""

from __future__ import annotations

import re
import subprocess

import psycopg

from ops import db


def schema_dump(dbname: str) -> str:
    """Schema of ``dbname`` without yoyo's bookkeeping tables, comments and blank lines."""
    output = subprocess.run(
        ["pg_dump", "--schema-only", "--no-owner", "--exclude-table=public._yoyo*",
         "--exclude-table=public.yoyo_lock", "--dbname", db.role_url(dbname)],
        check=True, capture_output=True, text=True).stdout
    lines = [line for line in output.splitlines()
             if line.strip() and not line.startswith("--") and not line.startswith("SET ")
             and not line.startswith("\\")]
    return re.sub(r"\n{2,}", "\n", "\n".join(lines))


def build_from_sql(dbname: str) -> None:
    db.load_state(dbname)
    db.apply_code(dbname)


def test_migrations_reach_the_schema_declared_in_sql(template_db, make_db):
    from_sql = make_db_empty(make_db)
    build_from_sql(from_sql)
    migrated, declared = schema_dump(template_db), schema_dump(from_sql)
    assert migrated == declared


def test_the_comparison_sees_a_drift(template_db, make_db):
    drifted = make_db_empty(make_db)
    build_from_sql(drifted)
    with psycopg.connect(db.role_url(drifted, "kitsu_owner")) as conn:
        conn.execute("alter table data.favorites add column planted_drift text")
    assert schema_dump(template_db) != schema_dump(drifted)


def test_migrating_again_is_a_no_op(template_db):
    assert db.migrate(template_db) == 0


def make_db_empty(make_db) -> str:
    """An empty database (no migrations): reuse the factory's naming and cleanup."""
    name = make_db()
    db.drop_database(name)
    db.ensure_database(name)
    return name
