"""A real worker's /metrics, /health and /ready (contract §14), scraped over HTTP after it ran a
job: its own counters (runs, upstream requests, 429s, retries, mails sent and failed) and the
database's figures read at scrape time (queue, sync progress, mail waiting, connections by role
and state)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from ops import launch, services
from ops.mail_sink import MailSink
from tests.conftest import LOG_DIR
from tests.ingest.support import FAST, control, execute, query, sync, wait_for


def scrape(worker) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{worker.url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples, name: str, **labels: str) -> float | None:
    return samples.get((name, tuple(sorted(labels.items()))))


def test_worker_metrics_after_a_sync(fresh_db, start_upstream, start_worker):
    upstream = start_upstream()
    worker = start_worker(fresh_db, upstream, name="metrics")
    assert httpx.get(f"{worker.url}/health").status_code == 200
    assert httpx.get(f"{worker.url}/ready").json() == {"status": "ok"}

    control(upstream, "faults", [{"target": "shikimori", "status": 429, "count": 1, "retry_after": 0.2}])
    runs = sync(fresh_db, "sync_catalog")
    assert runs["sync_catalog"]["status"] == "succeeded"
    samples = scrape(worker)

    # what the worker did
    assert value(samples, "ingest_sync_runs_total", task="sync_catalog", outcome="succeeded") == 1
    assert value(samples, "ingest_sync_duration_seconds_count", task="sync_catalog") == 1
    # the planted 429, and any the real limit of the upstream gave on a loaded machine
    limited = value(samples, "ingest_upstream_rate_limited_total", source="shikimori")
    assert limited is not None and limited >= 1
    assert value(samples, "ingest_upstream_requests_total", source="shikimori", status="429") == limited
    assert value(samples, "ingest_upstream_requests_total", source="shikimori", status="200") == (
        runs["sync_catalog"]["pages_done"])
    assert value(samples, "ingest_retries_total", source="shikimori", reason="rate_limited") == limited
    # what the database says: the queue, the run's progress, connections by role and state
    assert value(samples, "ingest_database_up") == 1
    assert value(samples, "ingest_queue_jobs", queue="sync", task="sync_catalog", status="succeeded") == 1
    assert value(samples, "ingest_sync_pages_done", task="sync_catalog", status="succeeded") == (
        runs["sync_catalog"]["pages_done"])
    assert value(samples, "ingest_sync_items_fetched", task="sync_catalog", status="succeeded") == 300
    assert value(samples, "ingest_sync_running", task="sync_catalog") == 0
    assert 0 <= value(samples, "ingest_sync_last_success_age_seconds", task="sync_catalog") < 120
    assert value(samples, "kitsu_db_connections", role="ingest_worker", state="idle") >= 1
    assert value(samples, "kitsu_db_connections", role="ingest_worker", state="active") >= 1  # the scrape itself
    assert value(samples, "kitsu_db_max_connections") >= 20


def test_queue_depth_and_age_of_waiting_jobs(fresh_db, start_upstream, start_worker):
    """A job that no worker takes (its queue is not served) shows as depth 1 with a growing age."""
    upstream = start_upstream()
    worker = start_worker(fresh_db, upstream, name="queue")
    execute(fresh_db, "select procrastinate.procrastinate_defer_jobs_v1(array[row('unserved', 'publish', 0,"
                      " null, null, '{}', null)::procrastinate.procrastinate_job_to_defer_v1])")
    execute(fresh_db, "update procrastinate.procrastinate_events set at = at - interval '90 seconds'"
                      " where type = 'deferred'")
    samples = scrape(worker)
    assert value(samples, "ingest_queue_depth", queue="unserved") == 1
    assert 90 <= value(samples, "ingest_queue_oldest_todo_age_seconds", queue="unserved") < 150
    assert value(samples, "ingest_queue_jobs", queue="unserved", task="publish", status="todo") == 1


def test_ready_says_so_when_the_database_is_gone(fresh_db, start_upstream, start_worker):
    """/ready answers 503 when the worker cannot reach its database; /health (live) stays 200."""
    upstream = start_upstream()
    worker = start_worker(fresh_db, upstream, name="ready")
    execute("postgres", f"alter database {fresh_db} with allow_connections false")
    try:
        assert httpx.get(f"{worker.url}/ready", timeout=10).status_code == 503
        assert httpx.get(f"{worker.url}/health").status_code == 200
        assert value(scrape(worker), "ingest_database_up") == 0
    finally:
        execute("postgres", f"alter database {fresh_db} with allow_connections true")


def test_mail_sent_failed_and_queued(fresh_db):
    """Mail on a real worker's /metrics (contract §14): with nothing listening on its SMTP port the
    attempts fail (counted, the mail queued and failing, aging); once a server listens there the
    retried mail is delivered (counted by kind) and nothing waits any more."""
    port = services.free_port()  # nothing listens here yet
    env = {**FAST, "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_STARTTLS": "false", "SMTP_TIMEOUT": "3",
           "PUBLIC_BASE_URL": "https://kitsu.test", "MAIL_RETRY_SECONDS": "0.2", "MAIL_RETRY_MAX_SECONDS": "1"}
    worker = launch.worker_process(fresh_db, name="mail-metrics", env=env, queues=("mail",),
                                   log_path=LOG_DIR / f"worker-{fresh_db}-mail-metrics.log").start()
    try:
        worker.wait_ready()
        samples = scrape(worker)
        for kind in ("password_reset", "email_verification"):  # every kind has its series from the start
            assert value(samples, "ingest_mail_queued", kind=kind) == 0
            assert value(samples, "ingest_mail_oldest_queued_age_seconds", kind=kind) == 0
        execute(fresh_db, "select private.queue_mail(null, 'password_reset', 'metrics@example.test', 'tok')")
        wait_for(lambda: query(fresh_db, "select failures from data.mail_outbox")[0]["failures"] >= 2, timeout=30)
        samples = scrape(worker)
        assert value(samples, "ingest_mail_failed_total", kind="password_reset") >= 2
        assert value(samples, "ingest_mail_sent_total", kind="password_reset") in (None, 0)
        assert value(samples, "ingest_mail_queued", kind="password_reset") == 1
        assert value(samples, "ingest_mail_failing", kind="password_reset") == 1
        assert value(samples, "ingest_mail_oldest_queued_age_seconds", kind="password_reset") > 0
        assert value(samples, "ingest_mail_queued", kind="email_verification") == 0

        sink = MailSink(port).start()
        try:
            execute(fresh_db, "select private.queue_mail(null, 'email_verification', 'metrics@example.test', 't2')")
            sink.wait_for(2)
            wait_for(lambda: not query(fresh_db, "select id from data.mail_outbox where sent_at is null"), timeout=10)
        finally:
            sink.stop()
        samples = scrape(worker)
        assert value(samples, "ingest_mail_sent_total", kind="password_reset") == 1
        assert value(samples, "ingest_mail_sent_total", kind="email_verification") == 1
        assert value(samples, "ingest_mail_failed_total", kind="email_verification") in (None, 0)
        for kind in ("password_reset", "email_verification"):
            assert value(samples, "ingest_mail_queued", kind=kind) == 0
            assert value(samples, "ingest_mail_failing", kind=kind) == 0
            assert value(samples, "ingest_mail_oldest_queued_age_seconds", kind=kind) == 0
    finally:
        worker.stop()
