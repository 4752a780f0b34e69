"""Start auth_service the same way everywhere: tests, `make run` (ops/run.py) and compose.

    auth_process(dbname, port=8000, workers=2, env={...}).start().wait_ready()

runs ``uvicorn auth_service.main:create_app --factory --workers N`` with
``AUTH_DATABASE_URL`` = the least-privileged ``auth_service`` role on ``dbname`` and a fresh
prometheus-client multiprocess directory. In a container: ``python -m auth_service.process``
reads AUTH_HOST, AUTH_PORT, AUTH_WORKERS and PROMETHEUS_MULTIPROC_DIR from the environment.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from auth_service import keys
from auth_service.settings import Settings
from ops.db import role_url
from ops.services import Service


def uvicorn_argv(*, host: str, port: int, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "auth_service.main:create_app",
        "--factory",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
        # X-Forwarded-For is handled by the app, only from AUTH_TRUSTED_PROXIES
        "--no-proxy-headers",
        "--no-server-header",
        "--no-access-log",
        "--log-level",
        "warning",
        "--timeout-graceful-shutdown",
        "5",
    ]


def fresh_metrics_dir(path: str | os.PathLike[str] | None = None) -> str:
    """prometheus-client's multiprocess directory, emptied (it must be wiped between runs)."""
    if path is None:
        return tempfile.mkdtemp(prefix="kitsu-auth-metrics-")
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):  # only prometheus-client's files
        stale.unlink()
    return str(directory)


def auth_process(
    dbname: str,
    *,
    port: int,
    workers: int = 2,
    env: Mapping[str, str] | None = None,
    log_path: Path | None = None,
    host: str = "127.0.0.1",
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
        "auth_service",
        uvicorn_argv(host=host, port=port, workers=workers),
        full_env,
        ready_url=f"http://{host}:{port}/health",
        url=f"http://{host}:{port}",
        log_path=log_path,
    )


def check_settings(env: Mapping[str, str]) -> Settings:
    """Validate the configuration the workers will read, here and now: a bad setting would
    otherwise only show as uvicorn restarting crashed workers until a readiness timeout."""
    merged = {**os.environ, **env}
    fields = {name[len("AUTH_") :].lower(): value for name, value in merged.items() if name.startswith("AUTH_")}
    return Settings(**{name: value for name, value in fields.items() if name in Settings.model_fields})


def public_jwks_json(env: Mapping[str, str]) -> str:
    """The public JWKS that PostgREST needs (PGRST_JWT_SECRET) for the keys in ``env``."""
    keys_dir = env.get("AUTH_JWT_KEYS_DIR")
    pems = keys.load_private_keys(env.get("AUTH_JWT_KEYS"), Path(keys_dir) if keys_dir else None)
    return keys.jwks_json(pems)


def main() -> None:
    """Container entry point: exec uvicorn with the settings of the environment."""
    check_settings({})
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = fresh_metrics_dir(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
    argv = uvicorn_argv(
        host=os.environ.get("AUTH_HOST", "0.0.0.0"),
        port=int(os.environ.get("AUTH_PORT", "8000")),
        workers=int(os.environ.get("AUTH_WORKERS", "2")),
    )
    os.execv(argv[0], argv)


if __name__ == "__main__":
    main()
