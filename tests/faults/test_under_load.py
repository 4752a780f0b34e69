"""Faults of one service under load (issue 14): an auth_service worker process killed, and
PostgREST's schema rebuilt and reloaded (what `make migrate` does) while people read and write.
The platform keeps serving, and no acknowledged write is lost."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from database import build as db
from ops.bench.cpu import processes
from tests.faults.conftest import DBNAME, SOAK, Load, pids_of, same_processes, wait_until

pytestmark = pytest.mark.processes


def children(pid: int) -> set[int]:
    """uvicorn's worker processes under its master ``pid`` (multiprocessing spawns them; the
    resource tracker beside them is not a worker)."""
    found = set()
    for child, _, parent, _ in processes():
        with contextlib.suppress(OSError):
            if parent == pid and b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.add(child)
    return found


def failures(load: Load, kinds: tuple[str, ...]) -> int:
    return sum(n for kind in kinds for status, n in load.statuses.get(kind, {}).items() if not 200 <= status < 300)


def test_an_auth_worker_killed_under_load(platform):
    assert platform.auth.process is not None
    master = platform.auth.process.pid
    pids = pids_of(platform)
    kills = 3 if SOAK else 1
    with Load(platform) as load:
        load.wait_for_success("register", after=0, timeout=60)
        for _ in range(kills):
            time.sleep(10 if SOAK else 2)
            workers = children(master)
            assert len(workers) == 3, workers
            victim = sorted(workers)[0]
            killed = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            load.wait_for_success("register", after=killed + 0.5, timeout=30)
            wait_until(lambda gone=victim: len(children(master) - {gone}) == 3, 30,
                       "uvicorn replaced the worker")
            respawned = time.monotonic() - killed  # by then a sign-up had succeeded on the others
        time.sleep(2)
    assert same_processes(platform, pids) == {}, "the service itself had to be restarted"
    lost = load.lost()
    failed = failures(load, ("register",))
    load.report(f"auth_service worker SIGKILLed {kills}x under load", lost,
                f"replaced within {respawned:.1f}s of the kill; failed sign-ups {failed} "
                "(requests in flight on the killed process)")
    assert lost == {"favorites": [], "people": []}
    assert failed <= 4 * kills  # at most what was in flight on the killed process (4 threads register)


def test_schema_rebuilt_and_reloaded_under_load(platform):
    rounds = 10 if SOAK else 3
    pids = pids_of(platform)
    with Load(platform) as load:
        load.wait_for_success("favorite", after=0, timeout=60)
        for _ in range(rounds):
            time.sleep(3 if SOAK else 1)
            db.apply_code(DBNAME)  # drops and rebuilds api, then notify pgrst, 'reload schema'
            with platform.owner() as conn:
                conn.execute("notify pgrst, 'reload schema'")
        reloaded = time.monotonic()
        load.wait_for_success("favorite", after=reloaded, timeout=30)
        load.wait_for_success("read", after=reloaded, timeout=30)
        time.sleep(1)
    assert same_processes(platform, pids) == {}
    lost = load.lost()
    failed = failures(load, ("favorite", "read"))
    load.report(f"schema rebuilt and reloaded {rounds}x under load", lost, f"failed reads and writes {failed}")
    assert lost == {"favorites": [], "people": []}
    assert failed == 0, load.statuses
