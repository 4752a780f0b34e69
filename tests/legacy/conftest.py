"""An old system's database (original-system.md §1 DDL, seed.sql) and the importer run as a real
subprocess against a database cloned from the template."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from auth_service.passwords import legacy_hash
from database import build as db
from tests.auth_service.conftest import auth_env, start_auth  # noqa: F401  (fixtures)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
OLD_PASSWORD = "old password"
STEP_LINE = re.compile(r"^(\w+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+[\d.]+$", re.M)


def create_old_database(seed: str | None = None) -> str:
    """A database with the old schema; ``seed`` (SQL) fills it, default seed.sql."""
    name = f"kitsu_legacy_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(db.admin_url(), autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    with psycopg.connect(db.role_url(name), cursor_factory=psycopg.ClientCursor) as conn:
        conn.execute((HERE / "old_schema.sql").read_text())
        conn.execute(seed if seed is not None else (HERE / "seed.sql").read_text(),
                     {"hash": legacy_hash(OLD_PASSWORD, rounds=4), "hash2": legacy_hash("another", rounds=4)})
    return name


@pytest.fixture(scope="module")
def old_db(database_url: str) -> Iterator[str]:
    name = create_old_database()
    yield db.role_url(name)
    db.drop_database(name)


def importer(target: str, legacy_url: str, *args: str, **env: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "legacy_import", *args], cwd=ROOT, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env={**os.environ, "KITSU_DB": target, "LEGACY_DATABASE_URL": legacy_url, **env})


def run_import(target: str, legacy_url: str, *args: str) -> dict[str, tuple[int, int, int, int]]:
    """Run the importer to the end; return its report: step -> (read, written, skipped, repaired)."""
    process = importer(target, legacy_url, *args)
    output, _ = process.communicate(timeout=600)
    assert process.returncode == 0, output
    return {m[1]: (int(m[2]), int(m[3]), int(m[4]), int(m[5])) for m in STEP_LINE.finditer(output)}


@pytest.fixture(scope="module")
def imported(old_db: str, make_db: Callable[[], str]) -> tuple[str, dict[str, tuple[int, int, int, int]]]:
    target = make_db()
    return target, run_import(target, old_db)
