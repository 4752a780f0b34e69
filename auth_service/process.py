"""Start auth_service the same way everywhere: ``uvicorn auth_service.main:create_app --factory
--workers N`` with a fresh prometheus-client multiprocess directory and settings validated
before the workers start. In a container: ``python -m auth_service.process`` reads AUTH_HOST,
AUTH_PORT, AUTH_WORKERS and PROMETHEUS_MULTIPROC_DIR from the environment; `make run` and the
tests start it through ops/launch.py.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from auth_service.settings import Settings


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


def check_settings(env: Mapping[str, str]) -> Settings:
    """Validate the configuration the workers will read, here and now: a bad setting would
    otherwise only show as uvicorn restarting crashed workers until a readiness timeout."""
    merged = {**os.environ, **env}
    fields = {name[len("AUTH_") :].lower(): value for name, value in merged.items() if name.startswith("AUTH_")}
    if "LOG_FORMAT" in merged:  # the one setting without the AUTH_ prefix
        fields["log_format"] = merged["LOG_FORMAT"]
    return Settings.model_validate({name: value for name, value in fields.items() if name in Settings.model_fields})


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
