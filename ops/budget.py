"""The connection budget (contract §14): every connection the platform can open, summed from the
settings, must fit in the server's ``max_connections``:

    PostgREST (pool + 1 listener) × replicas + auth pool × uvicorn workers × replicas
      + ingest workers × (Procrastinate pool + sync pool) + headroom  ≤  max_connections

Headroom is the server's ``superuser_reserved_connections`` plus ``BUDGET_HEADROOM`` (default 7:
migrations, psql, a metrics exporter, pg_basebackup). When the web side does not fit, its two
login roles (``authenticator``, ``auth_service``) go through PgBouncer in transaction mode: their
pools then open client connections to PgBouncer, and the server sees at most
``PGBOUNCER_POOL_SIZE`` connections per role (``max_db_connections`` caps the sum). The ingest
workers always connect directly - Procrastinate LISTENs, which a transaction pooler cannot carry.

``plan()`` picks the layout (``PGBOUNCER``: auto - the default - uses PgBouncer only when the
direct layout is over budget; 1 always; 0 never) and raises ``OverBudget`` for a configuration
that does not fit either way, so `make run` refuses it before starting anything.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass

from database.pgbouncer import WEB_LOGINS
from ingest.app import PROCRASTINATE_POOL_MAX
from ingest.pool import MAX_CONNECTIONS as INGEST_POOL_MAX


class OverBudget(ValueError):
    """The configuration could open more connections than the server accepts."""


@dataclass(frozen=True)
class Settings:
    """What the budget is computed from (names as the environment variables)."""

    pgrst_replicas: int = 1
    pgrst_db_pool: int = 20
    auth_replicas: int = 1
    auth_workers: int = 2
    auth_db_pool_max: int = 10
    ingest_workers: int = 1
    pgbouncer: str = "auto"          # auto | 1 | 0
    pgbouncer_pool_size: int = 10    # server connections per web role through PgBouncer
    headroom: int = 7                # BUDGET_HEADROOM, on top of superuser_reserved_connections

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        def number(name: str, default: int) -> int:
            value = int(env.get(name) or default)
            if value < 0 or (name.endswith("REPLICAS") and value < 1):
                raise ValueError(f"{name}={value} is out of range")
            return value

        mode = (env.get("PGBOUNCER") or "auto").strip().lower()
        if mode not in ("auto", "1", "0"):
            raise ValueError(f"PGBOUNCER={mode!r}: auto, 1 or 0")
        return cls(pgrst_replicas=number("PGRST_REPLICAS", 1), pgrst_db_pool=number("PGRST_DB_POOL", 20),
                   auth_replicas=number("AUTH_REPLICAS", 1), auth_workers=number("AUTH_WORKERS", 2),
                   auth_db_pool_max=number("AUTH_DB_POOL_MAX", 10), ingest_workers=number("INGEST_WORKERS", 1),
                   pgbouncer=mode, pgbouncer_pool_size=number("PGBOUNCER_POOL_SIZE", 10),
                   headroom=number("BUDGET_HEADROOM", 7))


@dataclass(frozen=True)
class Plan:
    """A layout and what it costs, line by line."""

    pooled: bool                     # web roles through PgBouncer
    lines: dict[str, int]            # what -> server connections at most
    max_connections: int

    @property
    def total(self) -> int:
        return sum(self.lines.values())

    def describe(self) -> str:
        layout = "web roles through PgBouncer (transaction mode)" if self.pooled else "direct"
        parts = ", ".join(f"{name} {count}" for name, count in self.lines.items())
        return f"connections: {self.total} of max_connections {self.max_connections} ({layout}: {parts})"


def cost(settings: Settings, *, pooled: bool, reserved: int, max_connections: int) -> Plan:
    workers = settings.ingest_workers * (PROCRASTINATE_POOL_MAX + INGEST_POOL_MAX)
    if pooled:
        # PostgREST's listener is off behind a transaction pooler (db-channel-enabled=false)
        web = {"pgbouncer": len(WEB_LOGINS) * settings.pgbouncer_pool_size}
    else:
        web = {"postgrest": settings.pgrst_replicas * (settings.pgrst_db_pool + 1),
               "auth_service": settings.auth_replicas * settings.auth_workers * settings.auth_db_pool_max}
    return Plan(pooled, {**web, "ingest workers": workers, "headroom": reserved + settings.headroom},
                max_connections)


def plan(settings: Settings, *, max_connections: int, reserved: int,
         pgbouncer_installed: bool | None = None) -> Plan:
    """The layout for ``settings`` on a server with ``max_connections`` (``reserved`` of them for
    superusers); OverBudget when neither layout fits or the asked one does not."""
    installed = bool(shutil.which("pgbouncer")) if pgbouncer_installed is None else pgbouncer_installed
    direct = cost(settings, pooled=False, reserved=reserved, max_connections=max_connections)
    pooled = cost(settings, pooled=True, reserved=reserved, max_connections=max_connections)
    if settings.pgbouncer == "0":
        candidates = [direct]
    elif settings.pgbouncer == "1":
        candidates = [pooled]
    else:
        candidates = [direct, pooled] if installed else [direct]
    for candidate in candidates:
        if candidate.total <= max_connections:
            if candidate.pooled and not installed:
                raise OverBudget("PGBOUNCER=1 but pgbouncer is not installed (Debian package pgbouncer)")
            return candidate
    best = candidates[-1]
    hint = ("" if installed or settings.pgbouncer == "0" else
            "; pgbouncer is not installed (Debian package pgbouncer), which would pool the web roles")
    raise OverBudget(f"over the connection budget: {best.describe()}; lower PGRST_REPLICAS, AUTH_REPLICAS, "
                     f"the pools or INGEST_WORKERS, use PGBOUNCER=auto|1, or raise max_connections{hint}")


def server_limits(conn: object) -> tuple[int, int]:
    """(max_connections, superuser_reserved_connections) of the server behind ``conn`` (psycopg)."""
    row = conn.execute(  # type: ignore[attr-defined]
        "select current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int"
    ).fetchone()
    return int(row[0]), int(row[1])
