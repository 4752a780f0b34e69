"""Operator actions on the queue, as SQL: queue a sync, wait for runs, the first sync. Used by
the image's migrate step (`python -m database first-sync`), `make run`, the tests and benchmarks."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import psycopg

from database.build import role_url

FIRST_SYNC = ("sync_catalog", "sync_episodes", "sync_schedule")


def owner(dbname: str) -> psycopg.Connection[Any]:
    return psycopg.connect(role_url(dbname, "kitsu_owner"), autocommit=True)


def trigger(dbname: str, task: str, args: str = "{}") -> int | None:
    """Queue a sync as operators do (``select ingest.trigger_sync(...)``)."""
    with owner(dbname) as conn:
        row = conn.execute("select ingest.trigger_sync(%s, %s::jsonb)", (task, args)).fetchone()
    return row[0] if row else None


def wait_runs(
    dbname: str,
    tasks: Sequence[str],
    *,
    since_id: int = 0,
    timeout: float = 600.0,
    poll: float = 0.25,
) -> dict[str, dict[str, Any]]:
    """Wait until each task has a finished run with id > since_id; return the latest ones."""
    deadline = time.monotonic() + timeout
    with owner(dbname) as conn:
        conn.row_factory = psycopg.rows.dict_row  # type: ignore[assignment]
        while True:
            rows = conn.execute(
                "select distinct on (task) * from data.sync_runs where id > %s and task = any(%s)"
                " and finished_at is not null order by task, id desc",
                (since_id, list(tasks)),
            ).fetchall()
            found = {row["task"]: row for row in rows}
            if len(found) == len(set(tasks)):
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"syncs {sorted(set(tasks) - set(found))} not finished after {timeout}s"
                )
            time.sleep(poll)


def catalog_empty(dbname: str) -> bool:
    with owner(dbname) as conn:
        return conn.execute("select not exists (select 1 from data.anime)").fetchone() == (True,)


def latest_run_id(dbname: str) -> int:
    with owner(dbname) as conn:
        return conn.execute("select coalesce(max(id), 0) from data.sync_runs").fetchone()[0]  # type: ignore[index]


def first_sync_finished(dbname: str, *, since_id: int, tasks: Sequence[str] = FIRST_SYNC) -> bool:
    """Have the first syncs queued after run ``since_id`` finished? Raise if one failed."""
    try:
        runs = wait_runs(dbname, tasks, since_id=since_id, timeout=0)
    except TimeoutError:
        return False
    failed = {t: (r["error_code"], r["error"]) for t, r in runs.items() if r["status"] != "succeeded"}
    if failed:
        raise RuntimeError(f"first sync failed: {failed}")
    return True


def first_sync(
    dbname: str, *, tasks: Sequence[str] = FIRST_SYNC, wait: bool = True, timeout: float = 600.0
) -> dict[str, dict[str, Any]] | None:
    """Queue the first syncs (catalog, players, schedule) and, with ``wait``, block until all
    finished; raise if one failed. `make run` calls this when the catalog is empty."""
    since = latest_run_id(dbname)
    for task in tasks:
        trigger(dbname, task)
    if not wait:
        return None
    runs = wait_runs(dbname, tasks, since_id=since, timeout=timeout)
    failed = {
        t: (r["error_code"], r["error"]) for t, r in runs.items() if r["status"] != "succeeded"
    }
    if failed:
        raise RuntimeError(f"first sync failed: {failed}")
    return runs
