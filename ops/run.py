"""`make run`: the whole platform in the foreground on this machine, without docker.

Generates .env on first use, checks the connection budget (ops/budget.py: refuses a layout
over it, puts the web logins behind PgBouncer when the direct one does not fit), sets up roles,
database and schema (keeping data), starts PGRST_REPLICAS PostgREST and AUTH_REPLICAS
auth_service instances (plus a PostgREST on READ_REPLICA_URL's streaming replica), the gateway
(nginx, when installed) balancing them, the ingest workers and - unless
real upstream URLs are configured - the bundled offline upstream, runs a first catalog sync when
the catalog is empty, prints one
`ready:` line with the URLs, restarts a process that dies (ops/supervisor.py), and stops
everything it started on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import signal
import sys


def _stopped_before_starting(_signum: int, _frame: object) -> None:
    # a stop while the modules below are imported: nothing has been started yet
    print("stopped", flush=True)
    sys.exit(0)


for _signum in (signal.SIGINT, signal.SIGTERM):
    signal.signal(_signum, _stopped_before_starting)

import os  # noqa: E402 - after the handlers: a stop during these imports is still a clean stop
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import psycopg  # noqa: E402

from database import build as db  # noqa: E402
from ops import budget, embedded_pg, env, services  # noqa: E402
from ops.supervisor import Stop, Supervisor  # noqa: E402

RUN_DIR = Path(os.environ.get("KITSU_RUN_DIR", db.ROOT / "run"))


def log_path(name: str) -> Path:
    (RUN_DIR / "logs").mkdir(parents=True, exist_ok=True, mode=0o700)
    return RUN_DIR / "logs" / f"{name}.log"


def numbered(name: str, index: int, separator: str = "-") -> str:
    """The first instance keeps the plain name (postgrest, api=); the next are postgrest-2, api_2=, ..."""
    return name if index == 0 else f"{name}{separator}{index + 1}"


def main() -> int:
    supervisor = Supervisor()
    supervisor.install_signal_handlers()
    status = 0
    try:
        serve(supervisor)
    except Stop as stop:
        print(f"{stop}: stopping", file=sys.stderr, flush=True)
    except Exception as exc:  # a start that failed: said once, then everything stops
        print(f"could not start: {exc}", file=sys.stderr, flush=True)
        status = 1
    finally:
        supervisor.stop_all()
        print("stopped", flush=True)
    return status


def serve(supervisor: Supervisor) -> None:
    env.load(env.ensure())
    from ingest import operations
    from ops.launch import (
        auth_process,
        gateway_process,
        nginx_binary,
        pgbouncer_process,
        public_jwks_json,
        role_url_on,
        server_address,
        upstream_env,
        upstream_process,
        worker_process,
    )

    database = embedded_pg.resolve()  # DATABASE_URL, the default address, or a private cluster
    supervisor.after_stop.append(database.stop)
    # the connection budget first: a configuration over it is refused before anything starts
    settings = budget.Settings.from_env()
    with psycopg.connect(db.admin_url()) as conn:
        max_connections, reserved = budget.server_limits(conn)
    layout = budget.plan(settings, max_connections=max_connections, reserved=reserved)
    print(layout.describe(), flush=True)
    dbname = db.database_name()
    db.setup(dbname)  # migrations run to their end: a stop that came meanwhile is taken after
    start = supervisor.start

    urls: dict[str, str] = {}
    offline = not os.environ.get("SHIKIMORI_BASE_URL")
    worker_env: dict[str, str] = {}
    if offline:
        # real titles (bangumi-data, `make titles`) when installed, else the bundled made-up ones
        upstream = start(upstream_process(
            port=int(os.environ.get("INGEST_UPSTREAM_PORT", "8765")), catalog="real",
            log_path=log_path("upstream")))
        worker_env = upstream_env(upstream)
        urls["offline_upstream"] = upstream.url or ""

    # one audience for both sides: PostgREST's jwt-aud and the aud auth_service mints
    audience = os.environ.get("JWT_AUDIENCE", "kitsu")
    api_port = int(os.environ.get("PGRST_SERVER_PORT", "3000"))
    admin_port = int(os.environ.get("PGRST_ADMIN_SERVER_PORT", "3001"))
    # over budget directly: the web roles through PgBouncer (transaction mode); workers stay direct
    postgrest_db: dict[str, object] = {}
    auth_env: dict[str, str] = {}
    if layout.pooled:
        pgbouncer = start(pgbouncer_process(
            dbname, run_dir=RUN_DIR / "pgbouncer", pool_size=settings.pgbouncer_pool_size,
            port=int(os.environ.get("PGBOUNCER_PORT") or 0) or None, log_path=log_path("pgbouncer")))
        urls["pgbouncer"] = pgbouncer.url or ""
        pooled = server_address(pgbouncer.url or "")
        postgrest_db = {"db_uri": role_url_on(pooled, dbname, "authenticator"), "transaction_pooler": True}
        auth_env = {"AUTH_DATABASE_URL": role_url_on(pooled, dbname, "auth_service"),
                    "AUTH_DB_PREPARED_STATEMENTS": "false"}

    # replica i (from 0) listens on the configured ports + 2i (3000/3001, 3002/3003, ...)
    postgrests, admins = [], []
    for index in range(settings.pgrst_replicas):
        postgrest = start(services.postgrest(
            dbname, jwks_json=public_jwks_json(os.environ), port=api_port + 2 * index,
            admin_port=admin_port + 2 * index, audience=audience, pool=settings.pgrst_db_pool,
            cors_origins=os.environ.get("PGRST_SERVER_CORS_ALLOWED_ORIGINS") or None, **postgrest_db,
            log_path=log_path(numbered("postgrest", index)), name=numbered("postgrest", index)))
        postgrests.append(postgrest)
        admins.append(f"http://127.0.0.1:{admin_port + 2 * index}")
        urls[numbered("api", index, "_")] = postgrest.url or ""
        urls[numbered("api_admin", index, "_")] = admins[-1]

    # a streaming replica of this server (READ_REPLICA_URL, docs/scaling.md): its own PostgREST
    # serves the gateway's anonymous catalog reads while it lags by at most REPLICA_MAX_LAG seconds
    replica_api = None
    if replica_url := os.environ.get("READ_REPLICA_URL"):
        replica_api = start(services.postgrest(
            dbname, jwks_json=public_jwks_json(os.environ), audience=audience, pool=settings.pgrst_db_pool,
            db_uri=role_url_on(server_address(replica_url), dbname, "authenticator"),
            replica_max_lag=float(os.environ.get("REPLICA_MAX_LAG") or 5),
            log_path=log_path("postgrest-replica"), name="postgrest-replica"))
        urls["api_replica"] = replica_api.url or ""

    # with the gateway in front, auth_service believes X-Forwarded-For from it alone (contract §10)
    gateway_binary = nginx_binary()
    auth_env["AUTH_JWT_AUDIENCE"] = os.environ.get("AUTH_JWT_AUDIENCE", audience)
    if gateway_binary and not os.environ.get("AUTH_TRUSTED_PROXIES"):
        auth_env["AUTH_TRUSTED_PROXIES"] = "127.0.0.1/32"
    auth_port = int(os.environ.get("AUTH_PORT", "8000"))
    auths = []
    for index in range(settings.auth_replicas):  # instance i on AUTH_PORT + i
        auth = start(auth_process(
            dbname, port=auth_port + index, workers=settings.auth_workers,
            env=auth_env, log_path=log_path(numbered("auth_service", index)), name=numbered("auth_service", index)))
        auths.append(auth)
        urls[numbered("auth", index, "_")] = auth.url or ""

    if gateway_binary:
        gateway = start(gateway_process(
            postgrest=postgrests, postgrest_admin=admins, auth=auths, catalog_replica=replica_api,
            run_dir=RUN_DIR / "gateway", log_path=log_path("gateway")))
        urls = {"gateway": gateway.url or "", **urls}  # the one origin comes first
    else:
        print("gateway: nginx is not installed (Debian package nginx); serving the direct ports only",
              flush=True)

    worker_env = {**worker_env, **mail_env(start, urls)}
    # worker N's metrics and health on INGEST_METRICS_BASE_PORT + N (9101, 9102, … by default)
    metrics_base = int(os.environ.get("INGEST_METRICS_BASE_PORT") or 9100)
    for number in range(1, settings.ingest_workers + 1):
        worker = start(worker_process(dbname, name=f"worker-{number}", env=worker_env,
                                      metrics_port=metrics_base + number, log_path=log_path(f"worker-{number}")))
        urls[f"worker_{number}_metrics"] = f"{worker.url}/metrics"

    # Prometheus over everything above, with the alert rules (ops/monitoring.py), when installed
    from ops import monitoring
    if monitoring.prometheus_binary():
        scraped = monitoring.config(auth=[auth.url or ""], postgrest_admin=[urls["api_admin"]],
                                    workers=[url.removesuffix("/metrics") for name, url in urls.items()
                                             if name.endswith("_metrics")])
        prometheus = start(monitoring.prometheus_process(
            scraped, run_dir=RUN_DIR / "prometheus", port=int(os.environ.get("PROMETHEUS_PORT") or 9090),
            log_path=log_path("prometheus")))
        urls["prometheus"] = prometheus.url or ""
    else:
        print("prometheus: not installed (Debian package prometheus); metrics stay at each /metrics", flush=True)

    ready = "ready: " + " ".join(f"{name}={url}" for name, url in urls.items()) + \
        f"  (database: {database.description}; logs in {RUN_DIR / 'logs'}; Ctrl-C stops)"
    pending: dict[str, int] = {}
    if operations.catalog_empty(dbname):
        # with the bundled upstream `ready:` waits for the first sync, so the API is never empty
        # then (the workers stay supervised meanwhile); with a real upstream it runs in the background
        print("first sync: catalog is empty, syncing" + ("" if offline else " in the background"), flush=True)
        supervisor.checkpoint()
        since = operations.latest_run_id(dbname)
        operations.first_sync(dbname, wait=False)
        if offline:
            pending = {"since": since}
    if not pending:
        print(ready, flush=True)

    next_look = [0.0]

    def announce_when_synced() -> None:
        # once a second, not every supervision round: each look is a query on a fresh connection
        if not pending or time.monotonic() < next_look[0]:
            return
        next_look[0] = time.monotonic() + 1.0
        if operations.first_sync_finished(dbname, since_id=pending["since"]):
            pending.clear()
            print(ready, flush=True)

    supervisor.serve(announce_when_synced)


def mail_env(start: Callable[[services.Service], services.Service], urls: dict[str, str]) -> dict[str, str]:
    """Where the workers deliver mail (contract §12): SMTP_HOST when set, else a local sink
    started here (ops/mail_sink.py), which keeps every mail as a .eml file under the run folder
    and logs its link, so the reset and verification flows work without a mail server. The
    links point at PUBLIC_BASE_URL, else at the one origin."""
    env = {"PUBLIC_BASE_URL": os.environ.get("PUBLIC_BASE_URL") or urls.get("gateway") or urls["auth"]}
    if os.environ.get("SMTP_HOST"):
        return env
    port = int(os.environ.get("MAIL_SINK_PORT", "1025"))
    folder = RUN_DIR / "mail"
    start(services.Service("mail", [sys.executable, "-m", "ops.mail_sink", "--port", str(port), "--folder",
                                    str(folder)], {"PYTHONUNBUFFERED": "1"}, log_path=log_path("mail")))
    urls["mail"] = f"smtp://127.0.0.1:{port}"
    print(f"mail: no SMTP_HOST, so mail goes to a local sink: files in {folder}, links in {log_path('mail')}",
          flush=True)
    return {**env, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_STARTTLS": "false",
            "SMTP_USER": "", "SMTP_PASSWORD": ""}


if __name__ == "__main__":
    raise SystemExit(main())
