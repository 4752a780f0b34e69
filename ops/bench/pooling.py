"""PostgREST direct vs through PgBouncer (issue 14, docs/scaling.md): the same seeded catalog as
`make bench` (ops/bench/api.py: 20,000 titles, 1,000 people with 50 favorites), driven by wrk
against one PostgREST (db-pool 20) in three layouts:

  direct         PostgREST -> PostgreSQL, prepared statements on (the default layout)
  direct-noprep  the same with db-prepared-statements=false: what a transaction pooler costs by itself
  pgbouncer      PostgREST -> PgBouncer 1.18 (transaction mode, PGBOUNCER_POOL_SIZE server
                 connections) -> PostgreSQL, prepared statements and listener off

Prints one table: req/s, p50/p95/p99, errors, response size, the cores each process used, and
the server connections the authenticator held at the end of each run.

Usage: python -m ops.bench.pooling [--duration 10] [--connections 50,200] [--pool-size 10]
       [--scenarios "anime page,catalog page,favorites+anime"] [--layouts direct,pgbouncer] [--reuse] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import psycopg

from auth_service import keys
from database import build as db
from ops import launch, services
from ops.bench import api

BENCH_DB = "kitsu_bench_pooling"
PROCESSES = ("postgrest", "postgres", "pgbouncer")
LAYOUTS = ("direct", "direct-noprep", "pgbouncer")


def ours(started: list[services.Service]) -> Callable[[int, str], bool]:
    """Which processes' CPU counts: this layout's PostgREST and PgBouncer, and the PostgreSQL
    backends of the bench database (asked after the run) - not the rest of a shared server."""
    own = {service.process.pid for service in started if service.process}

    def keep(pid: int, name: str) -> bool:
        if name != "postgres":
            return pid in own
        if not backends:
            with psycopg.connect(db.admin_url()) as conn:
                backends.update(row[0] for row in conn.execute(
                    "select pid from pg_stat_activity where datname = %s and pid <> pg_backend_pid()", (BENCH_DB,)))
        return pid in backends

    backends: set[int] = set()
    return keep


def authenticator_connections() -> int:
    with psycopg.connect(db.admin_url()) as conn:
        return conn.execute("select count(*) from pg_stat_activity where datname = %s and usename = 'authenticator'",
                            (BENCH_DB,)).fetchone()[0]


def start_layout(layout: str, jwks: str, pool_size: int, run_dir: Path) -> list[services.Service]:
    """The processes of one layout, started; the PostgREST is the last."""
    started: list[services.Service] = []
    options: dict[str, object] = {}
    if layout == "pgbouncer":
        pgbouncer = launch.pgbouncer_process(BENCH_DB, run_dir=run_dir / "pgbouncer", pool_size=pool_size,
                                             log_path=run_dir / "pgbouncer.log")
        started.append(pgbouncer.start().wait_ready())
        options = {"db_uri": launch.role_url_on(launch.server_address(pgbouncer.url or ""), BENCH_DB, "authenticator"),
                   "transaction_pooler": True}
    postgrest = services.postgrest(BENCH_DB, jwks_json=jwks, pool=20, log_path=run_dir / f"postgrest-{layout}.log",
                                   **options)  # type: ignore[arg-type]
    if layout == "direct-noprep":
        postgrest.env = {**postgrest.env, "PGRST_DB_PREPARED_STATEMENTS": "false"}
    started.append(postgrest.start().wait_ready())
    return started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", default="50,200")
    parser.add_argument("--pool-size", type=int, default=10, help="PgBouncer server connections (PGBOUNCER_POOL_SIZE)")
    parser.add_argument("--scenarios", default="anime page,catalog page,favorites+anime")
    parser.add_argument("--layouts", default=",".join(LAYOUTS))
    parser.add_argument("--reuse", action="store_true", help="reuse a kept bench database")
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()
    for tool in ("wrk", "pgbouncer"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed (Debian package {tool})")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    if not (args.reuse and db.database_exists(BENCH_DB)):
        api.seed(BENCH_DB)
    private_pem = keys.generate_private_pem()
    jwks = keys.jwks_json({"bench": private_pem})
    results = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            requests = {s: api.request_file(Path(tmp), s, private_pem, BENCH_DB) for s in args.scenarios.split(",")}
            for layout in args.layouts.split(","):
                started = start_layout(layout, jwks, args.pool_size, Path(tmp))
                try:
                    for scenario, path in requests.items():
                        for connections in (int(c) for c in args.connections.split(",")):
                            figures = api.run_wrk(str(started[-1].url), path, connections, args.duration,
                                                  processes=PROCESSES, keep=ours(started))
                            figures.update(layout=layout, scenario=scenario, connections=connections,
                                           server_connections=authenticator_connections())
                            results.append(figures)
                            print(json.dumps(figures), flush=True)
                finally:
                    for service in reversed(started):
                        service.stop()
    finally:
        if not args.keep:
            db.drop_database(BENCH_DB)

    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"\nwrk 2 threads, {args.duration}s per run; PostgREST db-pool 20; PgBouncer {args.pool_size} server "
          f"connections, transaction mode; {os.cpu_count()} cores shared by wrk, PostgREST, PgBouncer and "
          f"PostgreSQL; after the runs: {load}")
    print(f"{'scenario':<16} {'layout':<14} {'conns':>5} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} "
          f"{'errors':>6} {'KiB/resp':>8} {'db conns':>8}  cores (postgrest/postgres/pgbouncer/wrk)")
    for r in results:
        errors = sum(r[k] for k in r if k.startswith("errors_"))
        cores = r["cores"]
        print(f"{r['scenario']:<16} {r['layout']:<14} {r['connections']:>5} {r['rps']:>7.0f} {r['p50_ms']:>7.1f} "
              f"{r['p95_ms']:>7.1f} {r['p99_ms']:>7.1f} {errors:>6} {r['bytes'] / max(r['requests'], 1) / 1024:>8.1f} "
              f"{r['server_connections']:>8}  "
              + "/".join(str(cores[name]) for name in (*PROCESSES, "wrk")))
    direct = {(r["scenario"], r["connections"]): r["rps"] for r in results if r["layout"] == "direct"}
    for r in results:
        if r["layout"] != "direct" and (base := direct.get((r["scenario"], r["connections"]))):
            print(f"{r['scenario']} at {r['connections']}: {r['layout']} {r['rps'] / base:.2f}x direct")


if __name__ == "__main__":
    main()
