"""How the tools start the platform's processes (`make run`, the tests, the benchmarks): each
returns a not-yet-started ops.services.Service. Containers start the same commands from
compose.yaml; the product never imports this module.

    upstream = upstream_process(port=8765).start().wait_ready()
    workers = [worker_process("kitsu", name=f"worker-{i}").start() for i in range(n)]
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from auth_service import keys
from auth_service.process import check_settings, fresh_metrics_dir, uvicorn_argv
from database.build import ROOT, role_url
from fake_upstream import OFFLINE_KODIK_TOKEN
from gateway.config import EdgeSettings, render
from ops.services import Service, free_port

PROCRASTINATE = str(Path(sys.executable).with_name("procrastinate"))


def worker_env(dbname: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment of a worker on ``dbname`` (connects as ingest_worker)."""
    # PYTHONPATH: the `procrastinate` script's sys.path starts at .venv/bin, not the checkout
    return {
        "KITSU_DB": dbname,
        "INGEST_DATABASE_URL": role_url(dbname, "ingest_worker"),
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
    queues: Sequence[str] = ("sync", "periodic", "mail"),
    metrics_port: int | None = None,
) -> Service:
    """`procrastinate --app=ingest.app worker` on the sync, periodic and mail queues. Its metrics and
    health (ingest/metrics.py) listen on ``metrics_port`` (INGEST_METRICS_PORT of ``env``, else
    a free port): ``url`` is that server, ready when the worker's database answers."""
    concurrency = concurrency or int((env or {}).get("INGEST_CONCURRENCY", 0)) or 4
    env = dict(env or {})
    metrics_port = metrics_port or int(env.get("INGEST_METRICS_PORT") or 0) or free_port()
    env["INGEST_METRICS_PORT"] = str(metrics_port)
    url = f"http://127.0.0.1:{metrics_port}"
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
    return Service(name, argv, worker_env(dbname, env), ready_url=f"{url}/ready", url=url, log_path=log_path)


def upstream_process(
    *,
    port: int | None = None,
    limits_on: bool = True,
    titles: int | None = None,
    catalog: str = "bundled",
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
        "fake_upstream",
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
        token or OFFLINE_KODIK_TOKEN,
        "--catalog",
        catalog,
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
        "KODIK_TOKEN": token or OFFLINE_KODIK_TOKEN,
    }



def auth_process(
    dbname: str,
    *,
    port: int,
    workers: int = 2,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    host: str = "127.0.0.1",
    name: str = "auth_service",
) -> Service:
    """A not-yet-started auth_service with ``workers`` processes; ready_url is ``/health``.

    ``env`` adds or overrides AUTH_* settings (keys: AUTH_JWT_KEYS or AUTH_JWT_KEYS_DIR are
    required). AUTH_DATABASE_URL defaults to the auth_service role on ``dbname``."""
    env = dict(env or {})
    full_env = {
        "AUTH_DATABASE_URL": role_url(dbname, "auth_service"),
        "PROMETHEUS_MULTIPROC_DIR": fresh_metrics_dir(env.pop("PROMETHEUS_MULTIPROC_DIR", None)),
        "AUTH_WORKERS": str(workers),  # the default hashing concurrency shares the cores out
        **env,
    }
    check_settings(full_env)
    return Service(
        name,
        uvicorn_argv(host=host, port=port, workers=workers),
        full_env,
        ready_url=f"http://{host}:{port}/health",
        url=f"http://{host}:{port}",
        log_path=log_path,
    )



def public_jwks_json(env: Mapping[str, str]) -> str:
    """The public JWKS that PostgREST needs (PGRST_JWT_SECRET) for the keys in ``env``."""
    keys_dir = env.get("AUTH_JWT_KEYS_DIR")
    pems = keys.load_private_keys(env.get("AUTH_JWT_KEYS"), Path(keys_dir) if keys_dir else None)
    return keys.jwks_json(pems)


def nginx_binary() -> str | None:
    """Debian's nginx, if installed (it lives in /usr/sbin, often not on a user's PATH)."""
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


def _addresses(services: Service | Sequence[Service]) -> str:
    """host:port of each service, comma-separated (what gateway.config.render takes)."""
    found = [services] if isinstance(services, Service) else list(services)
    assert all(service.url for service in found)
    return ",".join(str(service.url).removeprefix("http://") for service in found)


def gateway_process(
    *,
    postgrest: Service | Sequence[Service],
    postgrest_admin: str | Sequence[str],
    auth: Service | Sequence[Service],
    run_dir: Path,
    port: int | None = None,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    catalog_replica: Service | None = None,
) -> Service:
    """nginx in the foreground with the gateway configuration rendered into ``run_dir``
    (gateway/config.py; the same template compose renders). ``postgrest`` and ``auth`` may be
    several replicas (balanced), ``postgrest_admin`` their admin addresses; ``catalog_replica`` is
    a streaming replica's PostgREST for anonymous catalog reads. ``env`` overrides the edge
    settings (CORS_ALLOWED_ORIGINS, GATEWAY_*). ready_url is the gateway's /health."""
    binary = nginx_binary()
    if binary is None:
        raise FileNotFoundError("nginx is not installed (Debian package nginx)")
    admins = [postgrest_admin] if isinstance(postgrest_admin, str) else list(postgrest_admin)
    edge = EdgeSettings(**{name.lower(): value for name, value in (env or {}).items()})  # over os.environ
    port = port or edge.gateway_port
    run_dir.mkdir(parents=True, exist_ok=True)
    temp = run_dir / "temp"
    cache = run_dir / "cache"
    for path in (temp, cache):
        path.mkdir(exist_ok=True)
    access_log = log_path.with_name(log_path.stem + "-access.log") if log_path else run_dir / "access.log"
    (run_dir / "kitsu.conf").write_text(render(
        edge, listen=f"127.0.0.1:{port}", postgrest=_addresses(postgrest),
        postgrest_admin=",".join(a.removeprefix("http://") for a in admins), auth=_addresses(auth),
        catalog_replica=_addresses(catalog_replica) if catalog_replica else "",
        cache_dir=str(cache), access_log=str(access_log)))
    # as root (CI), nginx's workers would switch to nobody, who cannot enter a private run
    # directory; a local tool keeps them as the caller (compose runs the official image instead)
    user = "user root root;\n" if os.geteuid() == 0 else ""
    (run_dir / "nginx.conf").write_text(
        f"{user}worker_processes 2;\npid {run_dir / 'nginx.pid'};\n"
        f"error_log {run_dir / 'error.log'} warn;\n"
        "events { worker_connections 4096; }\n"
        "http {\n  default_type application/octet-stream;\n"
        + "".join(f"  {kind}_temp_path {temp / kind};\n"
                  for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
        + f"  include {run_dir / 'kitsu.conf'};\n}}\n")
    argv = [binary, "-p", str(run_dir), "-c", str(run_dir / "nginx.conf"), "-e", str(run_dir / "error.log"),
            "-g", "daemon off;"]
    url = f"http://127.0.0.1:{port}"
    return Service("gateway", argv, {}, ready_url=f"{url}/health", url=url, log_path=log_path)


def pgbouncer_process(
    dbname: str,
    *,
    run_dir: Path,
    pool_size: int,
    port: int | None = None,
    log_path: Path | None = None,
) -> Service:
    """Debian's PgBouncer in transaction mode in front of DATABASE_URL's server, for the web roles
    (ops/budget.py): at most ``pool_size`` server connections per role, ``max_db_connections``
    caps their sum. ``url`` is its address (``postgresql://127.0.0.1:<port>``); role_url_on() gives
    a role's URL through it."""
    from database import pgbouncer
    from database.build import admin_url

    binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
    port = port or free_port()
    host, server_port = server_address(admin_url()).rsplit(":", 1)
    ini = pgbouncer.write(run_dir, dbname=dbname, server_host=host, server_port=int(server_port),
                          listen_addr="127.0.0.1", listen_port=port, pool_size=pool_size)
    argv = [binary, str(ini)]
    if os.geteuid() == 0:  # PgBouncer refuses root; it reads its files first, then switches user
        argv[1:1] = ["-u", "postgres"]
    return Service("pgbouncer", argv, {}, ready_url=f"tcp://127.0.0.1:{port}",
                   url=f"postgresql://127.0.0.1:{port}", log_path=log_path)


def role_url_on(address: str, dbname: str, role: str) -> str:
    """``role``'s URL on ``dbname`` at another ``host:port`` than DATABASE_URL's server (PgBouncer,
    a streaming replica), with the same password."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(role_url(dbname, role))
    auth = role + (f":{params['password']}" if params.get("password") else "")
    return f"postgresql://{auth}@{address}/{dbname}"


def server_address(url: str) -> str:
    """host:port of a postgresql:// URL."""
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(url)
    return f"{params.get('host', '127.0.0.1')}:{params.get('port', 5432)}"
