"""observability/logs.py on its own (pure): the line's shape, what a request id is, and that
secrets are masked whatever the format. Real processes writing these lines: tests/ingest/test_logs.py
and the auth_service log tests."""

from __future__ import annotations

import io
import json
import logging

import pytest

from ingest.clients import UpstreamError
from observability import logs

KODIK_NEXT = "https://kodikapi.com/list?token=s3cret-value&next=abc&limit=100"


@pytest.fixture
def captured(request):
    """configure() in the given format, its handler's stream swapped for a buffer; restored after."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)

    def use(log_format: str) -> io.StringIO:
        logs.configure("test", log_format)
        buffer = io.StringIO()
        root.handlers[0].setStream(buffer)  # type: ignore[attr-defined]
        return buffer

    yield use
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def test_secret_query_values_are_masked():
    assert logs.redact(KODIK_NEXT) == "https://kodikapi.com/list?token=***&next=abc&limit=100"
    assert logs.redact('{"password": "hunter2", "email": "a@b"}') == '{"password": "***", "email": "a@b"}'
    assert logs.redact("nothing secret here") == "nothing secret here"


def test_an_upstream_error_never_carries_the_token():
    # its message is logged and stored in data.sync_runs.error, which admins read
    assert "s3cret-value" not in str(UpstreamError("bad_response", f"kodik next_page has no cursor: {KODIK_NEXT}"))


@pytest.mark.parametrize("value, kept", [
    ("req-1.a_B", True), ("x" * 64, True), ("x" * 65, False), ("", False), (None, False),
    ("has space", False), ("nul\x00", False), ("ünïcode", False),
])
def test_what_a_request_id_is(value, kept):
    assert (logs.well_formed_request_id(value) is not None) is kept


def test_json_lines_carry_the_request_id_and_mask_secrets(captured):
    buffer = captured("json")
    token = logs.request_id.set("req-7")
    try:
        logging.getLogger("httpx").info("HTTP Request: GET %s", KODIK_NEXT)  # quiet: below WARNING
        logging.getLogger("ingest.clients").warning("retrying %s", KODIK_NEXT)
    finally:
        logs.request_id.reset(token)
    logging.getLogger("ingest.sync").info("no request here")
    first, second = (json.loads(line) for line in buffer.getvalue().splitlines())
    assert first["request_id"] == "req-7" and first["level"] == "warning" and first["component"] == "test"
    assert "s3cret-value" not in first["message"] and "token=***" in first["message"]
    assert "request_id" not in second and second["logger"] == "ingest.sync"


def test_procrastinate_lines_name_the_job_and_the_request_that_queued_it(captured):
    buffer = captured("json")
    job = {"id": 5, "task_name": "sync_catalog", "task_kwargs": {"request_id": "req-9"}, "queue": "sync"}
    logging.getLogger("procrastinate.worker").info("Starting job", extra={"job": job})
    line = json.loads(buffer.getvalue())
    assert line["request_id"] == "req-9" and line["job"] == {"id": 5, "task_name": "sync_catalog"}


def test_text_lines_are_masked_too(captured):
    buffer = captured("text")
    logging.getLogger("ingest.clients").warning("GET %s", KODIK_NEXT)
    assert "s3cret-value" not in buffer.getvalue() and "token=***" in buffer.getvalue()


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        logs.configure("test", "yaml")


def test_an_access_line_names_method_path_status_and_duration(captured):
    buffer = captured("json")
    token = logs.request_id.set("req-3")
    try:
        fields = {"method": "POST", "path": "/auth/login", "status": 401, "duration_ms": 6.5}
        logging.getLogger("auth_service.access").info("POST /auth/login 401 6.5ms", extra=fields)
    finally:
        logs.request_id.reset(token)
    line = json.loads(buffer.getvalue())
    assert {key: line[key] for key in fields} == fields and line["request_id"] == "req-3"
