"""auth_service: sign-up, sign-in, sessions and tokens (contract §3, §4, §7).

Python stays thin: it validates input, hashes and verifies passwords off the event loop, signs
tokens, and makes one call per state change into the ``auth`` schema, where the rules live
(uniqueness, rate-limit decisions, refresh rotation and reuse detection, logout scopes).
Served by uvicorn: ``uvicorn auth_service.main:create_app --factory`` (see auth_service.process).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import psycopg
from fastapi import APIRouter, Body, FastAPI, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse

from auth_service import errors, metrics, queries, tokens, web
from auth_service.errors import ApiError
from auth_service.passwords import HashPool, Overloaded, Passwords
from auth_service.settings import Network, Settings

log = logging.getLogger("auth_service")

HASHING_PATHS = frozenset({"/auth/register", "/auth/login", "/auth/password"})
EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")  # the same rule as data.users


def _email(value: str) -> str:
    email = value.strip().lower()
    if len(email) > 254 or not EMAIL_SHAPE.match(email):
        raise ValueError("not a valid email address")
    return email


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=False)


class Registration(_Body):
    email: Annotated[str, AfterValidator(_email)]
    password: str = Field(min_length=8, max_length=1024)


class Credentials(_Body):
    # no shape rule at sign-in: a malformed email is simply an unknown one (same answer)
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class RefreshRequest(_Body):
    refresh_token: str = Field(min_length=1, max_length=256)


class LogoutRequest(_Body):
    refresh_token: str | None = Field(default=None, max_length=256)
    scope: Literal["local", "others", "global"] = "local"


class PasswordChange(_Body):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=8, max_length=1024)


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
        except (psycopg.errors.CheckViolation, psycopg.errors.InvalidParameterValue) as exc:
            log.info("rejected by a database rule: %s", exc.diag.constraint_name or exc.sqlstate)
            raise ApiError("invalid_request") from None


@dataclass
class Service:
    settings: Settings
    signer: tokens.Signer
    passwords: Passwords
    hashes: HashPool
    db: Database
    trusted_proxies: list[Network]


def _service(request: Request) -> Service:
    return request.app.state.service  # type: ignore[no-any-return]


def _ip(request: Request, service: Service) -> web.IPAddress | None:
    return web.client_ip(
        request.client.host if request.client else None,
        request.headers.getlist("x-forwarded-for"),
        service.trusted_proxies,
    )


def _user_agent(request: Request) -> str | None:
    return request.headers.get("user-agent", "")[:512] or None


def _caller(request: Request, service: Service) -> tokens.Caller | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return service.signer.verify(token.strip())


def _pair(
    service: Service, user_id: uuid.UUID, session_id: uuid.UUID, email: str, refresh_token: str
) -> dict[str, Any]:
    return {
        "access_token": service.signer.access_token(user_id, session_id),
        "token_type": "bearer",
        "expires_in": service.signer.access_ttl,
        "refresh_token": refresh_token,
        "user": {"id": str(user_id), "email": email},
    }


def _refuse_when_overloaded(service: Service) -> None:
    """Cheap early refusal (no database call) while this process's hashing queue is full."""
    if service.hashes.full():
        metrics.HASH_REFUSED.inc()
        raise ApiError("overloaded", headers={"Retry-After": "1"})


async def _hash(service: Service, operation: str, fn: Any, *args: Any) -> Any:
    try:
        return await service.hashes.run(operation, fn, *args)
    except Overloaded:
        raise ApiError("overloaded", headers={"Retry-After": "1"}) from None


router = APIRouter()


@router.post("/auth/register", status_code=201)
async def register(body: Registration, request: Request) -> dict[str, Any]:
    service, settings = _service(request), _service(request).settings
    _refuse_when_overloaded(service)
    ip = _ip(request, service)
    (retry_after,) = await service.db.row(
        queries.REGISTER_ATTEMPT, (ip, settings.register_ip_limit, settings.register_ip_window)
    ) or (None,)
    if retry_after is not None:
        metrics.THROTTLED.labels("register").inc()
        metrics.REGISTRATIONS.labels("rate_limited").inc()
        raise errors.rate_limited(retry_after)
    password_hash = await _hash(service, "hash", service.passwords.hash, body.password)
    refresh_token, digest = tokens.new_refresh_token()
    row = await service.db.row(
        queries.REGISTER,
        (body.email, password_hash, ip, _user_agent(request), digest, settings.session_ttl),
    )
    if row is None:
        metrics.REGISTRATIONS.labels("email_taken").inc()
        raise ApiError("email_taken")
    metrics.REGISTRATIONS.labels("created").inc()
    user_id, session_id, email = row
    return _pair(service, user_id, session_id, email, refresh_token)


@router.post("/auth/login")
async def login(body: Credentials, request: Request) -> dict[str, Any]:
    service, settings = _service(request), _service(request).settings
    _refuse_when_overloaded(service)
    ip = _ip(request, service)
    row = await service.db.row(
        queries.LOGIN_ATTEMPT,
        (
            ip,
            body.email,
            settings.login_ip_email_limit,
            settings.login_ip_email_window,
            settings.login_email_limit,
            settings.login_email_window,
        ),
    )
    assert row is not None
    retry_after, user_id, stored_hash = row
    if retry_after is not None:
        metrics.THROTTLED.labels("login").inc()
        metrics.LOGINS.labels("rate_limited").inc()
        raise errors.rate_limited(retry_after)
    try:
        verdict = await service.hashes.run("verify", service.passwords.verify, stored_hash, body.password)
    except Overloaded:
        # not a failed attempt: the password was never checked
        await service.db.row(queries.REFUND_LOGIN, (ip, body.email, False))
        metrics.LOGINS.labels("overloaded").inc()
        raise ApiError("overloaded", headers={"Retry-After": "1"}) from None
    if not verdict.ok:
        metrics.LOGINS.labels("invalid_credentials").inc()
        raise ApiError("invalid_credentials")
    refresh_token, digest = tokens.new_refresh_token()
    session = await service.db.row(
        queries.LOGIN,
        (
            user_id,
            stored_hash,
            verdict.new_hash,
            ip,
            _user_agent(request),
            digest,
            settings.session_ttl,
        ),
    )
    if session is None:  # the password changed (or the account closed) while we verified
        metrics.LOGINS.labels("invalid_credentials").inc()
        raise ApiError("invalid_credentials")
    metrics.LOGINS.labels("success").inc()
    session_id, email = session
    return _pair(service, user_id, session_id, email, refresh_token)


@router.post("/auth/refresh")
async def refresh(body: RefreshRequest, request: Request) -> dict[str, Any]:
    service, settings = _service(request), _service(request).settings
    new_token, new_digest = tokens.new_refresh_token()
    row = await service.db.row(
        queries.REFRESH,
        (
            tokens.refresh_token_hash(body.refresh_token),
            new_digest,
            _ip(request, service),
            settings.refresh_grace,
            settings.refresh_ip_limit,
            settings.refresh_ip_window,
        ),
    )
    assert row is not None
    outcome, retry_after, user_id, session_id, email = row
    metrics.REFRESHES.labels(outcome).inc()
    if outcome == "throttled":
        metrics.THROTTLED.labels("refresh").inc()
        raise errors.rate_limited(retry_after)
    if outcome not in ("rotated", "grace"):
        if outcome == "reused":
            log.warning("refresh token reuse: session %s revoked", session_id)
        raise ApiError("invalid_refresh_token")
    return _pair(service, user_id, session_id, email, new_token)


@router.post("/auth/logout", status_code=204)
async def logout(request: Request, body: Annotated[LogoutRequest | None, Body()] = None) -> Response:
    service = _service(request)
    body = body or LogoutRequest()
    caller = _caller(request, service)
    token_hash = tokens.refresh_token_hash(body.refresh_token) if body.refresh_token else None
    if caller is not None or token_hash is not None:
        await service.db.row(
            queries.LOGOUT,
            (
                caller.user_id if caller else None,
                caller.session_id if caller else None,
                token_hash,
                body.scope,
            ),
        )
    return Response(status_code=204)


@router.post("/auth/password", status_code=204)
async def change_password(body: PasswordChange, request: Request) -> Response:
    service, settings = _service(request), _service(request).settings
    _refuse_when_overloaded(service)
    caller = _caller(request, service)
    if caller is None:
        raise ApiError("invalid_token")
    ip = _ip(request, service)
    row = await service.db.row(
        queries.PASSWORD_ATTEMPT,
        (
            caller.user_id,
            caller.session_id,
            ip,
            settings.login_ip_email_limit,
            settings.login_ip_email_window,
            settings.login_email_limit,
            settings.login_email_window,
        ),
    )
    if row is None:
        raise ApiError("invalid_token", message="This session has ended; sign in again.")
    retry_after, email, stored_hash = row
    if retry_after is not None:
        metrics.THROTTLED.labels("password").inc()
        raise errors.rate_limited(retry_after)
    try:
        ok, new_hash = await service.hashes.run(
            "change",
            service.passwords.verify_and_hash,
            stored_hash,
            body.current_password,
            body.new_password,
        )
    except Overloaded:
        await service.db.row(queries.REFUND_LOGIN, (ip, email, False))
        raise ApiError("overloaded", headers={"Retry-After": "1"}) from None
    if not ok:
        raise ApiError("invalid_credentials", message="The current password is wrong.")
    (changed,) = await service.db.row(
        queries.CHANGE_PASSWORD, (caller.user_id, caller.session_id, stored_hash, new_hash, ip)
    ) or (False,)
    if not changed:
        raise ApiError("invalid_credentials", message="The password changed meanwhile; sign in again.")
    return Response(status_code=204)


@router.get("/.well-known/jwks.json")
async def jwks(request: Request) -> JSONResponse:
    return JSONResponse(_service(request).signer.jwks, headers={"Cache-Control": "public, max-age=300"})


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    try:
        await asyncio.wait_for(_service(request).db.row(queries.PING), 2.0)
    except (ApiError, TimeoutError):
        return JSONResponse(errors.body("database_unavailable", "The database is unavailable."), status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/metrics")
async def metrics_endpoint() -> Response:
    payload, content_type = metrics.exposition()
    return Response(payload, media_type=content_type)


async def _purge_forever(service: Service) -> None:
    """Every process runs this; auth.purge lets only one of them work at a time."""
    interval = service.settings.purge_interval.total_seconds()
    await asyncio.sleep(random.uniform(0, interval))
    while True:
        try:
            row = await service.db.row(queries.PURGE, (service.settings.session_retention,))
            log.info("purged rate_limits/refresh_tokens/sessions: %s", row)
        except Exception:
            log.exception("purge failed")
        await asyncio.sleep(interval)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The ASGI app; settings come from the environment unless given (uvicorn --factory)."""
    settings = settings or Settings()  # type: ignore[call-arg]
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
            kwargs={"autocommit": True},
            name="auth_service",
            open=False,
        )
        await pool.open(wait=False)
        hashes = HashPool(
            concurrency=settings.hash_concurrency,
            queue=settings.hash_queue,
            timeout=settings.hash_queue_timeout,
        )
        service = Service(settings, signer, passwords, hashes, Database(pool), settings.trusted_networks())
        app.state.service = service
        purger = asyncio.create_task(_purge_forever(service))
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
    return app
