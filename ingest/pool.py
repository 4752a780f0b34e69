"""The worker process's pool of ``ingest_worker`` connections, for the SQL calls of ingest/sync.py.

Why a pool: one small pool per process, instead of a fresh connection per run, tick or sweep,
bounds the connections a worker holds (however many jobs run at once) and spares each step the
cost of connecting. Callers borrow a connection for one SQL call and give it back before the
next upstream request, so a sync never holds a connection while it waits on HTTP, and no caller
holds one while it waits for another: a pool smaller than the worker's concurrency cannot
deadlock, it only queues.

Connections come back clean: they are autocommit, so each call is its own transaction, and the
pool rolls back one returned inside a transaction and replaces a broken one. Nothing in ingest
sets session state (the SQL functions scope their search_path with ``set search_path`` in their
definition; publish's advisory lock is transaction-scoped), so no reset is needed; psycopg's
automatic prepared statements belong to their connection and are safe to reuse.

The pool opens lazily in the event loop of its first caller (asyncio objects belong to one loop;
Procrastinate's worker runs every async task in the loop of ``procrastinate ... worker``) and the
app closes it when the worker stops (ingest/app.py).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from ingest import settings

# a sync borrows at most two connections at once: one to stage a page while its limiter takes
# the slot for prefetching the next one; the rest serve other jobs, ticks and sweeps
MIN_CONNECTIONS = 1
MAX_CONNECTIONS = 4

_opening: tuple[asyncio.AbstractEventLoop, asyncio.Task[AsyncConnectionPool]] | None = None


async def _open() -> AsyncConnectionPool:
    pool = AsyncConnectionPool(
        settings.loaded.database_conninfo(),
        min_size=MIN_CONNECTIONS,
        max_size=MAX_CONNECTIONS,
        kwargs={"autocommit": True, "application_name": "kitsu-ingest"},
        # a connection that died while idle (a database restart) is replaced, not handed out
        check=AsyncConnectionPool.check_connection,
        name="kitsu-ingest",
        open=False,
    )
    await pool.open()
    return pool


def _failed(task: asyncio.Task[Any]) -> bool:
    return task.done() and (task.cancelled() or task.exception() is not None)


async def _pool() -> AsyncConnectionPool:
    global _opening
    loop = asyncio.get_running_loop()
    if _opening is None or _opening[0] is not loop or _failed(_opening[1]):
        # set before the first await, so that concurrent first callers share one pool; a pool of
        # another (finished) loop is unusable here and is dropped
        _opening = (loop, loop.create_task(_open()))
    # shielded: a job cancelled (aborted) while the pool opens must not cancel the opening for all
    return await asyncio.shield(_opening[1])


@contextlib.asynccontextmanager
async def connection() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """Borrow a connection for one SQL call (autocommit); give it back before awaiting anything else."""
    async with (await _pool()).connection() as conn:
        yield conn


async def close() -> None:
    """Close this loop's pool, if one was opened (the worker calls it when it stops)."""
    global _opening
    if _opening is None or _opening[0] is not asyncio.get_running_loop():
        return
    opening, _opening = _opening[1], None
    if not _failed(opening):  # a pool that never opened has nothing to close
        await (await opening).close()
