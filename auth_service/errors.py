"""The error catalogue of auth_service (docs/errors.md) and the contract §7 envelope:
``{"error": {"code", "message", "details"}}``. Nothing else ever reaches a client: no stack
trace, no SQL, no echo of submitted passwords."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger("auth_service")

CATALOGUE: dict[str, tuple[int, str]] = {
    "invalid_request": (422, "The request body is invalid."),
    "email_taken": (409, "An account with this email already exists."),
    "invalid_credentials": (401, "Invalid email or password."),
    "invalid_refresh_token": (401, "The refresh token is invalid or has been used."),
    "invalid_token": (401, "A valid access token is required."),
    "invalid_reset_token": (400, "The reset link is invalid, used or expired; ask for a new one."),
    "invalid_verification_token": (400, "The verification link is invalid, used or expired; ask for a new one."),
    "rate_limited": (429, "Too many attempts; try again later."),
    "ip_banned": (403, "Requests from this address are blocked."),
    "overloaded": (503, "The service is busy; try again shortly."),
    "database_unavailable": (503, "The database is unavailable."),
    "not_found": (404, "Not found."),
    "method_not_allowed": (405, "Method not allowed."),
    "internal_error": (500, "Internal error."),
}


class ApiError(Exception):
    def __init__(
        self,
        code: str,
        *,
        details: Any = None,
        message: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.status, default_message = CATALOGUE[code]
        self.code = code
        self.message = message or default_message
        self.details = details
        self.headers = dict(headers or {})
        if code == "invalid_token":
            self.headers.setdefault("WWW-Authenticate", 'Bearer error="invalid_token"')
        super().__init__(code)


def rate_limited(retry_after: int) -> ApiError:
    return ApiError(
        "rate_limited",
        headers={"Retry-After": str(max(1, retry_after))},
        details={"retry_after": max(1, retry_after)},
    )


def body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def response(error: ApiError) -> JSONResponse:
    return JSONResponse(
        body(error.code, error.message, error.details),
        status_code=error.status,
        headers=error.headers,
    )


def install(app: FastAPI) -> None:
    async def api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return response(exc)

    async def http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
        error = ApiError(code, headers=exc.headers)
        error.status = exc.status_code
        return response(error)

    async def validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        # field and reason only: pydantic's `input` would echo passwords back
        details = [
            {
                "field": ".".join(str(part) for part in error.get("loc", ())[1:]) or "body",
                "message": str(error.get("msg", "invalid")),
            }
            for error in exc.errors()
        ]
        return response(ApiError("invalid_request", details=details))

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, validation_error)
