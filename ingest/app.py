"""The Procrastinate app of the ingest workers: ``procrastinate --app=ingest.app worker``.

Connects as the ``ingest_worker`` role (INGEST_DATABASE_URL, or that role on KITSU_DB of
DATABASE_URL's server) with search_path = procrastinate, where the frozen schema of
migrations/0020 lives. Nothing connects at import.
"""

from __future__ import annotations

import procrastinate

from ingest import settings

_config = settings.load()

app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(
        conninfo=settings.database_url(),
        kwargs={
            "options": "-c search_path=procrastinate,pg_catalog",
            "application_name": "kitsu-ingest-worker",
        },
        min_size=1,
        max_size=8,
    ),
    # the worker imports the tasks (ingest/tasks.py registers them on this app), so this module
    # need not import them back: no import cycle
    import_paths=["ingest.tasks"],
    worker_defaults={
        "update_heartbeat_interval": _config.heartbeat,
        "stalled_worker_timeout": _config.stalled_seconds,
        "fetch_job_polling_interval": _config.poll_seconds,
        "abort_job_polling_interval": _config.poll_seconds,
    },
)
