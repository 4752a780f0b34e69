"""A real worker's /metrics, /health and /ready (contract §14), scraped over HTTP after it ran a
job: its own counters (runs, upstream requests, 429s, retries) and the database's figures read
at scrape time (queue, sync progress, connections by role and state)."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from tests.ingest.support import control, sync


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
    from tests.ingest.support import execute

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
    from tests.ingest.support import execute

    upstream = start_upstream()
    worker = start_worker(fresh_db, upstream, name="ready")
    execute("postgres", f"alter database {fresh_db} with allow_connections false")
    try:
        assert httpx.get(f"{worker.url}/ready", timeout=10).status_code == 503
        assert httpx.get(f"{worker.url}/health").status_code == 200
        assert value(scrape(worker), "ingest_database_up") == 0
    finally:
        execute("postgres", f"alter database {fresh_db} with allow_connections true")
