"""A real worker with LOG_FORMAT=json against the local upstream: every line is one JSON object,
the lines of a sync queued by a request name that request's id, and the Kodik token (which
rides in every Kodik query string) appears in no line, also when httpx would log the URLs."""

from __future__ import annotations

import json

from ingest import operations
from tests.ingest.support import query

TOKEN = "a-secret-partner-token-4711"
REQUEST_ID = "req-from-the-gateway.42"


def test_json_lines_name_the_request_and_never_the_token(fresh_db, start_upstream, start_worker):
    upstream = start_upstream(token=TOKEN)
    worker = start_worker(
        fresh_db,
        upstream,
        name="jsonlog",
        token=TOKEN,
        env={"LOG_FORMAT": "json", "PROCRASTINATE_LOG_LEVEL": "debug"},  # httpx quiet even so
    )
    # what PostgREST does for an admin RPC: request.headers holds the request's headers
    job_id = query(
        fresh_db,
        "select set_config('request.headers', %s, false), ingest.trigger_sync('sync_episodes') as job",
        (json.dumps({"x-request-id": REQUEST_ID}),),
    )[0]["job"]
    assert query(fresh_db, "select args from procrastinate.procrastinate_jobs where id = %s", (job_id,))[0][
        "args"
    ] == {"request_id": REQUEST_ID}
    run = operations.wait_runs(fresh_db, ["sync_episodes"], timeout=120)["sync_episodes"]
    assert run["status"] == "succeeded" and run["requests"] > 0
    worker.stop()

    assert worker.log_path is not None
    text = worker.log_path.read_text()
    assert TOKEN not in text
    # every line is JSON, but for the banner Procrastinate's CLI prints (a print, not a log record)
    banner = "Launching a worker"
    lines = [json.loads(line) for line in text.splitlines() if line.strip() and not line.startswith(banner)]
    assert {"time", "level", "component", "logger", "message"} <= set(lines[-1])
    mine = [line for line in lines if line.get("request_id") == REQUEST_ID]
    # the run's own lines (ingest.sync) and Procrastinate's lines about the job
    assert {line["logger"] for line in mine} >= {"ingest.sync", "procrastinate.worker"}
    assert all(line["component"] == "ingest" for line in lines)
    assert not [line for line in lines if line.get("request_id") not in (None, REQUEST_ID)]
