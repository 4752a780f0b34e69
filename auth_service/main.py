"""auth_service: sign-up, sign-in, sessions and tokens (contract §3, §4, §7).

Python stays thin: it validates input, hashes and verifies passwords off the event loop, signs
tokens, and makes one call per state change into the ``auth`` schema, where the rules live
(uniqueness, rate-limit decisions, refresh rotation and reuse detection, logout scopes).
Served by uvicorn: ``uvicorn auth_service.main:create_app --factory`` (see auth_service.process).
Here: the app factory; request bodies in models.py, endpoints in routes.py, the pool in pool.py.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from psycopg_pool import AsyncConnectionPool

from auth_service import errors, recovery, tokens, web
from auth_service.passwords import HashPool, Passwords
from auth_service.pool import Database
from auth_service.routes import Service, purge_forever, router
from auth_service.settings import Settings
from observability import logs

HASHING_PATHS = frozenset({"/auth/register", "/auth/login", "/auth/password", "/auth/password/reset"})


def create_app(settings: Settings | None = None) -> FastAPI:
    """The ASGI app; settings come from the environment unless given (uvicorn --factory)."""
    settings = settings or Settings()  # type: ignore[call-arg]
    # each uvicorn worker calls this factory after uvicorn's own logging set-up
    logs.configure("auth_service", settings.log_format)
    if settings.log_format == "json":
        logs.adopt_uvicorn_loggers()  # every line JSON; uvicorn's access log is off (process.py)
    pems, kid = settings.signing_keys()
    signer = tokens.Signer(
        pems,
        kid,
        audience=settings.jwt_audience,
        issuer=settings.jwt_issuer,
        access_ttl=settings.access_ttl,
    )
    passwords = Passwords(
        time_cost=settings.argon2_time_cost,
        memory_cost=settings.argon2_memory_cost,
        parallelism=settings.argon2_parallelism,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pool = AsyncConnectionPool(
            settings.database_url.get_secret_value(),
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            timeout=settings.db_timeout,
            kwargs={"autocommit": True, **({} if settings.db_prepared_statements else {"prepare_threshold": None})},
            name="auth_service",
            open=False,
        )
        await pool.open(wait=False)
        hashes = HashPool(
            concurrency=settings.hash_concurrency,
            queue=settings.hash_queue,
            timeout=settings.hash_queue_timeout,
            max_wait=settings.hash_max_wait_seconds,
            seed_seconds=passwords.seed_seconds,
        )
        service = Service(settings, signer, passwords, hashes, Database(pool), settings.trusted_networks())
        app.state.service = service
        purger = asyncio.create_task(purge_forever(service))
        try:
            yield
        finally:
            purger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await purger
            await pool.close()
            hashes.close()

    app = FastAPI(title="Kitsu auth_service", version="1", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.include_router(router)
    app.include_router(recovery.router)
    errors.install(app)
    if origins := settings.cors_origin_list():
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type"],
            max_age=600,
        )

    def shed(scope: Any) -> bool:
        # refusing a flood must cost less than serving it: no routing, no body parsing
        service = getattr(app.state, "service", None)
        return (
            service is not None
            and scope["method"] == "POST"
            and scope["path"] in HASHING_PATHS
            and service.hashes.full()
        )

    app.add_middleware(web.SecurityMiddleware, expose_worker=settings.expose_worker, shed=shed)
    app.add_middleware(web.RequestLogMiddleware)  # outermost: the request id covers every line
    return app
