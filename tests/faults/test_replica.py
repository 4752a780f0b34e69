"""The streaming replica stopped and started under read load (issue 14): anonymous catalog reads
keep succeeding throughout - answered by the primary while the replica is down, by the replica
again once it is back (the access log says which PostgREST answered, the replica's
pg_stat_activity shows its PostgREST's statements resuming) - with zero errors.

The layout is tests/test_read_replica.py's (a primary and a pg_basebackup replica the test owns,
a PostgREST on each, the gateway in front). ``KITSU_SOAK=1`` (`make soak`) stops the replica 3
times for 10 s each, `make test` once for 2 s."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import httpx
import pytest

from tests.faults.conftest import SOAK
from tests.test_read_replica import CATALOG, Layout, answered_by, wait_until
from tests.test_read_replica import layout as layout  # the module's fixture, used here

pytestmark = pytest.mark.processes

READERS = 4


@dataclass
class Reads:
    """``READERS`` threads reading the catalog through the gateway, anonymously, until stopped."""

    gateway: str
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    threads: list[threading.Thread] = field(default_factory=list)

    def _read(self) -> None:
        with httpx.Client(base_url=self.gateway, timeout=10) as client:
            while not self.stop.is_set():
                try:
                    response = client.get("/rest/anime", params=CATALOG)
                    status, problem = response.status_code, "" if response.status_code == 200 and \
                        len(response.json()) >= 5 else response.text[:200]
                except httpx.HTTPError as exc:
                    status, problem = 0, repr(exc)
                with self.lock:
                    self.statuses[status] = self.statuses.get(status, 0) + 1
                    if problem and len(self.failures) < 10:
                        self.failures.append(f"{status}: {problem}")
                time.sleep(0.01)

    def __enter__(self) -> Reads:
        self.threads = [threading.Thread(target=self._read, daemon=True) for _ in range(READERS)]
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(30)


def test_the_replica_stopped_and_started_under_read_load(layout: Layout):
    rounds, down_for = (3, 10.0) if SOAK else (1, 2.0)
    replica, primary = layout.address(layout.replica_api), layout.address(layout.primary_api)
    wait_until(lambda: layout.replica_sql("select lag_seconds from private.replication_status") == 0, timeout=60)
    figures = []
    with Reads(str(layout.gateway.url)) as reads:
        for _ in range(rounds):
            # on the replica before the fault: its PostgREST's statements are in its pg_stat_activity
            before = layout.replica_last_request()
            wait_until(lambda before=before: (seen := layout.replica_last_request()) is not None and seen != before,
                       timeout=60)
            layout.replica.stop()
            stopped, since = time.monotonic(), len(layout.access_log())
            try:
                time.sleep(down_for)
                during = answered_by(layout, since)
            finally:
                layout.replica.start()
            started, since = time.monotonic(), len(layout.access_log())
            # back on the replica: answers from its PostgREST, and statements on its (new) server
            wait_until(lambda since=since: replica in answered_by(layout, since), timeout=60)
            wait_until(lambda: layout.replica_last_request() is not None, timeout=10)
            back = time.monotonic() - started
            assert during and set(during) == {primary}, f"while the replica was down: {set(during)}"
            figures.append(f"{len(during)} reads on the primary in {started - stopped:.1f} s down, "
                           f"back on the replica {back:.1f} s after its start")
        time.sleep(1)
    line = (f"replica stopped and started {rounds}x under anonymous read load ({READERS} readers): "
            f"{'; '.join(figures)}; answers by status {reads.statuses}; lost: nothing (reads only), "
            f"errors {sum(n for status, n in reads.statuses.items() if status != 200)}")
    print("\n" + line)
    assert reads.failures == [], line
    assert set(reads.statuses) == {200}, line
