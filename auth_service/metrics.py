"""Prometheus metrics, aggregated over every worker process (prometheus-client multiprocess
mode: ``PROMETHEUS_MULTIPROC_DIR`` is set by auth_service.process before uvicorn starts, and
each scrape reads every process's files)."""

from __future__ import annotations

import os

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

LOGINS = Counter("auth_logins_total", "Sign-in attempts by outcome.", ["outcome"])
THROTTLED = Counter("auth_throttled_total", "Requests refused by a rate limit.", ["limit"])
REFRESHES = Counter("auth_refreshes_total", "Refresh attempts by outcome.", ["outcome"])
REGISTRATIONS = Counter("auth_registrations_total", "Registrations by outcome.", ["outcome"])
HASH_REFUSED = Counter(
    "auth_hash_overload_total", "Requests refused because the hashing queue was full."
)
HASH_SECONDS = Histogram(
    "auth_password_hash_seconds",
    "Time of one password hash or verification.",
    ["operation"],
    buckets=(0.001, 0.005, 0.01, 0.02, 0.03, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0),
)
REQUEST_SECONDS = Histogram(
    "auth_http_request_duration_seconds",
    "HTTP request latency.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)


def exposition() -> tuple[bytes, str]:
    """The text exposition of every process's metrics (or of this one outside multiprocess mode)."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
