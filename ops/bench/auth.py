"""auth_service benchmark (issue 3): sign-in throughput and latency against the machine's
hashing limit, and peak memory under a flood of 1,000 concurrent sign-in attempts.

Seeds 1,000 people (argon2id at the production parameters), starts auth_service with
AUTH_WORKERS processes (default: one per core), and drives wrk (Lua script auth_login.lua: every
request a successful POST /auth/login, rotating through the people) at 10, 50 and 200
connections. The hashing limit is cores / (time of one argon2id verification, measured here in
one thread on the idle machine); the target is >= 80 % of it. Then 1,000 connections at once,
sampling the memory of every auth_service process.

Last, the flood scenario (issue 9): the same legitimate sign-ins at 50 connections alone and while
one client (one address, random unknown emails) floods with 50 more; the per-address limit
answers it 429 before any hash, so the legitimate rate should not move beyond noise.

Usage: python -m ops.bench.auth [--duration 15] [--connections 10,50,200] [--flood 1000] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import statistics
import subprocess
import threading
import time
from pathlib import Path

import argon2
import httpx
import psycopg

from auth_service import keys
from auth_service.settings import Settings
from database import build as db
from ops import services
from ops.bench.cpu import cpu_seconds
from ops.launch import auth_process

BENCH_DB = "kitsu_bench_auth"
HERE = Path(__file__).resolve().parent
RESULTS = HERE.parent.parent / "bench" / "results"
PEOPLE = 1000
PASSWORD = "bench password"
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def hasher() -> argon2.PasswordHasher:
    defaults = Settings.model_fields
    return argon2.PasswordHasher(
        time_cost=int(os.environ.get("AUTH_ARGON2_TIME_COST", defaults["argon2_time_cost"].default)),
        memory_cost=int(os.environ.get("AUTH_ARGON2_MEMORY_COST", defaults["argon2_memory_cost"].default)),
        parallelism=int(os.environ.get("AUTH_ARGON2_PARALLELISM", defaults["argon2_parallelism"].default)),
        type=argon2.Type.ID,
    )


def hash_seconds(trials: int = 40) -> float:
    """Median time of one verification, one thread, as the service does it."""
    ph = hasher()
    stored = ph.hash(PASSWORD)
    times = []
    for _ in range(trials):
        started = time.perf_counter()
        ph.verify(stored, PASSWORD)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def parallel_hash_rate(threads: int, per_thread: int = 40) -> float:
    """Verifications per second with ``threads`` threads hashing and nothing else: what this
    machine's cores really deliver together (shared caches and memory bandwidth)."""
    ph = hasher()
    stored = ph.hash(PASSWORD)

    def work() -> None:
        for _ in range(per_thread):
            ph.verify(stored, PASSWORD)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return threads * per_thread / (time.perf_counter() - started)


async def _burst(host: str, port: int, attempts: int) -> list[tuple[int, float]]:
    """``attempts`` sign-ins sent at the same moment, one connection each (not retried)."""
    start = asyncio.Event()

    async def one(i: int) -> tuple[int, float]:
        body = json.dumps({"email": f"bench-{i % PEOPLE + 1}@example.test", "password": PASSWORD}).encode()
        request = (
            f"POST /auth/login HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"X-Forwarded-For: 10.78.{i // 250}.{i % 250 + 1}\r\n"  # each attempt from its own address
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode() + body
        reader, writer = await asyncio.open_connection(host, port)
        await start.wait()
        began = time.perf_counter()
        writer.write(request)
        await writer.drain()
        status_line = await reader.readline()
        await reader.read()
        writer.close()
        return int(status_line.split()[1]), time.perf_counter() - began

    tasks = [asyncio.create_task(one(i)) for i in range(attempts)]
    await asyncio.sleep(1.0)  # every connection open before the first request leaves
    start.set()
    return await asyncio.gather(*tasks)


def burst(url: str, attempts: int, pgid: int) -> dict:
    host, port = url.removeprefix("http://").split(":")
    peak = [0, 0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            rss, pss = group_memory(pgid)
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    started = time.perf_counter()
    results = asyncio.run(_burst(host, int(port), attempts))
    drained = time.perf_counter() - started - 1.0
    stop.set()
    sampler.join()
    statuses: dict[str, int] = {}
    for status, _ in results:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    latencies = sorted(seconds for _, seconds in results)
    return {
        "attempts": attempts,
        "statuses": statuses,
        "drained_s": round(drained, 2),
        "p50_ms": round(1000 * latencies[len(latencies) // 2], 1),
        "p95_ms": round(1000 * latencies[int(len(latencies) * 0.95)], 1),
        "max_ms": round(1000 * latencies[-1], 1),
        "peak_rss_mib": round(peak[0] / 2**20, 1),
        "peak_pss_mib": round(peak[1] / 2**20, 1),
    }


def seed() -> str:
    db.drop_database(BENCH_DB)
    db.ensure_roles()
    db.ensure_database(BENCH_DB)
    db.migrate(BENCH_DB)
    stored = hasher().hash(PASSWORD)
    with psycopg.connect(db.role_url(BENCH_DB, "kitsu_owner")) as conn:
        conn.execute(
            "insert into data.users (email, password_hash) select 'bench-' || i ||"
            " '@example.test', %s from generate_series(1, %s) i",
            (stored, PEOPLE),
        )
    return stored


def group_processes(pgid: int) -> list[Path]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                stat = (proc / "stat").read_text()
            except OSError:
                continue
            if int(stat[stat.rindex(")") + 2 :].split()[2]) == pgid:
                found.append(proc)
    return found


def group_cpu(pgid: int) -> float:
    total = 0.0
    for proc in group_processes(pgid):
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / TICKS
    return total


def group_memory(pgid: int) -> tuple[int, int]:
    """(sum of RSS, sum of PSS) in bytes of every process of the group."""
    rss = pss = 0
    for proc in group_processes(pgid):
        try:
            rss += int((proc / "statm").read_text().split()[1]) * PAGE
            for line in (proc / "smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss += int(line.split()[1]) * 1024
        except (OSError, ValueError):
            continue
    return rss, pss


def machine_cpu() -> tuple[float, float]:
    fields = [float(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]
    return sum(fields) - idle, sum(fields)


def hash_totals(url: str) -> tuple[float, float]:
    """(sum, count) of the service's verification times, from /metrics (every worker)."""
    total = count = 0.0
    for line in httpx.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith('auth_password_hash_seconds_sum{operation="verify"}'):
            total = float(line.split()[-1])
        elif line.startswith('auth_password_hash_seconds_count{operation="verify"}'):
            count = float(line.split()[-1])
    return total, count


def run_wrk(
    url: str,
    connections: int,
    duration: int,
    pgid: int,
    threads: int = 1,
    sample_memory: bool = False,
    mode: str = "",
) -> dict:
    peak = [0, 0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            rss, pss = group_memory(pgid)
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], pss)
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    if sample_memory:
        sampler.start()
    busy0, total0 = machine_cpu()
    auth0 = group_cpu(pgid)
    pg0 = cpu_seconds(("postgres",))["postgres"]
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    hash0 = hash_totals(url)
    started = time.monotonic()
    output = subprocess.run(
        [
            "wrk",
            f"-t{threads}",
            f"-c{connections}",
            f"-d{duration}s",
            "--timeout",
            "30s",
            "-s",
            str(HERE / "auth_login.lua"),
            url,
        ],
        env={
            **os.environ,
            "KITSU_BENCH_USERS": str(PEOPLE),
            "KITSU_BENCH_PASSWORD": PASSWORD,
            "KITSU_BENCH_MODE": mode,
        },
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    elapsed = time.monotonic() - started
    stop.set()
    hash1 = hash_totals(url)
    busy1, total1 = machine_cpu()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = json.loads(output.strip().splitlines()[-1])
    figures["ok_per_s"] = figures["statuses"].get("200", 0) / figures["seconds"]
    auth_cores = (group_cpu(pgid) - auth0) / elapsed
    figures["service_hash_ms"] = round(1000 * (hash1[0] - hash0[0]) / max(hash1[1] - hash0[1], 1), 1)
    figures["auth_cpu_ms_per_login"] = round(1000 * auth_cores / max(figures["rps"], 0.001), 1)
    figures["cpu"] = {
        "machine_pct": round(100 * (busy1 - busy0) / max(total1 - total0, 1), 1),
        "auth_cores": round(auth_cores, 2),
        "postgres_cores": round((cpu_seconds(("postgres",))["postgres"] - pg0) / elapsed, 2),
        "wrk_cores": round((after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime) / elapsed, 2),
    }
    if sample_memory:
        figures["peak_rss_mib"] = round(peak[0] / 2**20, 1)
        figures["peak_pss_mib"] = round(peak[1] / 2**20, 1)
    return figures


def flood_scenario(url: str, duration: int, pgid: int) -> dict:
    """Legitimate sign-ins (50 connections) alone, then again while one client floods (50 more
    connections in a second wrk, one address, random emails)."""
    alone = run_wrk(url, 50, duration, pgid)
    flooded: dict = {}
    flooder = threading.Thread(target=lambda: flooded.update(run_wrk(url, 50, duration, pgid, mode="flood")))
    flooder.start()
    with_flood = run_wrk(url, 50, duration, pgid)
    flooder.join()
    return {"alone": alone, "with_flood": with_flood, "flood": flooded}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", default="10,50,200")
    parser.add_argument("--flood", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("AUTH_WORKERS", os.cpu_count() or 2)))
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian package wrk)")
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))

    cores = os.cpu_count() or 1
    one_hash = hash_seconds()
    limit = cores / one_hash
    ceiling = parallel_hash_rate(cores)
    ph = hasher()
    print(
        f"argon2id m={ph.memory_cost} KiB t={ph.time_cost} p={ph.parallelism}: one verification "
        f"{one_hash * 1000:.1f} ms -> hashing limit {cores} cores / {one_hash * 1000:.1f} ms = "
        f"{limit:.0f} logins/s; {cores} threads hashing alone: {ceiling:.0f}/s",
        flush=True,
    )
    seed()
    env = {
        "AUTH_JWT_KEYS": json.dumps({"bench": keys.generate_private_pem()}),
        "AUTH_TRUSTED_PROXIES": "127.0.0.1/32",
    }  # wrk sends each person's X-Forwarded-For
    service = auth_process(BENCH_DB, port=services.free_port(), workers=args.workers, env=env)
    service.start().wait_ready(60)
    assert service.process is not None and service.url
    pgid = service.process.pid
    results = []
    try:
        idle_rss, idle_pss = group_memory(pgid)
        run_wrk(service.url, 10, 3, pgid)  # warm-up: pools, prepared statements
        for connections in (int(c) for c in args.connections.split(",")):
            figures = run_wrk(service.url, connections, args.duration, pgid, sample_memory=True)
            figures.update(connections=connections, pct_of_limit=round(100 * figures["ok_per_s"] / limit, 1))
            results.append(figures)
            print(json.dumps(figures), flush=True)
        abuse = flood_scenario(service.url, args.duration, pgid)
        flood = run_wrk(service.url, args.flood, args.duration, pgid, threads=2, sample_memory=True)
        flood.update(connections=args.flood, pct_of_limit=round(100 * flood["ok_per_s"] / limit, 1))
        print(json.dumps(flood), flush=True)
        healthy = httpx.get(f"{service.url}/health", timeout=5).status_code == 200
        time.sleep(2)
        spike = burst(service.url, args.flood, pgid)
        print(json.dumps(spike), flush=True)
        healthy = healthy and httpx.get(f"{service.url}/health", timeout=5).status_code == 200
    finally:
        service.stop()
        if not args.keep:
            db.drop_database(BENCH_DB)

    RESULTS.mkdir(parents=True, exist_ok=True)
    summary = {
        "cores": cores,
        "hash_ms": round(one_hash * 1000, 2),
        "limit_per_s": round(limit, 1),
        "parallel_hash_per_s": round(ceiling, 1),
        "burst": spike,
        "workers": args.workers,
        "idle_rss_mib": round(idle_rss / 2**20, 1),
        "idle_pss_mib": round(idle_pss / 2**20, 1),
        "runs": results,
        "flood": flood,
        "healthy_after_flood": healthy,
        "email_flood": abuse,
    }
    (RESULTS / "auth.json").write_text(json.dumps(summary, indent=2))

    print(
        f"\nwrk (1 thread; flood 2 threads), {args.duration}s per run, POST /auth/login (every "
        f"login succeeds), auth_service {args.workers} workers; {cores} cores shared by wrk, "
        f"uvicorn and PostgreSQL"
    )
    print(
        f"hashing limit: {cores} cores / {one_hash * 1000:.1f} ms = {limit:.0f} logins/s "
        f"({cores} threads doing nothing but hashing reach {ceiling:.0f}/s = {100 * ceiling / limit:.0f} %)"
    )
    print(
        f"{'conns':>5} {'logins/s':>9} {'% limit':>8} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} "
        f"{'non-200':>8} {'peak RSS':>9} {'machine CPU':>12}  cores auth/postgres/wrk"
        "  hash ms in service  auth CPU ms/login"
    )
    for r in [*results, flood]:
        non_ok = (
            sum(v for k, v in r["statuses"].items() if k != "200")
            + r["errors_timeout"]
            + r["errors_connect"]
            + r["errors_read"]
        )
        cpu = r["cpu"]
        print(
            f"{r['connections']:>5} {r['ok_per_s']:>9.1f} {r['pct_of_limit']:>7.1f}% "
            f"{r['p50_ms']:>8.1f} {r['p95_ms']:>8.1f} {r['p99_ms']:>8.1f} {non_ok:>8} "
            f"{r['peak_rss_mib']:>7.1f}MiB {cpu['machine_pct']:>11.1f}%  "
            f"{cpu['auth_cores']}/{cpu['postgres_cores']}/{cpu['wrk_cores']}"
            f"  {r['service_hash_ms']:>8}  {r['auth_cpu_ms_per_login']:>8}"
        )
    print(
        f"flood statuses: {flood['statuses']}; idle RSS {idle_rss / 2**20:.1f} MiB "
        f"(PSS {idle_pss / 2**20:.1f}), peak RSS {flood['peak_rss_mib']} MiB "
        f"(PSS {flood['peak_pss_mib']}); healthy after flood: {healthy}"
    )
    alone, flooded, flood_run = abuse["alone"], abuse["with_flood"], abuse["flood"]
    print(
        f"email flood (wrk, 50 + 50 connections, {args.duration}s): legitimate {alone['ok_per_s']:.1f} logins/s "
        f"(p95 {alone['p95_ms']:.0f} ms) alone, {flooded['ok_per_s']:.1f}/s (p95 {flooded['p95_ms']:.0f} ms) "
        f"while one address floods: {flood_run['rps']:.0f} req/s answered {flood_run['statuses']}"
    )
    print(
        f"burst of {spike['attempts']} simultaneous attempts (one each, not retried): {spike['statuses']}, "
        f"drained in {spike['drained_s']} s, p50 {spike['p50_ms']} ms, p95 {spike['p95_ms']} ms, "
        f"peak RSS {spike['peak_rss_mib']} MiB (PSS {spike['peak_pss_mib']})"
    )


if __name__ == "__main__":
    main()
