"""The Procrastinate app of the ingest workers: ``procrastinate --app=ingest.app worker``.

Connects as the ``ingest_worker`` role (INGEST_DATABASE_URL, or that role on KITSU_DB of
DATABASE_URL's server) with search_path = procrastinate, where the frozen schema of
migrations/0020 lives. Nothing connects at import.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import Unpack

import procrastinate
import procrastinate.exceptions
import psycopg
from procrastinate.app import WorkerOptions

from ingest import metrics, pool, settings
from observability import logs

logger = logging.getLogger("ingest.app")


class IngestApp(procrastinate.App):
    """Procrastinate's App, serving the worker's metrics and health (ingest/metrics.py) while it
    runs, surviving a database restart, and closing the sync code's connection pool
    (ingest/pool.py) when the worker stops: the worker's lifetime is the pool's.

    Why the restart loop: Procrastinate stops its worker when a side task fails (the LISTEN
    connection or the heartbeat, both lost when PostgreSQL restarts) and returns as if asked to
    stop. Here only SIGINT/SIGTERM stop the process; any other end of the worker is followed by
    waiting for the database and starting the worker again in the same process (a new worker
    row; the old one's jobs are reclaimed by the stalled-job sweep). tests/faults proves it."""

    async def run_worker_async(self, **kwargs: Unpack[WorkerOptions]) -> None:
        metrics.serve(settings.loaded)
        kwargs["install_signal_handlers"] = False  # ours below: a signal is the only way to stop
        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        current: asyncio.Future[None] | None = None

        def stop() -> None:
            stopping.set()
            if current is not None:
                current.cancel()  # Procrastinate then stops gracefully: running jobs finish

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop)
        try:
            while not stopping.is_set():
                current = asyncio.ensure_future(super().run_worker_async(**kwargs))
                try:
                    await current
                except asyncio.CancelledError:
                    if stopping.is_set():
                        break
                    raise
                except procrastinate.exceptions.ConnectorException as exc:
                    logger.warning("worker could not start or run: %s", exc)
                if stopping.is_set():
                    break
                logger.warning("worker stopped without a stop signal (lost its database?); "
                               "starting it again once the database answers")
                await _database_answers(stopping)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            await pool.close()


async def _database_answers(stopping: asyncio.Event) -> None:
    """Return once a connection succeeds (or a stop is asked), trying every second."""
    while not stopping.is_set():
        try:
            connection = await psycopg.AsyncConnection.connect(settings.loaded.database_conninfo(), connect_timeout=3)
            await connection.close()
            return
        except psycopg.Error:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), 1.0)


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
