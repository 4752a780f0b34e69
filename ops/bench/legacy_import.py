"""Cut-over benchmark (issue 12): an old database of 100,000 people with 20 favorites and 10
progress rows each and 20,000 titles (2 episodes each), generated with set-based SQL, imported
into a freshly migrated database by `python -m legacy_import` as a child process. Prints the
wall time, rows/s (old rows read / wall time), the importer's peak RSS and CPU (getrusage of the
child: bounded by one COPY buffer, not by the data) and a second, idempotent run.

Usage: python -m ops.bench.legacy_import [--people 100000] [--keep]
Target on the 2-core machine: under 60 s.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg

from auth_service.passwords import legacy_hash
from database import build as db
from ops.bench.cpu import cpu_by_pid

ROOT = Path(__file__).resolve().parent.parent.parent
OLD_SCHEMA = ROOT / "tests" / "legacy" / "old_schema.sql"  # the documented DDL (original-system.md §1)
OLD_DB, TARGET_DB = "kitsu_bench_legacy", "kitsu_bench_import"
TITLES, FAVORITES, PROGRESS = 20_000, 20, 10

# uuids derived from numbers, so people, titles and their rows are generated without lookups
GENERATE = """
create function pg_temp.id(kind int, n bigint) returns uuid language sql immutable as
  $$ select (lpad(to_hex(kind), 8, '0') || '-0000-4000-8000-' || lpad(to_hex(n), 12, '0'))::uuid $$;
insert into users (id, email, password_hash, created_at)
select pg_temp.id(1, i), 'person-' || i || '@example.test', %(hash)s, now() - i * interval '1 minute'
  from generate_series(1, %(people)s) i;
insert into anime (id, title, state, source, created_at, updated_at)
select pg_temp.id(2, i), 'Title ' || i, 'published', 'parser', now(), now() from generate_series(1, %(titles)s) i;
insert into releases (id, anime_id, title) select pg_temp.id(3, i), pg_temp.id(2, i), 'Season 1'
  from generate_series(1, %(titles)s) i;
insert into episodes (id, release_id, number, source)
select pg_temp.id(4, i * 2 + n), pg_temp.id(3, i), n, 'parser'
  from generate_series(1, %(titles)s) i, generate_series(1, 2) n;
insert into favorites (id, user_id, anime_id, created_at)
select pg_temp.id(5, p * %(favorites)s + k), pg_temp.id(1, p), pg_temp.id(2, 1 + (p * 7 + k * 997) %% %(titles)s), now()
  from generate_series(1, %(people)s) p, generate_series(1, %(favorites)s) k;
insert into watch_progress (id, user_id, anime_id, episode, position_seconds, progress_percent, created_at,
                            last_watched_at)
select pg_temp.id(6, p * %(progress)s + k), pg_temp.id(1, p), pg_temp.id(2, 1 + (p * 13 + k * 1009) %% %(titles)s),
       1 + k %% 2, k * 60, 50, now(), now()
  from generate_series(1, %(people)s) p, generate_series(1, %(progress)s) k;
analyze;
"""


def create_old_database(people: int) -> int:
    db.drop_database(OLD_DB)
    with psycopg.connect(db.admin_url(), autocommit=True) as conn:
        conn.execute(f"create database {OLD_DB}")
    started = time.monotonic()
    with psycopg.connect(db.role_url(OLD_DB), cursor_factory=psycopg.ClientCursor) as conn:
        conn.execute(OLD_SCHEMA.read_text())
        conn.execute(GENERATE, {"hash": legacy_hash("bench password", rounds=4), "people": people,
                                "titles": TITLES, "favorites": FAVORITES, "progress": PROGRESS})
        conn.commit()
        rows = sum(conn.execute(f"select count(*) from {t}").fetchone()[0]  # type: ignore[index]
                   for t in ("users", "anime", "releases", "episodes", "favorites", "watch_progress"))
    print(f"old database: {rows:,} rows generated in {time.monotonic() - started:.1f} s", flush=True)
    return rows


def postgres_cpu() -> dict[int, float]:
    """CPU seconds of every live `postgres` process, by pid (backends exit: sampled by pid)."""
    return {pid: seconds for pid, (_, seconds) in cpu_by_pid(("postgres",)).items()}


def run_importer() -> tuple[float, float, str]:
    """Run the importer; return wall seconds, PostgreSQL CPU seconds meanwhile (sampled every
    0.2 s, so the importer's backends are seen before they exit) and its output."""
    first, last = postgres_cpu(), {}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.2):
            last.update(postgres_cpu())

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.monotonic()
    result = subprocess.run([sys.executable, "-m", "legacy_import"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "KITSU_DB": TARGET_DB, "LEGACY_DATABASE_URL": db.role_url(OLD_DB)})
    wall = time.monotonic() - started
    done.set()
    sampler.join()
    if result.returncode:
        raise SystemExit(result.stdout + result.stderr)
    return wall, sum(cpu - first.get(pid, 0.0) for pid, cpu in last.items()), result.stdout


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--keep", action="store_true", help="keep both databases")
    args = parser.parse_args()
    db.ensure_roles()
    rows = create_old_database(args.people)
    db.drop_database(TARGET_DB)
    db.ensure_database(TARGET_DB)
    db.migrate(TARGET_DB)

    wall, server_cpu, output = run_importer()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = output.split("not carried:")[0]
    print(report.rstrip())
    print(f"first run: {wall:.1f} s wall, {rows / wall:,.0f} old rows/s; importer peak RSS "
          f"{usage.ru_maxrss / 1024:.0f} MiB, importer CPU {usage.ru_utime + usage.ru_stime:.1f} s, "
          f"PostgreSQL CPU {server_cpu:.1f} s ({server_cpu / wall:.2f} cores)")
    again, server_cpu, output = run_importer()
    written = output.split("written in total: ")[1].split()[0]
    print(f"second run: {again:.1f} s wall, {written} rows written, PostgreSQL CPU {server_cpu:.1f} s")
    if not args.keep:
        db.drop_database(TARGET_DB)
        db.drop_database(OLD_DB)


if __name__ == "__main__":
    main()
