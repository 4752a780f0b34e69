"""The auth API's endpoints (contract §4): input checked by the models, hashing off the event
loop, one SQL call per state change (the rules live in the `auth` schema)."""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from dataclasses import dataclass
from typing import Annotated, Any, NoReturn

from fastapi import APIRouter, Body, Request, Response
from starlette.responses import JSONResponse

from auth_service import errors, metrics, queries, tokens, web
from auth_service.errors import ApiError
from auth_service.models import Credentials, LogoutRequest, PasswordChange, RefreshRequest, Registration
from auth_service.passwords import HashPool, Overloaded, Passwords
from auth_service.pool import Database
from auth_service.settings import Network, Settings

log = logging.getLogger("auth_service")


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
    verification_token = tokens.new_link_token()  # mailed by the outbox (contract §12)
    row = await service.db.row(
        queries.REGISTER,
        (
            body.email,
            password_hash,
            ip,
            _user_agent(request),
            digest,
            settings.session_ttl,
            verification_token,
            settings.verification_ttl,
        ),
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
            settings.login_ip_limit,
            settings.login_ip_window,
            _user_agent(request),
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
        await _sign_in_failed(service, request, ip, body.email)
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
        await _sign_in_failed(service, request, ip, body.email)
    metrics.LOGINS.labels("success").inc()
    session_id, email = session
    return _pair(service, user_id, session_id, email, refresh_token)


async def _sign_in_failed(service: Service, request: Request, ip: web.IPAddress | None, email: str) -> NoReturn:
    """Audit the failed sign-in (auth.sign_in_failed), then answer 401 invalid_credentials."""
    await service.db.row(queries.SIGN_IN_FAILED, (ip, email, _user_agent(request)))
    metrics.LOGINS.labels("invalid_credentials").inc()
    raise ApiError("invalid_credentials")


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
            _user_agent(request),
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
                _ip(request, service),
                _user_agent(request),
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
            settings.login_ip_limit,
            settings.login_ip_window,
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
        queries.CHANGE_PASSWORD,
        (caller.user_id, caller.session_id, stored_hash, new_hash, ip, _user_agent(request)),
    ) or (False,)
    if not changed:
        raise ApiError("invalid_credentials", message="The password changed meanwhile; sign in again.")
    return Response(status_code=204)


@router.get("/.well-known/jwks.json")
async def jwks(request: Request) -> JSONResponse:
    return JSONResponse(_service(request).signer.jwks, headers={"Cache-Control": "public, max-age=300"})


@router.get("/live")
async def live() -> JSONResponse:
    """Liveness: this worker process answers (no database call; a restart would not help a
    database that is down)."""
    return JSONResponse({"status": "ok"})


@router.get("/health")
@router.get("/ready")
async def health(request: Request) -> JSONResponse:
    """Readiness (also at the historical /health): the database answers within 2 s."""
    try:
        await asyncio.wait_for(_service(request).db.row(queries.PING), 2.0)
    except (ApiError, TimeoutError):
        return JSONResponse(errors.body("database_unavailable", "The database is unavailable."), status_code=503)
    return JSONResponse({"status": "ok"})


@router.get("/metrics")
async def metrics_endpoint() -> Response:
    payload, content_type = metrics.exposition()
    return Response(payload, media_type=content_type)


async def purge_forever(service: Service) -> None:
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
