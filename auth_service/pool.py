"""The pool of `auth_service` connections: one call per state change into the `auth` schema."""

from __future__ import annotations

import logging
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from auth_service.errors import ApiError

log = logging.getLogger("auth_service")
# SQLSTATE of auth.refuse_banned: the client address is banned (sign-in, registration, refresh)
IP_BANNED = "KB403"


class Database:
    """The pool of `auth_service` connections; maps connection trouble to 503."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def row(self, query: Any, params: tuple[Any, ...] = ()) -> tuple[Any, ...] | None:
        try:
            async with self.pool.connection() as conn:
                cursor = await conn.execute(query, params)
                return await cursor.fetchone()
        except (PoolTimeout, psycopg.OperationalError) as exc:
            log.warning("database unavailable: %s", type(exc).__name__)
            raise ApiError("database_unavailable", headers={"Retry-After": "1"}) from None
        except psycopg.Error as exc:
            if exc.sqlstate == IP_BANNED:
                raise ApiError("ip_banned") from None
            if not isinstance(exc, psycopg.errors.CheckViolation | psycopg.errors.InvalidParameterValue):
                raise
            log.info("rejected by a database rule: %s", exc.diag.constraint_name or exc.sqlstate)
            raise ApiError("invalid_request") from None
