"""Ingest benchmark (`make bench-ingest`).

1. Limit off: 20,000 synthetic titles through the local upstream (limits off in the upstream
   and in data.upstream_limits) -> titles/s stored, i.e. staged and published into
   data.anime, from the job's start to the run's end. Target >= 2,000/s.
2. Real limit on (5/s and 90/min, the shared limiter in Postgres): a shorter catalog sync,
   compared with the floor the limit sets: the earliest time the last request may start under
   both sliding windows (the 90/min window binds once a run needs more than 90 requests).

Prints CPU seconds of the worker and the upstream, and of the whole machine (PostgreSQL is the
rest; other load on the machine shows there too).
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import tempfile
import time
from pathlib import Path

import psycopg

from database import build as db
from ingest import operations
from ops import launch
from ops.services import Service

TICKS = os.sysconf("SC_CLK_TCK")


def pid_cpu(service: Service) -> float:
    assert service.process is not None
    fields = Path(f"/proc/{service.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_busy() -> float:
    """CPU seconds spent by the whole machine (all cores, every process) so far."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / TICKS


def floor_seconds(requests: int, per_second: int = 5, per_minute: int = 90) -> float:
    """Earliest start of the last request when no window may hold more than its limit."""
    starts: list[float] = []
    for k in range(requests):
        t = 0.0
        if k >= per_second:
            t = max(t, starts[k - per_second] + 1.0)
        if k >= per_minute:
            t = max(t, starts[k - per_minute] + 60.0)
        starts.append(t)
    return starts[-1]


def run_once(titles: int, limits_on: bool, workdir: Path) -> dict[str, float]:
    dbname = f"kitsu_bench_ingest_{'limited' if limits_on else 'free'}"
    db.ensure_roles()
    db.drop_database(dbname)
    db.ensure_database(dbname)
    db.migrate(dbname)
    upstream = launch.upstream_process(titles=titles, limits_on=limits_on, log_path=workdir / "upstream.log")
    upstream.start().wait_ready(timeout=120)
    with psycopg.connect(db.role_url(dbname, "kitsu_owner"), autocommit=True) as conn:
        conn.execute('select ingest.update_settings(\'{"mode": "manual"}\')')  # no periodic syncs
        if not limits_on:
            conn.execute("select ingest.set_limits('shikimori', null, null)")
    never = "0 0 1 1 *"
    env = {
        **launch.upstream_env(upstream),
        "INGEST_POLL_SECONDS": "0.2",
        "INGEST_PREFETCH": "1",
        "INGEST_CATALOG_CRON": never,
        "INGEST_SCHEDULE_CRON": never,
        "INGEST_EPISODES_CRON": never,
        "INGEST_AUTOUPDATE_CRON": never,
    }
    worker = launch.worker_process(dbname, name="bench", env=env, log_path=workdir / "worker.log")
    worker.start().wait_ready()
    try:
        time.sleep(2.0)  # let the worker start (not part of the measurement)
        cpu0 = (pid_cpu(worker), pid_cpu(upstream), machine_busy())
        wall0 = time.monotonic()
        operations.trigger(dbname, "sync_catalog")
        run = operations.wait_runs(dbname, ["sync_catalog"], timeout=3600, poll=0.05)["sync_catalog"]
        wall = time.monotonic() - wall0
        cpu1 = (pid_cpu(worker), pid_cpu(upstream), machine_busy())
        with psycopg.connect(db.role_url(dbname, "kitsu_owner")) as conn:
            stored = conn.execute("select count(*) from data.anime").fetchone()[0]  # type: ignore[index]
            staged_at = conn.execute(
                "select extract(epoch from max(fetched_at) - %s::timestamptz) from data.staging_anime",
                (run["started_at"],),
            ).fetchone()[0]  # type: ignore[index]
    finally:
        worker.stop()
        upstream.stop()
    assert run["status"] == "succeeded", run
    seconds = (run["finished_at"] - run["started_at"]).total_seconds()
    return {
        "titles": titles,
        "stored": stored,
        "requests": run["requests"],
        "pages": run["pages_done"],
        "run_seconds": seconds,
        "wall_seconds": wall,
        "staging_seconds": float(staged_at),
        "publish_seconds": seconds - float(staged_at),
        "cpu_worker": cpu1[0] - cpu0[0],
        "cpu_upstream": cpu1[1] - cpu0[1],
        "cpu_machine": cpu1[2] - cpu0[2],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--titles", type=int, default=20000, help="titles of the unlimited run")
    parser.add_argument(
        "--limited-titles",
        type=int,
        default=5000,
        help="titles of the run under the real limit (5000 = 101 requests, ~1 min)",
    )
    parser.add_argument("--skip-limited", action="store_true")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        free = run_once(args.titles, False, workdir)
        rate = free["stored"] / free["run_seconds"]
        print(
            f"limit off: {free['stored']} titles stored in {free['run_seconds']:.2f} s "
            f"({free['pages']} pages, {free['requests']} requests) -> {rate:,.0f} titles/s "
            f"[target >= 2,000/s: {'ok' if rate >= 2000 else 'MISSED'}]"
        )
        print(
            f"  staging {free['staging_seconds']:.2f} s, publish {free['publish_seconds']:.2f} s; "
            f"wall from defer {free['wall_seconds']:.2f} s"
        )
        print(
            f"  CPU s: worker {free['cpu_worker']:.1f}, upstream {free['cpu_upstream']:.1f}, "
            f"whole machine {free['cpu_machine']:.1f} (of {2 * free['wall_seconds']:.1f} on 2 cores; "
            "the rest is PostgreSQL and other load)"
        )
        if args.skip_limited:
            return
        limited = run_once(args.limited_titles, True, workdir)
        requests = limited["requests"]
        floor = floor_seconds(requests)
        pages = math.ceil(args.limited_titles / 50) + (args.limited_titles % 50 == 0)
        ratio = limited["run_seconds"] / floor if floor else float("inf")
        print(
            f"limit on: {limited['stored']} titles, {requests} requests in {limited['run_seconds']:.2f} s; "
            f"floor {floor:.2f} s (last request's earliest start under 5/s and 90/min) -> "
            f"{(ratio - 1) * 100:+.1f} % [target within 10 %: {'ok' if ratio <= 1.10 else 'MISSED'}]"
        )
        print(
            f"  for reference: pages / 5 per s = {pages / 5:.1f} s; requests / 1.5 per s = "
            f"{requests / 1.5:.1f} s (the sustained 90/min rate; a fresh window allows an initial burst)"
        )
        print(
            f"  CPU s: worker {limited['cpu_worker']:.1f}, upstream {limited['cpu_upstream']:.1f}, "
            f"whole machine {limited['cpu_machine']:.1f}"
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        for name in ("kitsu_bench_ingest_free", "kitsu_bench_ingest_limited"):
            db.drop_database(name)


if __name__ == "__main__":
    main()
