"""Prometheus metrics of an ingest worker (contract §14), served on ``INGEST_METRICS_PORT``
(default 9100 + ``INGEST_WORKER_INDEX``) at ``/metrics``, with ``/health`` (the process answers)
and ``/ready`` (its database answers) beside it.

Two kinds of figures:
- what this process did, counted as it happens: sync runs by task and outcome and their
  duration, upstream requests by source and status, 429s, retries, mails delivered and failed
  delivery attempts by kind;
- what the database knows, read at scrape time (one short connection per scrape, as
  ``ingest_worker``) from ``ingest.queue_metrics()``, ``ingest.sync_progress()`` and
  ``ingest.mail_metrics()`` and ``ingest.database_metrics()`` (sql/ingest/metrics.sql, the documented
  view of the database's own figures): jobs by task and status, queue depth and age, the progress
  of each sync, the mails waiting to be delivered (those failing among them, the oldest's age), the
  database's connections by role and state, replica lag and, when ``pg_stat_statements`` is
  installed, the slowest statements. Every worker exports the same database figures; queries
  and alerts take ``max`` over instances.

The server is prometheus-client's own (a daemon thread); a port already taken is logged and
the worker goes on without metrics rather than not working at all.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import psycopg
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.registry import Collector

from ingest import settings

logger = logging.getLogger("ingest.metrics")

SYNC_RUNS = Counter("ingest_sync_runs_total", "Sync runs finished by this worker, by task and outcome.",
                    ["task", "outcome"])
SYNC_SECONDS = Histogram("ingest_sync_duration_seconds", "Duration of one sync run in this worker.", ["task"],
                         buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800))
UPSTREAM_REQUESTS = Counter("ingest_upstream_requests_total", "Upstream HTTP attempts by source and status "
                            "(status 'error' when no answer came: timeout or connection error).",
                            ["source", "status"])
UPSTREAM_RATE_LIMITED = Counter("ingest_upstream_rate_limited_total", "Upstream answers HTTP 429, by source.",
                                ["source"])
RETRIES = Counter("ingest_retries_total", "Upstream attempts retried after a backoff, by source and reason.",
                  ["source", "reason"])
MAIL_SENT = Counter("ingest_mail_sent_total", "Mails this worker delivered (the SMTP server accepted them), by kind.",
                    ["kind"])
MAIL_FAILED = Counter("ingest_mail_failed_total", "Delivery attempts of this worker that failed (each is retried), "
                      "by kind.", ["kind"])
SCRAPE_ERRORS = Counter("ingest_metrics_scrape_errors_total", "Scrapes whose database figures could not be read.")

CONNECT_TIMEOUT = 3  # s: a scrape never hangs on a database that does not answer


def _gauge(name: str, help_text: str, labels: list[str]) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, labels=labels)


class DatabaseCollector(Collector):
    """The database's figures, read at each scrape (see the module docstring)."""

    def __init__(self, conninfo: str) -> None:
        self.conninfo = conninfo

    def describe(self) -> list[Metric]:
        return []  # collected at scrape time only: registering must not connect

    def collect(self) -> Iterator[Metric]:
        try:
            rows = self._read()
        except psycopg.Error as exc:
            SCRAPE_ERRORS.inc()
            logger.warning("metrics: database figures unavailable: %s", exc)
            up = _gauge("ingest_database_up", "1 when this scrape could read the database's figures.", [])
            up.add_metric([], 0)
            yield up
            return
        yield from rows

    def _read(self) -> list[Metric]:
        jobs = _gauge("ingest_queue_jobs", "Procrastinate jobs by queue, task and status.", ["queue", "task", "status"])
        oldest = _gauge("ingest_queue_oldest_todo_age_seconds",
                        "Age of the oldest job waiting to start, by queue (0 when none waits).", ["queue"])
        depth = _gauge("ingest_queue_depth", "Jobs waiting to start (status todo), by queue.", ["queue"])
        progress = {
            field: _gauge(f"ingest_sync_{field}", f"{field.replace('_', ' ')} of the latest run of each sync task.",
                          ["task", "status"])
            for field in ("pages_done", "pages_total", "items_fetched", "requests")
        }
        running = _gauge("ingest_sync_running", "1 while a run of the task is unfinished.", ["task"])
        seconds_since = _gauge("ingest_sync_last_success_age_seconds",
                               "Seconds since the task last finished successfully.", ["task"])
        connections = _gauge("kitsu_db_connections", "Database connections by role and state (pg_stat_activity).",
                             ["role", "state"])
        max_connections = _gauge("kitsu_db_max_connections", "The server's max_connections.", [])
        lag = _gauge("kitsu_db_replica_replay_lag_seconds",
                     "Replay lag of each streaming replica (pg_stat_replication, on the primary).", ["replica"])
        statements = _gauge("kitsu_db_statement_mean_seconds",
                            "Mean time of the slowest statements (pg_stat_statements, when installed).",
                            ["queryid", "role"])
        calls = _gauge("kitsu_db_statement_calls", "Calls of the same statements.", ["queryid", "role"])
        mail_queued = _gauge("ingest_mail_queued", "Mails of the outbox not delivered yet, by kind.", ["kind"])
        mail_failing = _gauge("ingest_mail_failing", "Of those, the mails whose attempts so far all failed, by kind.",
                              ["kind"])
        mail_age = _gauge("ingest_mail_oldest_queued_age_seconds",
                          "Age of the oldest mail not delivered yet, by kind (0 when none waits).", ["kind"])
        up = _gauge("ingest_database_up", "1 when this scrape could read the database's figures.", [])
        with psycopg.connect(self.conninfo, connect_timeout=CONNECT_TIMEOUT, autocommit=True,
                             application_name="kitsu-ingest-metrics") as conn:
            for queue, task, status, count, age in conn.execute("select * from ingest.queue_metrics()"):
                if task is None:  # the queue's own row: its depth and oldest waiting job
                    depth.add_metric([queue], count)
                    oldest.add_metric([queue], age or 0)
                else:
                    jobs.add_metric([queue, task, status], count)
            for row in conn.execute("select * from ingest.sync_progress()").fetchall():
                task, status, values, is_running, success_age = row[0], row[1], row[2:6], row[6], row[7]
                for gauge, value in zip(progress.values(), values, strict=True):
                    if value is not None:
                        gauge.add_metric([task, status], value)
                running.add_metric([task], 1 if is_running else 0)
                if success_age is not None:
                    seconds_since.add_metric([task], success_age)
            for kind, queued, failing, age in conn.execute("select * from ingest.mail_metrics()"):
                mail_queued.add_metric([kind], queued)
                mail_failing.add_metric([kind], failing)
                mail_age.add_metric([kind], age)
            for kind, name, state, value in conn.execute("select * from ingest.database_metrics()"):
                if kind == "connections":
                    connections.add_metric([name, state], value)
                elif kind == "max_connections":
                    max_connections.add_metric([], value)
                elif kind == "replica_lag":
                    lag.add_metric([name], value)
                elif kind == "statement_mean_seconds":
                    statements.add_metric([name, state], value)
                elif kind == "statement_calls":
                    calls.add_metric([name, state], value)
        up.add_metric([], 1)
        return [jobs, depth, oldest, *progress.values(), running, seconds_since, mail_queued, mail_failing, mail_age,
                connections, max_connections, lag, statements, calls, up]


def _ready(conninfo: str) -> bool:
    try:
        with psycopg.connect(conninfo, connect_timeout=CONNECT_TIMEOUT, application_name="kitsu-ingest-ready") as conn:
            conn.execute("select 1")
        return True
    except psycopg.Error:
        return False


def _handler(conninfo: str) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._answer(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
            elif path == "/health":  # live: this process's HTTP thread answers
                self._answer(200, b'{"status":"ok"}', "application/json")
            elif path == "/ready":  # ready: and its database answers
                ok = _ready(conninfo)
                self._answer(200 if ok else 503, b'{"status":"ok"}' if ok else b'{"status":"database_unavailable"}',
                             "application/json")
            else:
                self._answer(404, b'{"status":"not_found"}', "application/json")

        def _answer(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # scrapes are not log lines
            return

    return Handler


_server: ThreadingHTTPServer | None = None


def serve(config: settings.Settings) -> ThreadingHTTPServer | None:
    """Start the metrics server once per process (a daemon thread); None when its port is taken."""
    global _server
    if _server is not None:
        return _server
    conninfo = config.database_conninfo()
    REGISTRY.register(DatabaseCollector(conninfo))
    try:
        server = ThreadingHTTPServer((config.metrics_host, config.metrics_port()), _handler(conninfo))
    except OSError as exc:
        logger.warning("metrics: cannot listen on %s:%s (%s); this worker runs without /metrics",
                       config.metrics_host, config.metrics_port(), exc)
        return None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="kitsu-metrics", daemon=True).start()
    logger.info("metrics on http://%s:%s/metrics", config.metrics_host, server.server_address[1])
    _server = server
    return server
