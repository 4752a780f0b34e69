"""Ingest configuration, read from the environment (every variable is in .env.example).

Cron expressions are read once at import (contract §8): they decide when a periodic tick is
deferred; the database settings (data.ingest_settings) decide whether a tick does any work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

SHIKIMORI_URL = "https://shikimori.one"
KODIK_URL = "https://kodikapi.com"
DEFAULT_USER_AGENT = "Kitsu/1.0 (Kitsu catalog ingest; +https://github.com/kitsu-platform)"


def _float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


def _int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def _str(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def database_url() -> str:
    """INGEST_DATABASE_URL, else the ingest_worker role on KITSU_DB of DATABASE_URL's server."""
    if url := os.environ.get("INGEST_DATABASE_URL", "").strip():
        return url
    from database.build import database_name, role_url

    return role_url(database_name(), "ingest_worker")


@dataclass(frozen=True)
class Settings:
    shikimori_base_url: str
    kodik_base_url: str
    kodik_token: str
    user_agent: str
    connect_timeout: float
    read_timeout: float
    retries: int
    backoff: float
    backoff_max: float
    prefetch: int
    heartbeat: float
    stalled_seconds: float
    poll_seconds: float

def load() -> Settings:
    return Settings(
        shikimori_base_url=_str("SHIKIMORI_BASE_URL", SHIKIMORI_URL).rstrip("/"),
        kodik_base_url=_str("KODIK_BASE_URL", KODIK_URL).rstrip("/"),
        kodik_token=os.environ.get("KODIK_TOKEN", "").strip(),
        user_agent=_str("INGEST_USER_AGENT", DEFAULT_USER_AGENT),
        connect_timeout=_float("INGEST_HTTP_CONNECT_TIMEOUT", 5.0),
        read_timeout=_float("INGEST_HTTP_TIMEOUT", 30.0),
        retries=_int("INGEST_HTTP_RETRIES", 5),
        backoff=_float("INGEST_BACKOFF_SECONDS", 0.5),
        backoff_max=_float("INGEST_BACKOFF_MAX_SECONDS", 30.0),
        prefetch=_int("INGEST_PREFETCH", 1),
        heartbeat=_float("INGEST_HEARTBEAT_SECONDS", 5.0),
        stalled_seconds=_float("INGEST_STALLED_SECONDS", 30.0),
        poll_seconds=_float("INGEST_POLL_SECONDS", 1.0),
    )


# Periodic schedules (croniter; an optional 6th field is seconds), fixed at import.
CRON = {
    "sync_catalog": _str("INGEST_CATALOG_CRON", "*/15 * * * *"),
    "sync_schedule": _str("INGEST_SCHEDULE_CRON", "*/10 * * * *"),
    "sync_episodes": _str("INGEST_EPISODES_CRON", "*/15 * * * *"),
    "autoupdate": _str("INGEST_AUTOUPDATE_CRON", "*/5 * * * *"),
}
SWEEP_CRON = _str("INGEST_SWEEP_CRON", "* * * * * */15")
# finished queue rows older than this are deleted (data.sync_runs keeps the history)
PURGE_CRON = _str("INGEST_PURGE_CRON", "17 3 * * *")
JOB_RETENTION_HOURS = _int("INGEST_JOB_RETENTION_HOURS", 168)
