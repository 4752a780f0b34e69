"""`make run`: the whole platform in the foreground on this machine, without docker.

Generates .env on first use, sets up roles, database and schema (keeping data), starts
PostgREST, auth_service, the ingest workers and - unless real upstream URLs are configured - the
bundled offline upstream, runs a first catalog sync when the catalog is empty, prints one
`ready:` line with the URLs, and stops everything it started on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from ops import db, env, services

RUN_DIR = Path(os.environ.get("KITSU_RUN_DIR", db.ROOT / "run"))


def log_path(name: str) -> Path:
    (RUN_DIR / "logs").mkdir(parents=True, exist_ok=True)
    return RUN_DIR / "logs" / f"{name}.log"


def main() -> int:
    env.load(env.ensure())
    from auth_service.process import auth_process, public_jwks_json
    from ingest import process as ingest

    dbname = db.database_name()
    db.setup(dbname)

    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    started: list[services.Service] = []

    def start(service: services.Service) -> services.Service:
        started.append(service.start())
        return service.wait_ready(timeout=60)

    try:
        urls: dict[str, str] = {}
        offline = not os.environ.get("SHIKIMORI_BASE_URL")
        worker_env: dict[str, str] = {}
        if offline:
            upstream = start(ingest.upstream_process(
                port=int(os.environ.get("INGEST_UPSTREAM_PORT", "8765")), log_path=log_path("upstream")))
            worker_env = ingest.upstream_env(upstream)
            urls["offline_upstream"] = upstream.url or ""

        # one audience for both sides: PostgREST's jwt-aud and the aud auth_service mints
        audience = os.environ.get("JWT_AUDIENCE", "kitsu")
        api_port = int(os.environ.get("PGRST_SERVER_PORT", "3000"))
        admin_port = int(os.environ.get("PGRST_ADMIN_SERVER_PORT", "3001"))
        postgrest = start(services.postgrest(
            dbname, jwks_json=public_jwks_json(os.environ), port=api_port, admin_port=admin_port,
            audience=audience,
            cors_origins=os.environ.get("PGRST_SERVER_CORS_ALLOWED_ORIGINS") or None,
            log_path=log_path("postgrest")))
        urls["api"] = postgrest.url or ""
        urls["api_admin"] = f"http://127.0.0.1:{admin_port}"

        auth = start(auth_process(
            dbname, port=int(os.environ.get("AUTH_PORT", "8000")),
            workers=int(os.environ.get("AUTH_WORKERS", "2")),
            env={"AUTH_JWT_AUDIENCE": os.environ.get("AUTH_JWT_AUDIENCE", audience)},
            log_path=log_path("auth_service")))
        urls["auth"] = auth.url or ""

        for number in range(1, int(os.environ.get("INGEST_WORKERS", "1")) + 1):
            start(ingest.worker_process(dbname, name=f"worker-{number}", env=worker_env,
                                        log_path=log_path(f"worker-{number}")))

        if ingest.catalog_empty(dbname):
            # with the bundled upstream the first sync finishes before `ready:`, so the API is never
            # empty then; with a real upstream it continues in the background
            print("first sync: catalog is empty, syncing" + ("" if offline else " in the background"), flush=True)
            ingest.first_sync(dbname, wait=offline)

        print("ready: " + " ".join(f"{name}={url}" for name, url in urls.items())
              + f"  (logs in {RUN_DIR / 'logs'}; Ctrl-C stops)", flush=True)
        while not stop.wait(1.0):
            for service in started:
                if service.process is not None and service.process.poll() is not None:
                    print(f"{service.name} exited with {service.process.returncode}; stopping", file=sys.stderr)
                    stop.set()
    finally:
        for service in reversed(started):
            service.stop()
        print("stopped", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
