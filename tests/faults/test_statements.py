"""The database's slow-statement figures (contract §14): with pg_stat_statements loaded and
installed, ingest.database_metrics() (what the workers' /metrics export) lists the statements
with the most total time, by queryid and role; without it, none (tests/ingest/test_metrics.py)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest

from database import build as db
from ops import embedded_pg

pytestmark = pytest.mark.processes


def test_slow_statements_appear_when_pg_stat_statements_is_installed(monkeypatch):
    home = Path(tempfile.mkdtemp(prefix="kitsu-statements-"))
    home.chmod(0o755)
    cluster = embedded_pg.Cluster(home=home / "pg", settings={"shared_preload_libraries": "pg_stat_statements"}).start()
    try:
        monkeypatch.setenv("DATABASE_URL", cluster.url)
        db.ensure_roles()
        db.ensure_database("kitsu_statements")
        db.migrate("kitsu_statements")
        with psycopg.connect(db.role_url("kitsu_statements"), autocommit=True) as conn:
            conn.execute("create extension pg_stat_statements")
            conn.execute("select pg_stat_statements_reset()")  # the migration's statements out
        with psycopg.connect(db.role_url("kitsu_statements", "ingest_worker"), autocommit=True) as conn:
            for _ in range(3):
                conn.execute("select pg_sleep(0.2)")  # a slow statement, three times
            rows = conn.execute("select kind, name, detail, value from ingest.database_metrics()").fetchall()
        statements = [row for row in rows if row[0] == "statement_calls"]
        assert statements and len(statements) <= 10
        assert {row[2] for row in statements} <= {"kitsu_owner", "ingest_worker", "postgres"}
        assert any(row[2] == "ingest_worker" and row[3] == 3 for row in statements), statements
        means = [row for row in rows if row[0] == "statement_mean_seconds"]
        assert len(means) == len(statements)
        slowest = max(means, key=lambda row: row[3])
        assert slowest[2] == "ingest_worker" and 0.19 <= slowest[3] < 1, means
    finally:
        cluster.stop()
        shutil.rmtree(home, ignore_errors=True)
