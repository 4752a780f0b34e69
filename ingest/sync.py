"""The sync runners behind the tasks: fetch a page, hand it to SQL, repeat.

Each page is staged by one ``ingest.stage_*`` call that also commits the run's cursor and
counters, so a run resumed by another job (after its worker died) continues after the last
committed page; staging is idempotent, so a page fetched twice changes nothing. The publish
step (staging -> catalog) runs inside ``ingest.finish_run`` only when the whole sync succeeded.

Every SQL call borrows a connection from the process's pool (ingest/pool.py) and gives it back
at once: each call is its own transaction, and no connection is held while an upstream answers.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ingest import clients, metrics, pool, settings
from observability import logs

logger = logging.getLogger("ingest.sync")

SEARCH_BATCH = 50


class Stopped(Exception):
    """The emergency stop is on."""


class Fenced(Exception):
    """Another job took this run over (this one's worker was declared dead)."""


@dataclass
class Run:
    id: int
    job_id: int
    task: str
    cursor: dict[str, Any]
    attempts: int


async def fetch_value(query: str, params: tuple[Any, ...]) -> Any:
    """The first column of the first row of one SQL call, or None without a row."""
    async with pool.connection() as conn:
        cur = await conn.execute(query, params)  # type: ignore[arg-type]
        row = await cur.fetchone()
    return row[0] if row else None


async def fetch_row(query: str, params: tuple[Any, ...]) -> dict[str, Any] | None:
    async with pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(query, params)  # type: ignore[arg-type]
        return await cur.fetchone()


async def stage(query: str, params: tuple[Any, ...]) -> None:
    """One ``ingest.stage_*`` call; the SQL errors of a fenced or stopped run become exceptions."""
    try:
        async with pool.connection() as conn:
            await conn.execute(query, params)  # type: ignore[arg-type]
    except psycopg.Error as exc:
        if exc.sqlstate == "KI001":
            raise Fenced(str(exc)) from exc
        if exc.sqlstate == "KI002":
            raise Stopped(str(exc)) from exc
        raise


Body = Callable[[Run, settings.Settings, clients.Limiter, dict[str, Any]], Awaitable[None]]


async def catalog(
    run: Run,
    config: settings.Settings,
    limiter: clients.Limiter,
    args: dict[str, Any],
) -> None:
    """Every Shikimori title, GraphQL `animes` pages of 50 ordered by id; cursor {"page": n}."""
    page = int(run.cursor.get("page", 1))
    if run.cursor.get("done"):
        return
    async with clients.Shikimori(config, limiter) as shikimori:
        fetch = asyncio.ensure_future(shikimori.animes(page))
        try:
            while True:
                items = await fetch
                more = len(items) >= clients.PAGE_SIZE
                if more and config.prefetch > 0:
                    fetch = asyncio.ensure_future(shikimori.animes(page + 1))
                cursor = {"page": page + 1} if more else {"page": page + 1, "done": True}
                await stage(
                    "select ingest.stage_anime(%s, %s, %s, %s, %s, %s)",
                    (
                        run.id,
                        run.job_id,
                        Jsonb(cursor),
                        Jsonb(items),
                        config.shikimori_base_url,
                        shikimori.take_requests(),
                    ),
                )
                if not more:
                    break
                if config.prefetch <= 0:
                    fetch = asyncio.ensure_future(shikimori.animes(page + 1))
                page += 1
        finally:
            if not fetch.done():
                fetch.cancel()
            await asyncio.gather(fetch, return_exceptions=True)


async def episodes(
    run: Run,
    config: settings.Settings,
    limiter: clients.Limiter,
    args: dict[str, Any],
) -> None:
    """Kodik players: the whole /list in keyset order (cursor {"next": token}), or, with
    `shikimori_ids`, /search for those titles in batches (cursor {"offset": n})."""
    async with clients.Kodik(config, limiter) as kodik:
        ids = args.get("shikimori_ids")
        if ids:
            await search_episodes(run, kodik, [int(i) for i in ids], run.cursor)
            return
        if run.cursor.get("done"):
            return
        cursor = run.cursor.get("next")
        while True:
            results, next_cursor, total = await kodik.list_page(cursor)
            pages_total = math.ceil(total / clients.KODIK_PAGE_SIZE) if total is not None else None
            new_cursor: dict[str, Any] = {"next": next_cursor} if next_cursor else {"done": True}
            await stage(
                "select ingest.stage_episodes(%s, %s, %s, %s, %s, %s)",
                (
                    run.id,
                    run.job_id,
                    Jsonb(new_cursor),
                    Jsonb(results),
                    pages_total,
                    kodik.take_requests(),
                ),
            )
            if not next_cursor:
                return
            cursor = next_cursor


async def search_episodes(
    run: Run,
    kodik: clients.Kodik,
    ids: list[int],
    cursor: dict[str, Any],
    phase: str | None = None,
) -> None:
    offset = int(cursor.get("offset", 0)) if cursor.get("phase") == phase else 0
    total = math.ceil(len(ids) / SEARCH_BATCH)
    while offset < len(ids):
        results = await kodik.search(ids[offset : offset + SEARCH_BATCH])
        offset += SEARCH_BATCH
        new_cursor: dict[str, Any] = {"offset": offset}
        if phase:
            new_cursor["phase"] = phase
        await stage(
            "select ingest.stage_episodes(%s, %s, %s, %s, %s, %s)",
            (run.id, run.job_id, Jsonb(new_cursor), Jsonb(results), total, kodik.take_requests()),
        )


async def schedule(
    run: Run,
    config: settings.Settings,
    limiter: clients.Limiter,
    args: dict[str, Any],
) -> None:
    """The Shikimori calendar: one request."""
    if run.cursor.get("done"):
        return
    async with clients.Shikimori(config, limiter) as shikimori:
        items = await shikimori.calendar()
        await stage(
            "select ingest.stage_schedule(%s, %s, %s, %s)",
            (run.id, run.job_id, Jsonb(items), shikimori.take_requests()),
        )


async def autoupdate(
    run: Run,
    config: settings.Settings,
    limiter: clients.Limiter,
    args: dict[str, Any],
) -> None:
    """Ongoing titles: refresh their catalog rows (GraphQL `animes(ids:)`, 50 at a time), then
    their Kodik players (/search by shikimori_id). Cursor {"phase", "offset"}."""
    ids: list[int] = list(await fetch_value("select ingest.ongoing_shikimori_ids()", ()) or [])
    phase = run.cursor.get("phase", "catalog")
    if phase == "catalog":
        offset = int(run.cursor.get("offset", 0))
        async with clients.Shikimori(config, limiter) as shikimori:
            while offset < len(ids):
                batch = ids[offset : offset + clients.PAGE_SIZE]
                items = await shikimori.animes(1, ids=batch)
                offset += clients.PAGE_SIZE
                await stage(
                    "select ingest.stage_anime(%s, %s, %s, %s, %s, %s)",
                    (
                        run.id,
                        run.job_id,
                        Jsonb({"phase": "catalog", "offset": offset}),
                        Jsonb(items),
                        config.shikimori_base_url,
                        shikimori.take_requests(),
                    ),
                )
        run.cursor = {"phase": "episodes", "offset": 0}
    async with clients.Kodik(config, limiter) as kodik:
        await search_episodes(run, kodik, ids, run.cursor, phase="episodes")


BODIES: dict[str, Body] = {
    "sync_catalog": catalog,
    "sync_schedule": schedule,
    "sync_episodes": episodes,
    "autoupdate": autoupdate,
}


async def begin(task: str, job_id: int, args: dict[str, Any]) -> Run | None:
    row = await fetch_row(
        "select * from ingest.begin_run(%s, %s, %s, %s, %s)",
        (task, job_id, Jsonb(args), args.get("tick"), os.getpid()),
    )
    if row is None or row["id"] is None:
        return None
    return Run(
        id=row["id"], job_id=job_id, task=task, cursor=row["cursor"] or {}, attempts=row["attempts"]
    )


async def finish(
    run: Run, status: str, code: str | None = None, message: str | None = None
) -> dict[str, Any] | None:
    return await fetch_row(
        "select status, pages_done, items_fetched, items_inserted, items_updated,"
        " items_unchanged, items_skipped, requests, published"
        " from ingest.finish_run(%s, %s, %s, %s, %s)",
        (run.id, run.job_id, status, code, message),
    )


async def note_requests(run: Run, limiter: clients.Limiter) -> None:
    if n := limiter.take():
        await fetch_value("select ingest.note_requests(%s, %s, %s)", (run.id, run.job_id, n))


async def run(
    task: str, job_id: int, args: dict[str, Any], request_id: str | None = None
) -> dict[str, Any] | None:
    """Run (or resume) one sync; returns the finished run's summary. Upstream failures are
    recorded in the run and re-raised so the Procrastinate job is marked failed too.
    ``request_id``: of the request that queued the job; every log line of the run names it.
    Each run is counted by outcome and timed (ingest/metrics.py)."""
    started = time.monotonic()
    outcome = "failed"
    try:
        summary = await _run(task, job_id, args, request_id)
        # no summary: the emergency stop was on, or another job took the run over
        outcome = "not_run" if summary is None else str(summary.get("status", "succeeded"))
        return summary
    except asyncio.CancelledError:
        outcome = "cancelled"
        raise
    finally:
        metrics.SYNC_RUNS.labels(task, outcome).inc()
        metrics.SYNC_SECONDS.labels(task).observe(time.monotonic() - started)


async def _run(task: str, job_id: int, args: dict[str, Any], request_id: str | None) -> dict[str, Any] | None:
    logs.request_id.set(logs.well_formed_request_id(request_id))
    current = await begin(task, job_id, args)
    if current is None:
        logger.warning("%s: ingest is stopped (emergency stop); nothing done", task)
        return None
    logger.info(
        "%s: run %s attempt %s from cursor %s",
        task,
        current.id,
        current.attempts,
        current.cursor,
    )
    limiter = clients.Limiter(pool.connection)
    try:
        await BODIES[task](current, settings.loaded, limiter, args)
    except Fenced:
        logger.warning("%s: run %s was taken over by another job; stopping", task, current.id)
        return None
    except Stopped:
        return await finish(current, "cancelled", "emergency_stop", "stopped by the emergency stop")
    except asyncio.CancelledError:
        await asyncio.shield(finish(current, "cancelled", "aborted", "job aborted"))
        raise
    except clients.UpstreamError as exc:
        await note_requests(current, limiter)
        await finish(current, "failed", exc.code, str(exc))
        raise
    except Exception as exc:
        await finish(current, "failed", "internal_error", f"{type(exc).__name__}: {exc}")
        raise
    try:
        summary = await finish(current, "succeeded")
    except psycopg.Error as exc:
        if exc.sqlstate == "KI001":
            return None
        await finish(current, "failed", "publish_failed", f"{type(exc).__name__}: {exc}")
        raise
    logger.info("%s: run %s done: %s", task, current.id, summary)
    return summary


async def tick(task: str, timestamp: int) -> str:
    answer = await fetch_value("select ingest.tick(%s, %s)", (task, timestamp))
    decision = "?" if answer is None else str(answer)
    logger.info("tick %s @%s: %s", task, timestamp, decision)
    return decision


async def sweep(seconds: float) -> int:
    swept = int(await fetch_value("select ingest.sweep_stalled(%s)", (seconds,)) or 0)
    if swept:
        logger.warning("swept %d stalled job(s)", swept)
    return swept


async def refresh_search_words() -> int:
    return int(await fetch_value("select ingest.refresh_search_words()", ()) or 0)


async def publish() -> dict[str, Any]:
    return dict(await fetch_value("select ingest.publish()", ()) or {})
