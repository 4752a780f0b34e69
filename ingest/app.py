"""The Procrastinate app of the ingest workers: ``procrastinate --app=ingest.app worker``.

Connects as the ``ingest_worker`` role (INGEST_DATABASE_URL, or that role on KITSU_DB of
DATABASE_URL's server) with search_path = procrastinate, where the frozen schema of
migrations/0020 lives. Nothing connects at import.
"""

from __future__ import annotations

import os
from typing import Unpack

import procrastinate
from procrastinate.app import WorkerOptions

from ingest import metrics, pool, settings
from observability import logs


class IngestApp(procrastinate.App):
    """Procrastinate's App, serving the worker's metrics and health (ingest/metrics.py) while it
    runs, and closing the sync code's connection pool (ingest/pool.py) when the worker stops:
    the worker's lifetime is the pool's."""

    async def run_worker_async(self, **kwargs: Unpack[WorkerOptions]) -> None:
        metrics.serve(settings.loaded)
        try:
            await super().run_worker_async(**kwargs)
        finally:
            await pool.close()


# LOG_FORMAT set (compose sets json): this process's lines take observability/logs.py's shape.
# At import because `procrastinate --app=ingest.app …` imports the app while parsing its
# arguments, before its own logging.basicConfig, which then finds this handler and adds none.
# Unset, Procrastinate's own text lines stay (and --log-level with them).
if os.environ.get("LOG_FORMAT", "").strip():
    logs.configure("ingest", level=os.environ.get("PROCRASTINATE_LOG_LEVEL", "info").upper())

# Procrastinate's own connections per worker process (the job fetches, LISTEN, heartbeats);
# with ingest/pool.py's MAX_CONNECTIONS, what one worker counts in the connection budget (ops/budget.py)
PROCRASTINATE_POOL_MAX = 8

app = IngestApp(
    connector=procrastinate.PsycopgConnector(
        conninfo=settings.loaded.database_conninfo(),
        kwargs={
            "options": "-c search_path=procrastinate,pg_catalog",
            "application_name": "kitsu-ingest-worker",
        },
        min_size=1,
        max_size=PROCRASTINATE_POOL_MAX,
    ),
    # the worker imports the tasks (ingest/tasks.py registers them on this app), so this module
    # need not import them back: no import cycle
    import_paths=["ingest.tasks"],
    worker_defaults={
        "update_heartbeat_interval": settings.loaded.heartbeat,
        "stalled_worker_timeout": settings.loaded.stalled_seconds,
        "fetch_job_polling_interval": settings.loaded.poll_seconds,
        "abort_job_polling_interval": settings.loaded.poll_seconds,
    },
)
