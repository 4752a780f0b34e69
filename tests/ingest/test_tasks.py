"""The sync tasks have one owner, data.sync_tasks; ingest/tasks.py must declare the same tasks to
Procrastinate with the same lock and queueing lock, or a job deferred from SQL (ticks, the
sweeper, the admin API) and one deferred from Python would not exclude each other."""

from __future__ import annotations

from collections.abc import Iterable

import psycopg
import pytest

from ingest.app import app
from ingest.tasks import SYNC_QUEUE


def declared_sync_tasks() -> dict[str, tuple[str | None, str | None]]:
    """Procrastinate's sync tasks (queue `sync`, except publish): name -> (lock, queueing_lock)."""
    return {
        task.name: (task.lock, task.queueing_lock)
        for task in app.tasks.values()
        if task.queue == SYNC_QUEUE and task.name != "publish"
    }


def task_disagreements(declared: dict[str, tuple[str | None, str | None]],
                       owned: Iterable[tuple[str, str]]) -> list[str]:
    owned_locks = dict(owned)
    problems = [f"{name}: declared in ingest/tasks.py, not in data.sync_tasks"
                for name in declared.keys() - owned_locks.keys()]
    problems += [f"{name}: in data.sync_tasks, not declared in ingest/tasks.py"
                 for name in owned_locks.keys() - declared.keys()]
    problems += [f"{name}: locks {declared[name]} in Python, {owned_locks[name]!r} in data.sync_tasks"
                 for name in declared.keys() & owned_locks.keys()
                 if declared[name] != (owned_locks[name], owned_locks[name])]
    return sorted(problems)


def sync_task_rows(conn) -> list[tuple[str, str]]:
    return conn.execute("select task, lock from data.sync_tasks order by task").fetchall()


def test_python_declares_exactly_the_sync_tasks_of_the_database(conn):
    assert task_disagreements(declared_sync_tasks(), sync_task_rows(conn)) == []


def test_a_task_missing_or_with_another_lock_is_reported(conn):
    declared = declared_sync_tasks()
    rows = sync_task_rows(conn)
    planted = dict(declared)
    planted.pop("autoupdate")
    planted["sync_catalog"] = ("sync_catalog", "sync_catalog")
    planted["sync_people"] = ("ingest:sync_people", "ingest:sync_people")
    assert task_disagreements(planted, rows) == [
        "autoupdate: in data.sync_tasks, not declared in ingest/tasks.py",
        "sync_catalog: locks ('sync_catalog', 'sync_catalog') in Python, 'ingest:sync_catalog' in data.sync_tasks",
        "sync_people: declared in ingest/tasks.py, not in data.sync_tasks",
    ]


def test_a_run_of_an_unknown_task_is_refused_by_the_database(conn):
    with pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute("insert into data.sync_runs (task, status) values ('sync_people', 'running')")
