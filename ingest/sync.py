"""The sync runners behind the tasks: fetch a page, hand it to SQL, repeat.

Each page is staged by one ``ingest.stage_*`` call that also commits the run's cursor and
counters, so a run resumed by another job (after its worker died) continues after the last
committed page; staging is idempotent, so a page fetched twice changes nothing. The publish
step (staging -> catalog) runs inside ``ingest.finish_run`` only when the whole sync succeeded.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from ingest import clients, settings

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


async def connect() -> psycopg.AsyncConnection[Any]:
    return await psycopg.AsyncConnection.connect(
        settings.database_url(), autocommit=True, application_name="kitsu-ingest"
    )


async def stage(conn: psycopg.AsyncConnection[Any], query: str, params: tuple[Any, ...]) -> None:
    try:
        await conn.execute(query, params)  # type: ignore[arg-type]
    except psycopg.Error as exc:
        if exc.sqlstate == "KI001":
            raise Fenced(str(exc)) from exc
        if exc.sqlstate == "KI002":
            raise Stopped(str(exc)) from exc
        raise


Body = Callable[
    [psycopg.AsyncConnection[Any], Run, settings.Settings, clients.Limiter, dict[str, Any]],
    Awaitable[None],
]


async def catalog(
    conn: psycopg.AsyncConnection[Any],
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
                    conn,
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
    conn: psycopg.AsyncConnection[Any],
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
            await search_episodes(conn, run, kodik, [int(i) for i in ids], run.cursor)
            return
        if run.cursor.get("done"):
            return
        cursor = run.cursor.get("next")
        while True:
            results, next_cursor, total = await kodik.list_page(cursor)
            pages_total = math.ceil(total / clients.KODIK_PAGE_SIZE) if total is not None else None
            new_cursor: dict[str, Any] = {"next": next_cursor} if next_cursor else {"done": True}
            await stage(
                conn,
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
    conn: psycopg.AsyncConnection[Any],
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
            conn,
            "select ingest.stage_episodes(%s, %s, %s, %s, %s, %s)",
            (run.id, run.job_id, Jsonb(new_cursor), Jsonb(results), total, kodik.take_requests()),
        )


async def schedule(
    conn: psycopg.AsyncConnection[Any],
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
            conn,
            "select ingest.stage_schedule(%s, %s, %s, %s)",
            (run.id, run.job_id, Jsonb(items), shikimori.take_requests()),
        )


async def autoupdate(
    conn: psycopg.AsyncConnection[Any],
    run: Run,
    config: settings.Settings,
    limiter: clients.Limiter,
    args: dict[str, Any],
) -> None:
    """Ongoing titles: refresh their catalog rows (GraphQL `animes(ids:)`, 50 at a time), then
    their Kodik players (/search by shikimori_id). Cursor {"phase", "offset"}."""
    cur = await conn.execute("select ingest.ongoing_shikimori_ids()")
    row = await cur.fetchone()
    ids: list[int] = list(row[0]) if row else []
    phase = run.cursor.get("phase", "catalog")
    if phase == "catalog":
        offset = int(run.cursor.get("offset", 0))
        async with clients.Shikimori(config, limiter) as shikimori:
            while offset < len(ids):
                batch = ids[offset : offset + clients.PAGE_SIZE]
                items = await shikimori.animes(1, ids=batch)
                offset += clients.PAGE_SIZE
                await stage(
                    conn,
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
        await search_episodes(conn, run, kodik, ids, run.cursor, phase="episodes")


BODIES: dict[str, Body] = {
    "sync_catalog": catalog,
    "sync_schedule": schedule,
    "sync_episodes": episodes,
    "autoupdate": autoupdate,
}


async def begin(
    conn: psycopg.AsyncConnection[Any], task: str, job_id: int, args: dict[str, Any]
) -> Run | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "select * from ingest.begin_run(%s, %s, %s, %s, %s)",
            (task, job_id, Jsonb(args), args.get("tick"), os.getpid()),
        )
        row = await cur.fetchone()
    if row is None or row["id"] is None:
        return None
    return Run(
        id=row["id"], job_id=job_id, task=task, cursor=row["cursor"] or {}, attempts=row["attempts"]
    )


async def finish(
    conn: psycopg.AsyncConnection[Any],
    run: Run,
    status: str,
    code: str | None = None,
    message: str | None = None,
) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "select status, pages_done, items_fetched, items_inserted, items_updated,"
            " items_unchanged, items_skipped, requests, published"
            " from ingest.finish_run(%s, %s, %s, %s, %s)",
            (run.id, run.job_id, status, code, message),
        )
        return await cur.fetchone()


async def note_requests(conn: psycopg.AsyncConnection[Any], run: Run, limiter: clients.Limiter) -> None:
    if n := limiter.take():
        await conn.execute("select ingest.note_requests(%s, %s, %s)", (run.id, run.job_id, n))


async def run(task: str, job_id: int, args: dict[str, Any]) -> dict[str, Any] | None:
    """Run (or resume) one sync; returns the finished run's summary. Upstream failures are
    recorded in the run and re-raised so the Procrastinate job is marked failed too."""
    config = settings.load()
    async with await connect() as conn, await connect() as limiter_conn:
        current = await begin(conn, task, job_id, args)
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
        limiter = clients.Limiter(limiter_conn)
        try:
            await BODIES[task](conn, current, config, limiter, args)
        except Fenced:
            logger.warning("%s: run %s was taken over by another job; stopping", task, current.id)
            return None
        except Stopped:
            return await finish(
                conn, current, "cancelled", "emergency_stop", "stopped by the emergency stop"
            )
        except asyncio.CancelledError:
            await asyncio.shield(finish(conn, current, "cancelled", "aborted", "job aborted"))
            raise
        except clients.UpstreamError as exc:
            await note_requests(conn, current, limiter)
            await finish(conn, current, "failed", exc.code, str(exc))
            raise
        except Exception as exc:
            await finish(conn, current, "failed", "internal_error", f"{type(exc).__name__}: {exc}")
            raise
        try:
            summary = await finish(conn, current, "succeeded")
        except psycopg.Error as exc:
            if exc.sqlstate == "KI001":
                return None
            await finish(conn, current, "failed", "publish_failed", f"{type(exc).__name__}: {exc}")
            raise
        logger.info("%s: run %s done: %s", task, current.id, summary)
        return summary


async def tick(task: str, timestamp: int) -> str:
    async with await connect() as conn:
        cur = await conn.execute("select ingest.tick(%s, %s)", (task, timestamp))
        row = await cur.fetchone()
    decision = str(row[0]) if row else "?"
    logger.info("tick %s @%s: %s", task, timestamp, decision)
    return decision


async def sweep(seconds: float) -> int:
    async with await connect() as conn:
        cur = await conn.execute("select ingest.sweep_stalled(%s)", (seconds,))
        row = await cur.fetchone()
    swept = int(row[0]) if row else 0
    if swept:
        logger.warning("swept %d stalled job(s)", swept)
    return swept


async def publish() -> dict[str, Any]:
    async with await connect() as conn:
        cur = await conn.execute("select ingest.publish()")
        row = await cur.fetchone()
    return dict(row[0]) if row else {}
