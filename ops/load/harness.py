"""The load harness (`make load`, contract §14, issue 14): the audit's four scenarios and the
500-user mix, with locust (headless, loopback only, bounded in users and time) through the real
gateway (nginx) in front of real PostgREST, auth_service and PostgreSQL.

Everything runs on a private PostgreSQL cluster the harness creates in a temporary folder
(ops/embedded_pg.py: this machine's server binaries, a free port, 127.0.0.1 only), so the
database's CPU and connections are this run's alone; it is removed at the end.

Scenarios (docs/seed-production-audit.md "Load testing scenarios"):
  browse      100 users open catalog pages and click titles (anonymous)
  favorites   50 signed-in users with 20 favorites each open their favorites page
  attacker    one address guesses one person's password against 5 auth_service workers
  autoupdate  3 ingest workers with an autoupdate tick every 2 s: no run twice, no duplicate job
  mixed       500 users: browse, search, title page, favorites, continue watching, save
              progress, sign in (1-3 s of thinking between pages)

For each: requests, requests/s, p50/p95/p99 (reads and writes apart), errors, requests per page,
database connections in use (pg_stat_activity sampled every 0.25 s), pool timeouts (504 answers:
PostgREST's PGRST003), CPU per component (process groups, /proc). The table goes to stdout and,
with --readme, into README.md between the "load-results" markers, the audit's targets beside
each figure.

Every locust scenario runs at each layout of ``--replicas`` (default 1,2: one PostgREST and one
auth_service, then two of each behind the same gateway configuration, as PGRST_REPLICAS =
AUTH_REPLICAS of `make run`), against the same seeded database; the table puts the layouts side
by side. The autoupdate scenario (ingest workers, not the web tier) runs once.

Usage: python -m ops.load [--scenarios browse,favorites,attacker,autoupdate,mixed] [--replicas 1,2]
                          [--scale 1.0] [--readme]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from auth_service import keys
from database import build as db
from ops import embedded_pg, launch, services
from ops.bench import catalog
from ops.bench.auth import PASSWORD, hasher
from ops.bench.cpu import cpu_by_tree

LOAD_DB = "kitsu_load"
HERE = Path(__file__).resolve().parent
LOCUST = str(Path(sys.executable).with_name("locust"))
TITLES, PEOPLE, FAVORITES, PROGRESS = 20_000, 600, 20, 10
AUTH_WORKERS = 5
LOGIN_IP_LIMIT = 100_000  # AUTH_LOGIN_IP_LIMIT of the harness's auth_service (see start_web)
README = db.ROOT / "README.md"
MARK_START, MARK_END = "<!-- load-results:start -->", "<!-- load-results:end -->"

EPISODES = "insert into data.episodes (anime_id, number, title)" \
           " select a.id, n, 'Episode ' || n from data.anime a, generate_series(1, 3) n"
PEOPLE_SQL = "insert into data.users (email, password_hash)" \
             " select 'load-' || i || '@example.test', %s from generate_series(1, %s) i"


@dataclass
class Scenario:
    name: str
    user_class: str
    users: int
    spawn_rate: float
    seconds: int      # measured time, after the ramp-up
    ramp: float       # s: users / spawn_rate, left out of the figures
    think: str        # what a user waits between pages


SCENARIOS = {
    "browse": Scenario("catalog browse", "CatalogBrowser", 100, 50, 30, 2, "0.5-1.5 s"),
    "favorites": Scenario("favorites page (20 favorites each)", "FavoritesReader", 50, 10, 30, 6, "0.5-1.5 s"),
    "attacker": Scenario("one attacker against every auth worker", "Attacker", 1, 1, 30, 0, "20 ms"),
    # spawned at 25/s: each new user signs in (one argon2id hash, ~20 ms of a core)
    "mixed": Scenario("500-user mix", "MixedUser", 500, 25, 60, 21, "1-3 s"),
}


@dataclass
class Web:
    """One layout of the web tier: ``replicas`` PostgREST and as many auth_service instances
    (PGRST_REPLICAS = AUTH_REPLICAS of `make run`), balanced by the gateway."""

    replicas: int
    auth_workers: int  # uvicorn workers per auth_service instance
    postgrests: list[services.Service]
    auths: list[services.Service]
    gateway: services.Service

    def services(self) -> list[services.Service]:
        return [self.gateway, *self.auths, *self.postgrests]


@dataclass
class Platform:
    tmp: Path
    cluster: embedded_pg.Cluster
    jwks: str
    private_pem: str
    web: Web | None = None
    extra: list[services.Service] = field(default_factory=list)

    @property
    def gateway(self) -> services.Service:
        assert self.web is not None
        return self.web.gateway

    def groups(self) -> dict[str, int]:
        """The root process of each process group (its CPU is the tree's: workers, backends),
        labelled ``component#n`` for the n-th instance of a component (see ``by_component``)."""
        assert self.web is not None
        postmaster = int((self.cluster.data / "postmaster.pid").read_text().split()[0])
        found = {"postgres": postmaster}
        named = [("nginx", [self.web.gateway]), ("postgrest", self.web.postgrests), ("auth_service", self.web.auths),
                 *((service.name, [service]) for service in self.extra)]
        for name, instances in named:
            for index, service in enumerate(instances):
                assert service.process is not None
                found[f"{name}#{index}"] = service.process.pid
        return found


def by_component(cores: dict[str, float]) -> dict[str, float]:
    """Cores of ``component#n`` labels summed by component (every PostgREST together, ...)."""
    totals: dict[str, float] = {}
    for label, value in cores.items():
        name = label.split("#", 1)[0]
        totals[name] = round(totals.get(name, 0.0) + value, 2)
    return totals


def auth_workers_per_replica(replicas: int) -> int:
    """The audit's 5 auth workers shared out over the instances (rounded up: 2 instances × 3)."""
    return -(-AUTH_WORKERS // replicas)


def seed() -> dict[str, Any]:
    """The load database: 20,000 titles (ops.bench.catalog), 3 episodes each, 600 people with
    20 favorites and 10 progress rows each (real argon2id hashes, so they can sign in)."""
    db.ensure_roles()
    db.ensure_database(LOAD_DB)
    db.migrate(LOAD_DB)
    started = time.monotonic()
    with psycopg.connect(db.role_url(LOAD_DB, "kitsu_owner")) as conn:
        catalog.load(conn, TITLES)
        conn.execute(EPISODES)
        conn.execute(PEOPLE_SQL, (hasher().hash(PASSWORD), PEOPLE))
        conn.execute(catalog.library(TITLES, FAVORITES, PROGRESS))
    with psycopg.connect(db.role_url(LOAD_DB, "kitsu_owner"), autocommit=True) as conn:
        conn.execute("vacuum analyze")
        titles = [str(row[0]) for row in conn.execute("select id from data.anime")]
        names = [n for row in conn.execute("select title, title_en, title_original from data.anime") for n in row if n]
        people = [row[0] for row in conn.execute("select email from data.users order by email")]
    print(f"seeded {len(titles)} titles, {len(people)} people in {time.monotonic() - started:.1f}s", flush=True)
    return {"titles": titles, "titles_total": len(titles), "names": names[:5000], "people": people[1:],
            "victim": people[0], "password": PASSWORD, "favorites_each": FAVORITES}


def start_platform(tmp: Path) -> Platform:
    """The private cluster, seeded; the web tier starts per layout (``start_web``)."""
    cluster = embedded_pg.Cluster(home=tmp / "pg").start()
    os.environ["DATABASE_URL"] = cluster.url
    try:
        data = seed()
    except BaseException:
        cluster.stop()
        raise
    (tmp / "data.json").write_text(json.dumps(data))
    private_pem = keys.generate_private_pem()
    return Platform(tmp, cluster, keys.jwks_json({"load": private_pem}), private_pem)


def start_web(platform: Platform, replicas: int) -> Web:
    """``replicas`` PostgREST (db-pool 20 each) and auth_service instances behind a new gateway,
    as `make run` starts them with PGRST_REPLICAS = AUTH_REPLICAS = ``replicas``. The rate-limit
    counters are cleared first, so each layout's attacker starts from nothing."""
    with psycopg.connect(db.role_url(LOAD_DB, "kitsu_owner"), autocommit=True) as conn:
        conn.execute("delete from data.rate_limits")
    tmp, workers = platform.tmp / f"web-{replicas}", auth_workers_per_replica(replicas)
    tmp.mkdir(exist_ok=True)
    started: list[services.Service] = []
    try:
        postgrests, admins = [], []
        for index in range(replicas):
            admin_port = services.free_port()
            postgrest = services.postgrest(LOAD_DB, jwks_json=platform.jwks, admin_port=admin_port,
                                           log_path=tmp / f"postgrest-{index}.log", name=f"postgrest-{index}")
            started.append(postgrest.start())
            postgrests.append(postgrest)
            admins.append(f"127.0.0.1:{admin_port}")
        auths = []
        for index in range(replicas):
            auth = launch.auth_process(LOAD_DB, port=services.free_port(), workers=workers,
                                       log_path=tmp / f"auth-{index}.log", name=f"auth_service-{index}",
                                       env={"AUTH_JWT_KEYS": json.dumps({"load": platform.private_pem}),
                                            "AUTH_TRUSTED_PROXIES": "127.0.0.1/32", "AUTH_EXPOSE_WORKER": "true",
                                            # every simulated person comes from 127.0.0.1: the per-address
                                            # limit (sign-ins in flight count until they succeed) would
                                            # treat 500 people as one client. The attacker scenario meets
                                            # the per-(address, e-mail) limit, which stays as configured.
                                            "AUTH_LOGIN_IP_LIMIT": str(LOGIN_IP_LIMIT)})
            started.append(auth.start())
            auths.append(auth)
        for service in started:
            service.wait_ready(timeout=60)
        gateway = launch.gateway_process(postgrest=postgrests, postgrest_admin=admins, auth=auths,
                                         run_dir=tmp / "gateway", port=services.free_port(),
                                         log_path=tmp / "gateway.log")
        started.append(gateway.start())
        gateway.wait_ready()
    except BaseException:
        for service in reversed(started):
            service.stop()
        raise
    platform.web = Web(replicas, workers, postgrests, auths, gateway)
    return platform.web


def stop_web(platform: Platform) -> None:
    if platform.web is not None:
        for service in platform.web.services():
            service.stop()
        platform.web = None


def stop_platform(platform: Platform) -> None:
    for service in platform.extra:
        service.stop()
    stop_web(platform)
    platform.cluster.stop()


@contextmanager
def sampled_connections(url: str) -> Iterator[dict[str, Any]]:
    """Sample pg_stat_activity every 0.25 s while the block runs: peak client connections in
    total, active at once, and by role."""
    peak: dict[str, Any] = {"total": 0, "active": 0, "by_role": {}, "samples": 0}
    stop = threading.Event()

    def sample() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            while not stop.is_set():
                rows = conn.execute(
                    "select usename::text, count(*), count(*) filter (where state = 'active') from pg_stat_activity"
                    " where backend_type = 'client backend' and pid <> pg_backend_pid() group by 1").fetchall()
                peak["total"] = max(peak["total"], sum(r[1] for r in rows))
                peak["active"] = max(peak["active"], sum(r[2] for r in rows))
                for role, count, _ in rows:
                    peak["by_role"][role] = max(peak["by_role"].get(role, 0), count)
                peak["samples"] += 1
                stop.wait(0.25)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield peak
    finally:
        stop.set()
        thread.join()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summarise(records: list[list[Any]], since: float, until: float) -> dict[str, Any]:
    """Figures of the requests that started in [since, until)."""
    from ops.load.locustfile import WRITES

    # a sign-in shed with 503 + Retry-After (and retried) is counted apart, not as a write
    window = [r for r in records if since <= r[0] < until and not (r[1] == "sign in" and r[3] == 503)]
    seconds = max(until - since, 1e-9)

    def figures(rows: list[list[Any]]) -> dict[str, Any]:
        times = [r[2] for r in rows]
        failed = [r[3] for r in rows if not r[4]]
        return {"requests": len(rows), "rps": len(rows) / seconds, "errors": len(failed),
                "errors_by_status": {status: failed.count(status) for status in sorted(set(failed))},
                "p50": percentile(times, 50), "p95": percentile(times, 95), "p99": percentile(times, 99),
                "pool_timeouts": sum(1 for r in rows if r[3] == 504)}

    by_name = {name: figures([r for r in window if r[1] == name]) for name in sorted({r[1] for r in window})}
    return {"all": figures(window), "reads": figures([r for r in window if r[1] not in WRITES]),
            "writes": figures([r for r in window if r[1] in WRITES]), "by_name": by_name}


def run_locust(platform: Platform, scenario: Scenario, scale: float) -> dict[str, Any]:
    seconds = max(5, int(scenario.seconds * scale))
    out = platform.tmp / f"{scenario.user_class}.json"
    argv = [LOCUST, "-f", str(HERE / "locustfile.py"), "--headless", "--only-summary", "--loglevel", "WARNING",
            "-u", str(scenario.users), "-r", str(scenario.spawn_rate), "-t", f"{int(scenario.ramp + seconds)}s",
            "--stop-timeout", "5", "--host", platform.gateway.url or "", scenario.user_class]
    env = {**os.environ, "KITSU_LOAD_DATA": str(platform.tmp / "data.json"), "KITSU_LOAD_OUT": str(out)}
    groups = platform.groups()
    with sampled_connections(db.role_url(LOAD_DB)) as connections:
        locust = subprocess.Popen(argv, env=env, cwd=db.ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, start_new_session=True)
        started = time.time()
        groups["locust#0"] = locust.pid
        time.sleep(scenario.ramp)
        cpu_before, measured_from = cpu_by_tree(groups), time.time()
        time.sleep(seconds)
        cpu_after, measured_until = cpu_by_tree(groups), time.time()
        output, _ = locust.communicate(timeout=120)
    if not out.exists():
        raise RuntimeError(f"locust wrote no results ({locust.returncode}):\n{output[-3000:]}")
    recorded = json.loads(out.read_text())
    result = summarise(recorded["requests"], measured_from, measured_until)
    pages = [p for p in recorded["pages"] if measured_from <= p[0] < measured_until]
    result.update(
        scenario=scenario, seconds=measured_until - measured_from, ramp_started=started,
        requests_per_page=(result["all"]["requests"] / len(pages)) if pages else None,
        connections=connections, load=os.getloadavg(),
        # clamped at 0: a backend that exits between the samples leaves the tree before its parent
        # has waited for it (then its CPU is in neither sample)
        cores=by_component({name: max(0.0, (cpu_after[name] - cpu_before[name]) / (measured_until - measured_from))
                            for name in cpu_before}),
        all_requests=recorded["requests"], shed=sum(1 for p in recorded["pages"] if p[1] == "sign in shed"))
    return result


def attacker_figures(result: dict[str, Any]) -> dict[str, Any]:
    """How many guesses reached the password check (401) against the configured limit."""
    from auth_service.settings import Settings

    rows = result["all_requests"]
    limit = Settings.model_fields["login_ip_email_limit"].default
    return {"guesses": len(rows), "hashed": sum(1 for r in rows if r[3] == 401),
            "limited": sum(1 for r in rows if r[3] == 429), "busy": sum(1 for r in rows if r[3] == 503),
            "other": sum(1 for r in rows if r[3] not in (401, 429, 503)), "limit": limit}


def run_autoupdate(tmp: Path, scale: float) -> dict[str, Any]:
    """Scenario 4: three workers, an autoupdate tick every 2 s (interval 0: every tick is due),
    against the offline upstream with its real limits. Afterwards: runs per tick, overlapping
    runs, duplicate tick jobs, and upstream requests against one run's need."""
    dbname = f"{LOAD_DB}_ingest"
    db.ensure_database(dbname)
    db.migrate(dbname)
    upstream = launch.upstream_process(port=services.free_port(), log_path=tmp / "upstream.log").start().wait_ready()
    worker_env = {**launch.upstream_env(upstream), "INGEST_POLL_SECONDS": "0.2", "INGEST_HEARTBEAT_SECONDS": "1",
                  "INGEST_CATALOG_CRON": "0 0 1 1 *", "INGEST_SCHEDULE_CRON": "0 0 1 1 *",
                  "INGEST_EPISODES_CRON": "0 0 1 1 *", "INGEST_SWEEP_CRON": "* * * * * */5"}
    workers: list[services.Service] = []
    seconds = max(10, int(30 * scale))
    try:
        with psycopg.connect(db.role_url(dbname, "kitsu_owner"), autocommit=True) as conn:
            conn.execute("select ingest.trigger_sync('sync_catalog')")
        first = launch.worker_process(dbname, name="first", env=worker_env, log_path=tmp / "worker-first.log")
        first.start().wait_ready()
        with psycopg.connect(db.role_url(dbname, "kitsu_owner"), autocommit=True) as conn:
            deadline = time.monotonic() + 120
            succeeded = "select exists (select from data.sync_runs where status = 'succeeded')"
            while not conn.execute(succeeded).fetchone()[0]:
                assert time.monotonic() < deadline, "first catalog sync did not finish"
                time.sleep(0.5)
            first.stop()
            conn.execute("""select ingest.update_settings('{"autoupdate_interval_minutes": 0}')""")
            since = conn.execute("select coalesce(max(id), 0) from data.sync_runs").fetchone()[0]
            ongoing = len(conn.execute("select ingest.ongoing_shikimori_ids()").fetchone()[0] or [])
        env = {**worker_env, "INGEST_AUTOUPDATE_CRON": "* * * * * */2"}
        for number in range(1, 4):
            workers.append(launch.worker_process(dbname, name=f"auto-{number}", env=env,
                                                 log_path=tmp / f"worker-{number}.log").start().wait_ready())
        time.sleep(seconds)
        for worker in workers:
            worker.stop()
        with psycopg.connect(db.role_url(dbname, "kitsu_owner"), autocommit=True) as conn:
            runs = conn.execute(
                "select tick, status, started_at, finished_at, requests, job_id from data.sync_runs"
                " where id > %s and task = 'autoupdate' order by id", (since,)).fetchall()
            duplicate_ticks = conn.execute(
                "select count(*) from (select args ->> 'timestamp' from procrastinate.procrastinate_jobs"
                " where task_name = 'ingest_tick' and args ->> 'task' = 'autoupdate' group by 1 having count(*) > 1) d"
            ).fetchone()[0]
            ticks = conn.execute("select count(*) from procrastinate.procrastinate_jobs where task_name = 'ingest_tick'"
                                 " and args ->> 'task' = 'autoupdate'").fetchone()[0]
            duplicates_in_catalog = conn.execute(
                "select count(*) - count(distinct shikimori_id) from data.anime").fetchone()[0]
        finished = [r for r in runs if r[3] is not None]
        overlapping = sum(1 for a, b in itertools.pairwise(finished) if b[2] < a[3])
        runs_per_tick = max((sum(1 for r in runs if r[0] == tick) for tick in {r[0] for r in runs}), default=0)
        return {"seconds": seconds, "workers": 3, "ticks": ticks, "duplicate_tick_jobs": duplicate_ticks,
                "runs": len(runs), "succeeded": sum(1 for r in runs if r[1] == "succeeded"),
                "overlapping": overlapping, "max_runs_per_tick": runs_per_tick, "ongoing_titles": ongoing,
                "requests": sum(r[4] for r in runs),
                "requests_per_run": statistics.mean([r[4] for r in finished]) if finished else 0,
                "duplicates_in_catalog": duplicates_in_catalog, "load": os.getloadavg()}
    finally:
        for worker in workers:
            worker.stop()
        upstream.stop()


def fmt(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


TARGETS = {
    "browse": {"reads": "p95 < 250 ms", "errors": "0", "req/page": "1",
               "timeouts": "0 (audit: 100 users > pool 15 → 504s)"},
    "favorites": {"reads": "p95 < 250 ms", "errors": "0", "req/page": "1 (audit: 21)", "timeouts": "0"},
    "mixed": {"reads": "p95 < 250 ms (audit: < 500 ms)", "errors": "0", "req/page": "1 (favorites page too)",
              "timeouts": "0"},
}


COMPONENTS = ("postgres", "postgrest", "auth_service", "nginx", "locust")


def web_budget(replicas: int) -> int:
    """The web tier's share of the connection budget (ops/budget.py) for a layout."""
    from ops import budget

    settings = budget.Settings(pgrst_replicas=replicas, auth_replicas=replicas,
                               auth_workers=auth_workers_per_replica(replicas), ingest_workers=0)
    lines = budget.cost(settings, pooled=False, reserved=0, max_connections=200).lines
    return lines["postgrest"] + lines["auth_service"]


def layout_name(replicas: int) -> str:
    return f"{replicas} replica{'s' if replicas > 1 else ''}"


def scenario_rows(key: str, by_layout: dict[int, dict[str, Any]]) -> list[tuple[str, list[str], str]]:
    """(figure, one value per layout, target) rows of one locust scenario."""
    first = next(iter(by_layout.values()))
    targets = TARGETS.get(key, {})

    def row(figure: str, value: Any, target: str = "–") -> tuple[str, list[str], str]:
        return figure, [value(result) for result in by_layout.values()], target

    def cores(result: dict[str, Any]) -> str:
        c = result["cores"]
        return " / ".join(str(c.get(name, 0.0)) for name in COMPONENTS)

    def connections(result: dict[str, Any]) -> str:
        return f"{result['connections']['total']} ({result['connections']['active']})"

    budgets = " / ".join(str(web_budget(n)) for n in by_layout)
    rows = [row("requests/s", lambda r: fmt(r["all"]["rps"]))]
    if key == "attacker":
        def attack(field: str) -> Any:
            return lambda r: str(attacker_figures(r)[field])

        limit = attacker_figures(first)["limit"]
        rows += [row("guesses", attack("guesses")),
                 row("**reached the password check (401)**", attack("hashed"),
                     f"≤ {limit}: the limit per address and e-mail per minute, across every worker and "
                     "instance (audit: 25 with 5 workers)"),
                 row("limited (429) / busy (503) / other", lambda r: "{limited} / {busy} / {other}".format(
                     **attacker_figures(r)), "other 0"),
                 row("p50 / p95 ms", lambda r: f"{fmt(r['reads']['p50'], 1)} / {fmt(r['reads']['p95'], 1)}")]
    else:
        rows.append(row("reads p50 / p95 / p99 ms", lambda r: " / ".join(
            fmt(r["reads"][q], 1) for q in ("p50", "p95", "p99")), targets.get("reads", "–")))
        if first["writes"]["requests"]:
            rows.append(row("writes p50 / p95 ms (save progress, sign in)", lambda r: " / ".join(
                fmt(r["writes"][q], 1) for q in ("p50", "p95")), "–"))
        def errors(result: dict[str, Any]) -> str:
            by_status = result["all"].get("errors_by_status") or {}
            statuses = ", ".join(f"{n} × {status or 'no answer'}" for status, n in by_status.items())
            return (str(result["all"]["errors"]) + (f" ({statuses})" if statuses else "")
                    + (f" (+{result['shed']} sign-ins shed with 503, retried)" if result["shed"] else ""))

        rows += [row("errors", errors, targets.get("errors", "0")),
                 row("requests per page", lambda r: fmt(r["requests_per_page"] or 0, 2), targets.get("req/page", "1")),
                 row("pool timeouts (504)", lambda r: str(r["all"]["pool_timeouts"]), targets.get("timeouts", "0"))]
    rows += [row("peak DB connections (active)", connections, f"≤ the web budget ({budgets})"),
             row("cores: postgres / postgrest / auth / nginx / locust", cores),
             row("machine load average (1 / 5 min) at the end", lambda r: f"{r['load'][0]:.1f} / {r['load'][1]:.1f}")]
    return rows


def missed_targets(key: str, result: dict[str, Any], replicas: int) -> list[str]:
    """The targets of the issue / the audit a scenario's figures miss at a layout (none: met)."""
    missed = []
    if result["connections"]["total"] > web_budget(replicas):
        missed.append("connections over the budget")
    if result["all"]["pool_timeouts"]:
        missed.append("pool timeouts")
    if key == "attacker":
        attack = attacker_figures(result)
        if attack["hashed"] > attack["limit"]:
            missed.append("attacker past the limit")
        if attack["other"]:
            missed.append("unexpected answers")
        return missed
    if result["all"]["errors"]:
        missed.append("errors")
    if result["reads"]["p95"] >= 250:
        missed.append("read p95 ≥ 250 ms")
    if result["requests_per_page"] is not None and result["requests_per_page"] > 1:
        missed.append("more than one request per page")
    return missed


def table(results: dict[int, dict[str, Any]], autoupdate: dict[str, Any] | None, uptime: str) -> str:
    """The README table: every scenario at each layout side by side, the audit's / the issue's
    target beside each figure."""
    layouts = list(results)
    described = "; ".join(f"**{layout_name(n)}**: {n} PostgREST (db-pool 20 each) + {n} auth_service × "
                          f"{auth_workers_per_replica(n)} workers" for n in layouts)
    lines = [
        f"`make load` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; `uptime` before the run: {uptime}). "
        f"locust {locust_version()} headless, FastHttpUser, through the gateway (nginx, balancing the instances) → "
        f"PostgREST / auth_service → a private PostgreSQL 15 (20,000 titles, {PEOPLE} people with "
        f"{FAVORITES} favorites and {PROGRESS} progress rows each). The same scenarios at each layout "
        f"(`--replicas {','.join(map(str, layouts))}`: PGRST_REPLICAS = AUTH_REPLICAS of `make run`): {described}. "
        f"All of it on the same {os.cpu_count()} shared cores, locust included, so more instances buy no "
        "capacity here (docs/capacity.md says what they buy on their own machines), and other work on the "
        "machine moves the latencies between runs (its load average is beside each). Every simulated person "
        f"signs in from 127.0.0.1, so the per-address sign-in limit is raised to {LOGIN_IP_LIMIT:,} (the "
        "per-address-and-e-mail limit the attacker meets stays at its default). Figures are over the "
        "measured window, after the ramp-up; "
        "cores are CPU seconds per second of each component's process trees (every instance together).",
        "",
        "| scenario | figure | " + " | ".join(layout_name(n) for n in layouts) + " | target |",
        "| --- | --- | " + " | ".join("---" for _ in layouts) + " | --- |",
    ]
    scenarios = [key for key in SCENARIOS if key in next(iter(results.values()), {})]
    for key in scenarios:
        scenario = SCENARIOS[key]
        title = f"**{scenario.name}**, {scenario.users} user{'s' if scenario.users > 1 else ''} ({scenario.think})"
        for index, (figure, values, target) in enumerate(scenario_rows(key, {n: results[n][key] for n in layouts})):
            lines.append(f"| {title if index == 0 else ''} | {figure} | " + " | ".join(values) + f" | {target} |")
    verdicts = []
    for n in layouts:
        missed = {f"{key}: {', '.join(m)}" for key in scenarios if (m := missed_targets(key, results[n][key], n))}
        verdicts.append(f"{layout_name(n)}: " + ("**every target met**" if not missed else "**missed** "
                                                  + "; ".join(sorted(missed))))
    lines += ["", "Targets (checked by the harness): " + "; ".join(verdicts) + "."]
    if auto := autoupdate:
        lines += ["", f"Autoupdate, 3 ingest workers, a tick every 2 s (the workers, not the web replicas: run once), "
                  f"{auto['seconds']} s: {auto['ticks']} tick jobs, **{auto['duplicate_tick_jobs']} duplicate ticks, "
                  f"{auto['runs']} runs ({auto['runs'] - auto['succeeded']} failed), at most "
                  f"{auto['max_runs_per_tick']} per tick, {auto['overlapping']} overlapping**, "
                  f"{auto['requests']} upstream requests ({fmt(auto['requests_per_run'], 1)} per run, "
                  f"{auto['ongoing_titles']} ongoing titles), {auto['duplicates_in_catalog']} duplicate titles. "
                  "Target: one run per tick, no duplicate job (audit: 3 workers → 3× jobs and API calls)."]
    if all("mixed" in results[n] for n in layouts):
        lines += ["", "500-user mix by page (measured window): requests/s, p95 ms, errors at each layout:", "",
                  "| page | " + " | ".join(f"{layout_name(n)}: req/s, p95 ms, errors" for n in layouts) + " |",
                  "| --- | " + " | ".join("---" for _ in layouts) + " |"]
        names = sorted({name for n in layouts for name in results[n]["mixed"]["by_name"]})
        for name in names:
            cells = []
            for n in layouts:
                figures = results[n]["mixed"]["by_name"].get(name)
                cells.append(f"{fmt(figures['rps'], 1)}, {fmt(figures['p95'], 1)}, {figures['errors']}"
                             if figures else "–")
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        peaks = "; ".join(f"{layout_name(n)}: " + ", ".join(
            f"{role} {count}" for role, count in sorted(results[n]["mixed"]["connections"]["by_role"].items()))
            for n in layouts)
        lines += ["", f"Peak connections by role in the mix ({peaks}); max_connections 200 on the private cluster; "
                      "the web budget is PostgREST (pool 20 + 1 LISTEN) × instances + auth_service workers × "
                      "their pool (10) × instances (ops/budget.py)."]
    return "\n".join(lines) + "\n"


def locust_version() -> str:
    return subprocess.run([LOCUST, "--version"], capture_output=True, text=True).stdout.split()[1]


def write_readme(text: str) -> None:
    readme = README.read_text()
    if MARK_START not in readme:
        readme += f"\n## Load and fault results\n\n{MARK_START}\n{MARK_END}\n"
    before, rest = readme.split(MARK_START, 1)
    _, after = rest.split(MARK_END, 1)
    README.write_text(f"{before}{MARK_START}\n{text}{MARK_END}{after}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenarios", default="browse,favorites,attacker,autoupdate,mixed")
    parser.add_argument("--replicas", default="1,2",
                        help="the layouts to run every scenario at: PostgREST and auth_service instances each")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply every measured duration")
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    args = parser.parse_args()
    layouts = [int(n) for n in args.replicas.split(",")]
    if not layouts or min(layouts) < 1:
        parser.error("--replicas: positive numbers, e.g. 1,2")
    if not shutil.which("nginx") and not os.access("/usr/sbin/nginx", os.X_OK):
        raise SystemExit("nginx is not installed (Debian package nginx): the harness drives the gateway")
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"uptime: {uptime}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="kitsu-load-"))
    tmp.chmod(0o755)  # the cluster's server runs as the postgres user (as root) and must enter it
    keys_ = args.scenarios.split(",")
    results: dict[int, dict[str, Any]] = {n: {} for n in layouts}
    autoupdate = None
    platform = start_platform(tmp)
    try:
        if "autoupdate" in keys_:  # the ingest workers: the same whatever the web layout
            print("running autoupdate…", flush=True)
            autoupdate = run_autoupdate(tmp, args.scale)
            print(json.dumps(autoupdate), flush=True)
        for replicas in layouts:
            start_web(platform, replicas)
            try:
                for key in (k for k in keys_ if k != "autoupdate"):
                    print(f"running {key} at {layout_name(replicas)}…", flush=True)
                    result = run_locust(platform, SCENARIOS[key], args.scale)
                    results[replicas][key] = result
                    print(json.dumps({k: v for k, v in result.items()
                                      if k in ("all", "reads", "writes", "requests_per_page", "connections", "cores",
                                               "load")}), flush=True)
            finally:
                stop_web(platform)
    finally:
        stop_platform(platform)
        shutil.rmtree(tmp, ignore_errors=True)
    text = table(results, autoupdate, uptime)
    print("\n" + text)
    if args.readme:
        write_readme(text)
        print(f"written to {README}")


if __name__ == "__main__":
    main()
