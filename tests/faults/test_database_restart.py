"""PostgreSQL restarted under write load (issue 14): a clean restart (fast) and a crash
(immediate: recovered from the WAL). Every service recovers without being restarted, and no
write the platform acknowledged (2xx) is lost."""

from __future__ import annotations

import time

import pytest

from ingest import operations
from tests.faults.conftest import SOAK, Load, pids_of, ready, same_processes, wait_until

pytestmark = pytest.mark.processes


def test_database_restarts_under_write_load_lose_nothing(platform):
    modes = ["immediate", "fast"] * (3 if SOAK else 1)
    pids = pids_of(platform)
    recoveries = []
    with Load(platform) as load:
        load.wait_for_success("favorite", after=0, timeout=60)
        for mode in modes:
            time.sleep(20 if SOAK else 3)  # writing meanwhile
            before = time.monotonic()
            platform.cluster.restart(mode)
            restarted = time.monotonic()
            # each service answers again by itself (nobody restarts it)
            write = load.wait_for_success("favorite", after=restarted, timeout=60)
            read = load.wait_for_success("read", after=restarted, timeout=60)
            sign_up = load.wait_for_success("register", after=restarted, timeout=60)
            wait_until(lambda: ready(f"{platform.admin_url}/ready"), 30, "PostgREST ready")
            wait_until(lambda: ready(f"{platform.worker.url}/ready"), 30, "worker ready")
            recoveries.append(f"{mode}: down {restarted - before:.1f}s, then first write {write:.2f}s, "
                              f"read {read:.2f}s, sign-up {sign_up:.2f}s")
        time.sleep(2)
    assert same_processes(platform, pids) == {}, "a service had to be restarted"
    # the worker recovered too: a sync queued after the restarts runs to its end
    since = operations.latest_run_id("kitsu_faults")
    assert operations.trigger("kitsu_faults", "sync_schedule") is not None
    runs = operations.wait_runs("kitsu_faults", ("sync_schedule",), since_id=since, timeout=90)
    assert runs["sync_schedule"]["status"] == "succeeded", runs

    lost = load.lost()
    load.report(f"PostgreSQL restarted {len(modes)}x under write load", lost, "; ".join(recoveries))
    assert lost == {"favorites": [], "people": []}
    assert len(load.acked_favorites) > 50 and len(load.acked_people) > 10
