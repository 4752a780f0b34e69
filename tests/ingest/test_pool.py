"""The worker's connection pool (ingest/pool.py) against a real database: bounded, it queues callers
beyond its size instead of failing them, hands connections back clean, and follows the event loop."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import SecretStr

from database import build as db
from ingest import pool, settings


@pytest.fixture(autouse=True)
def ingest_worker_on(module_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    url = SecretStr(db.role_url(module_db, "ingest_worker"))
    monkeypatch.setattr(settings, "loaded", settings.loaded.model_copy(update={"database_url": url}))


async def backend_pid(hold: float = 0.0) -> int:
    async with pool.connection() as conn:
        cur = await conn.execute("select pg_backend_pid(), pg_sleep(%s)", (hold,))
        row = await cur.fetchone()
    assert row is not None
    return int(row[0])


def test_more_callers_than_connections_wait_their_turn():
    async def main() -> set[int]:
        try:
            return set(await asyncio.gather(*(backend_pid(hold=0.05) for _ in range(5 * pool.MAX_CONNECTIONS))))
        finally:
            await pool.close()

    assert 1 <= len(asyncio.run(main())) <= pool.MAX_CONNECTIONS


def test_a_connection_comes_back_clean():
    async def main() -> tuple[object, ...]:
        try:
            async with pool.connection() as conn:
                await conn.execute("begin")
                await conn.execute("select pg_advisory_xact_lock(4242)")  # left open: the pool rolls back
            async with pool.connection() as conn:
                cur = await conn.execute("select pg_try_advisory_xact_lock(4242), current_setting('application_name')")
                return conn.autocommit, conn.info.transaction_status.name, await cur.fetchone()
        finally:
            await pool.close()

    assert asyncio.run(main()) == (True, "IDLE", (True, "kitsu-ingest"))


def test_each_event_loop_gets_its_own_pool():
    # Procrastinate's worker has one loop; a pool left open by another loop must not be reused.
    # Each loop is closed by hand: asyncio.run would cancel the first pool's background tasks,
    # which is not what this test is about.
    first_loop, second_loop = asyncio.new_event_loop(), asyncio.new_event_loop()
    try:
        first = first_loop.run_until_complete(backend_pid())
        assert pool._opening is not None
        first_pool = pool._opening[1].result()
        assert second_loop.run_until_complete(backend_pid()) != first
        second_loop.run_until_complete(pool.close())
        first_loop.run_until_complete(first_pool.close())
    finally:
        first_loop.close()
        second_loop.close()
