"""Password reset and email verification (contract §12). Nothing is mailed from here: each
endpoint makes one SQL call that writes the token's hash and the mail to the outbox in one
transaction (sql/auth/recovery.sql); an ingest worker's ``send_mail`` task delivers it."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response

from auth_service import errors, metrics, queries, tokens
from auth_service.errors import ApiError
from auth_service.models import EmailVerification, ForgotPassword, PasswordReset
from auth_service.routes import _caller, _hash, _ip, _refuse_when_overloaded, _service, _user_agent

router = APIRouter()

# one answer for every account, existing or not (contract §12)
ACCEPTED = {"status": "accepted", "message": "If an account has this email, a reset link is on its way."}


@router.post("/auth/password/forgot", status_code=202)
async def forgot_password(body: ForgotPassword, request: Request) -> dict[str, str]:
    """202 with the same body whether or not the account exists. Both cases make the same
    single SQL call (the rate limits are taken either way); a known account's call also
    writes the token and the outbox row, a few row inserts in the same commit, well under a
    tenth of one password hash (tests/auth_service/test_recovery.py measures it)."""
    service, settings = _service(request), _service(request).settings
    (retry_after,) = await service.db.row(
        queries.FORGOT_PASSWORD,
        (
            _ip(request, service),
            body.email,
            tokens.new_link_token(),
            settings.reset_ttl,
            settings.forgot_email_limit,
            settings.forgot_email_window,
            settings.forgot_ip_limit,
            settings.forgot_ip_window,
        ),
    ) or (None,)
    if retry_after is not None:
        metrics.THROTTLED.labels("forgot").inc()
        raise errors.rate_limited(retry_after)
    return ACCEPTED


@router.post("/auth/password/reset", status_code=204)
async def reset_password(body: PasswordReset, request: Request) -> Response:
    """A live token (checked before hashing, spent after it) sets the new password and revokes
    every session of the account."""
    service = _service(request)
    _refuse_when_overloaded(service)
    digest = tokens.refresh_token_hash(body.token)
    (valid,) = await service.db.row(queries.RESET_TOKEN_VALID, (digest,)) or (False,)
    if not valid:
        raise ApiError("invalid_reset_token")
    new_hash = await _hash(service, "hash", service.passwords.hash, body.new_password)
    (reset,) = await service.db.row(
        queries.RESET_PASSWORD, (digest, new_hash, _ip(request, service), _user_agent(request))
    ) or (False,)
    if not reset:  # spent by a concurrent request meanwhile
        raise ApiError("invalid_reset_token")
    return Response(status_code=204)


@router.post("/auth/email/verify", status_code=204)
async def verify_email(body: EmailVerification, request: Request) -> Response:
    service = _service(request)
    (verified,) = await service.db.row(
        queries.VERIFY_EMAIL,
        (tokens.refresh_token_hash(body.token), _ip(request, service), _user_agent(request)),
    ) or (False,)
    if not verified:
        raise ApiError("invalid_verification_token")
    return Response(status_code=204)


@router.post("/auth/email/verify/resend", status_code=202)
async def resend_verification(request: Request) -> dict[str, str]:
    """Bearer of a live session; 202 also when the address is already verified (nothing sent)."""
    service, settings = _service(request), _service(request).settings
    caller = _caller(request, service)
    if caller is None:
        raise ApiError("invalid_token")
    outcome, retry_after = await service.db.row(
        queries.RESEND_VERIFICATION,
        (
            caller.user_id,
            caller.session_id,
            tokens.new_link_token(),
            settings.verification_ttl,
            settings.verify_resend_limit,
            settings.verify_resend_window,
        ),
    ) or ("invalid_session", None)
    if outcome == "invalid_session":
        raise ApiError("invalid_token", message="This session has ended; sign in again.")
    if outcome == "throttled":
        metrics.THROTTLED.labels("verify_resend").inc()
        raise errors.rate_limited(retry_after)
    return {"status": "accepted", "message": "A verification link is on its way, unless the address is verified."}
