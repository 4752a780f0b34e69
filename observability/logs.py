"""Log lines of every Kitsu process (contract §14): text by default, one JSON object per line
when ``LOG_FORMAT=json`` (compose sets it), with the request id of the request being served.

One owner for three rules, shared by auth_service and the ingest workers:
- the line's shape (time, level, component, logger, message, request_id, and the job for
  Procrastinate's own lines);
- what a well-formed request id is (contract §10: ≤ 64 chars of ``[A-Za-z0-9._-]``; the gateway
  applies the same rule in nginx before the request gets here);
- secrets never reach a line: ``token=``/``password=`` query values are masked in every message,
  and httpx's own request logger (which prints whole URLs) is kept quiet.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

# the request (or the job started by one) that the current code serves; each asyncio task and
# thread has its own value, so concurrent requests never share one
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_WELL_FORMED_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# a query parameter (name=value) or a JSON member ("name": "value") holding a secret; the value
# is replaced, the name kept. Prose ("the token: …") is left alone.
_SECRET_NAMES = r"(?:token|password|refresh_token|access_token)"
_SECRET_VALUE = re.compile(rf'(?i)(\b{_SECRET_NAMES}=)[^&\s"\']+|("{_SECRET_NAMES}"\s*:\s*")[^"]*')
# the fields of an access line, given as `extra` (the path never has its query string)
ACCESS_FIELDS = ("method", "path", "status", "duration_ms")
# loggers that print whole request URLs (the Kodik token rides in its query string)
_QUIET_LOGGERS = ("httpx", "httpcore")


def well_formed_request_id(value: str | None) -> str | None:
    """The value if it is a request id we keep (contract §10), else None."""
    if value and _WELL_FORMED_ID.fullmatch(value):
        return value
    return None


def new_request_id() -> str:
    return uuid.uuid4().hex


def redact(text: str) -> str:
    """The text with the values of secret parameters masked (``token=***``)."""
    return _SECRET_VALUE.sub(lambda m: f"{m.group(1) or m.group(2)}***", text)


class _Redacting(logging.Filter):
    """Masks secrets in the formatted message of every record, before any formatter sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, component, logger, message, request_id, job, error,
    and an access line's method, path, status and duration_ms."""

    def __init__(self, component: str) -> None:
        super().__init__()
        self.component = component

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "component": self.component,
            "logger": record.name,
            "message": record.getMessage(),
        }
        # Procrastinate's own lines carry the job in `extra`; a job deferred by a request
        # carries that request's id in its arguments (ingest.defer)
        job = getattr(record, "job", None)
        job_request_id = None
        if isinstance(job, dict):
            line["job"] = {key: job.get(key) for key in ("id", "task_name", "status", "attempts") if key in job}
            job_request_id = (job.get("task_kwargs") or {}).get("request_id")
        # an access line (auth_service.web.RequestLogMiddleware) names the request in fields
        for key in ACCESS_FIELDS:
            if (value := getattr(record, key, None)) is not None:
                line[key] = value
        if rid := request_id.get() or well_formed_request_id(job_request_id):
            line["request_id"] = rid
        if record.exc_info:
            line["error"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str)


def configure(component: str, log_format: str | None = None, level: int | str = logging.INFO) -> None:
    """Route every log record of this process to stderr in ``LOG_FORMAT`` (text or json).

    Replaces handlers installed earlier (uvicorn's default config, Procrastinate's basicConfig
    comes after and then finds a handler, so it changes nothing)."""
    log_format = (log_format or os.environ.get("LOG_FORMAT", "") or "text").strip().lower()
    if log_format not in ("text", "json"):
        raise ValueError(f"LOG_FORMAT must be text or json, not {log_format!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(_Redacting())
    if log_format == "json":
        handler.setFormatter(JsonFormatter(component))
    else:
        handler.setFormatter(logging.Formatter(f"%(asctime)s %(levelname)s {component} %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)



def adopt_uvicorn_loggers() -> None:
    """uvicorn's loggers (set up by uvicorn before the app loads) write through this process's
    handler too, so their lines take the same shape (uvicorn keeps their levels)."""
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
