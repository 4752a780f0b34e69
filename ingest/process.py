"""Starters shared by `make run` (ops/run.py), the tests and the benchmark.

upstream = upstream_process(port=8765).start().wait_ready()
workers = [worker_process("kitsu", name=f"worker-{i}").start() for i in range(n)]
first_sync("kitsu")            # the catalog, then players and schedule; waits until done
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import psycopg

from ingest import settings
from ops import db
from ops.services import Service, free_port

ROOT = Path(__file__).resolve().parent.parent
PROCRASTINATE = str(Path(sys.executable).with_name("procrastinate"))
FIRST_SYNC = ("sync_catalog", "sync_episodes", "sync_schedule")


def worker_env(dbname: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment of a worker on ``dbname`` (connects as ingest_worker)."""
    # PYTHONPATH: the `procrastinate` script's sys.path starts at .venv/bin, not the checkout
    return {
        "KITSU_DB": dbname,
        "INGEST_DATABASE_URL": db.role_url(dbname, "ingest_worker"),
        "PYTHONUNBUFFERED": "1",
        "PYTHONPATH": str(ROOT),
        **(extra or {}),
    }


def worker_process(
    dbname: str,
    *,
    name: str = "worker",
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    concurrency: int | None = None,
    queues: Sequence[str] = ("sync", "periodic"),
) -> Service:
    """`procrastinate --app=ingest.app worker` on the sync and periodic queues."""
    concurrency = concurrency or int((env or {}).get("INGEST_CONCURRENCY", 0)) or 4
    argv = [
        PROCRASTINATE,
        "--app=ingest.app",
        "--log-level=info",
        "worker",
        "--name",
        name,
        "--queues",
        ",".join(queues),
        "--concurrency",
        str(concurrency),
    ]
    return Service(name, argv, worker_env(dbname, env), log_path=log_path)


def upstream_process(
    *,
    port: int | None = None,
    limits_on: bool = True,
    titles: int | None = None,
    log_path: Path | None = None,
    per_second: int = 5,
    per_minute: int = 90,
    window_scale: float = 1.0,
    token: str | None = None,
    delay: float = 0.0,
) -> Service:
    """The local Shikimori + Kodik upstream; ``url`` is SHIKIMORI_BASE_URL, ``url + '/kodik'``
    KODIK_BASE_URL."""
    port = port or free_port()
    argv = [
        sys.executable,
        "-m",
        "ingest.upstream",
        "--port",
        str(port),
        "--per-second",
        str(per_second),
        "--per-minute",
        str(per_minute),
        "--window-scale",
        str(window_scale),
        "--delay",
        str(delay),
        "--token",
        token or settings.OFFLINE_KODIK_TOKEN,
    ]
    if not limits_on:
        argv.append("--no-limits")
    if titles is not None:
        argv += ["--titles", str(titles)]
    url = f"http://127.0.0.1:{port}"
    return Service(
        "upstream",
        argv,
        {"PYTHONUNBUFFERED": "1"},
        ready_url=f"{url}/_control/health",
        url=url,
        log_path=log_path,
    )


def upstream_env(upstream: Service, token: str | None = None) -> dict[str, str]:
    """The env vars pointing workers at a local upstream."""
    assert upstream.url
    return {
        "SHIKIMORI_BASE_URL": upstream.url,
        "KODIK_BASE_URL": f"{upstream.url}/kodik",
        "KODIK_TOKEN": token or settings.OFFLINE_KODIK_TOKEN,
    }


def owner(dbname: str) -> psycopg.Connection[Any]:
    return psycopg.connect(db.role_url(dbname, "kitsu_owner"), autocommit=True)


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
