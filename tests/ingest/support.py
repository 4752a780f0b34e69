"""Helpers for the ingest tests (imported by the test modules and conftest)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx
from psycopg.rows import dict_row

from ingest import operations
from ops import services
from tests.conftest import owner_connect

# fast workers: quick polling, heartbeats and stall detection; no periodic ticks by default
FAST = {
    "INGEST_POLL_SECONDS": "0.2",
    "INGEST_HEARTBEAT_SECONDS": "0.5",
    "INGEST_STALLED_SECONDS": "3",
    "INGEST_SWEEP_CRON": "* * * * * */1",
    "INGEST_CATALOG_CRON": "0 0 1 1 *",
    "INGEST_SCHEDULE_CRON": "0 0 1 1 *",
    "INGEST_EPISODES_CRON": "0 0 1 1 *",
    "INGEST_AUTOUPDATE_CRON": "0 0 1 1 *",
    "INGEST_PURGE_CRON": "0 0 1 1 *",
    "INGEST_SEARCH_WORDS_CRON": "0 0 1 1 *",
    "INGEST_HTTP_TIMEOUT": "2",
    "INGEST_HTTP_RETRIES": "3",
    "INGEST_BACKOFF_SECONDS": "0.1",
    "INGEST_BACKOFF_MAX_SECONDS": "1",
}


def control(upstream: services.Service, path: str, body: Any) -> Any:
    response = httpx.post(f"{upstream.url}/_control/{path}", json=body, timeout=5)
    response.raise_for_status()
    return response.json()


def stats(upstream: services.Service) -> dict[str, Any]:
    return httpx.get(f"{upstream.url}/_control/stats", timeout=5).json()


def query(dbname: str, sql: str, params: Any = None) -> list[dict[str, Any]]:
    with owner_connect(dbname, autocommit=True) as conn:
        conn.row_factory = dict_row  # type: ignore[assignment]
        return conn.execute(sql, params).fetchall()  # type: ignore[arg-type]


def execute(dbname: str, sql: str, params: Any = None) -> None:
    with owner_connect(dbname, autocommit=True) as conn:
        conn.execute(sql, params)  # type: ignore[arg-type]


def last_run_id(dbname: str) -> int:
    return query(dbname, "select coalesce(max(id), 0) as id from data.sync_runs")[0]["id"]


def sync(dbname: str, *tasks: str, timeout: float = 120) -> dict[str, dict[str, Any]]:
    """Trigger tasks as an operator would and wait for their runs."""
    since = last_run_id(dbname)
    for task in tasks:
        assert operations.trigger(dbname, task) is not None, f"{task} already queued"
    return operations.wait_runs(dbname, tasks, since_id=since, timeout=timeout)


def wait_for(predicate: Callable[[], Any], timeout: float = 60, poll: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        if value := predicate():
            return value
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(poll)


CATALOG_SNAPSHOT = """
select a.shikimori_id, a.title, a.title_ru, a.title_en, a.title_original, a.synonyms, a.kind, a.status,
       a.episodes_total, a.episodes_aired, a.score, a.rating, a.year, a.season, a.aired_on, a.released_on,
       a.next_episode_at, a.poster_url, a.description, a.state, a.source, a.content_hash,
       array(select g.genre_id from data.anime_genres g where g.anime_id = a.id order by 1) as genres,
       (select count(*) from data.episodes e where e.anime_id = a.id) as episodes,
       (select count(*) from data.episode_sources s join data.episodes e on e.id = s.episode_id
         where e.anime_id = a.id) as sources
  from data.anime a order by a.shikimori_id
"""


def catalog(dbname: str) -> list[dict[str, Any]]:
    return query(dbname, CATALOG_SNAPSHOT)


def row_versions(dbname: str) -> dict[str, list[Any]]:
    """xmin/ctid of every catalog row: unchanged iff nothing was written."""
    tables = [
        "data.anime",
        "data.genres",
        "data.anime_genres",
        "data.episodes",
        "data.translations",
        "data.episode_sources",
        "data.schedule",
    ]
    return {
        t: [tuple(r.values()) for r in query(dbname, f"select xmin::text, ctid::text from {t} order by ctid")]
        for t in tables
    }
