"""HTTP plumbing: the client address behind trusted proxies, the middleware that adds the
security headers, records request latency and turns any unhandled error into the contract's 500
envelope (so even that response carries the headers), and, outermost, the one that names the
request (X-Request-Id) in every log line and writes its access line."""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import time
from collections.abc import Callable, Sequence

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from auth_service import errors, metrics
from auth_service.settings import Network
from observability import logs

log = logging.getLogger("auth_service")
access_log = logging.getLogger("auth_service.access")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# The same list as private.security_headers() in SQL (tests/test_rule_owners.py proves it).
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"cross-origin-resource-policy", b"same-site"),
]


def _parse(value: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        return None


def client_ip(peer: str | None, forwarded_for: Sequence[str], trusted: Sequence[Network]) -> IPAddress | None:
    """The client's address. ``X-Forwarded-For`` counts only when the peer is a trusted proxy;
    then the list is read from the right, skipping trusted proxies, and the first other address
    is the client (entries further left were written by the client and prove nothing)."""
    address = _parse(peer) if peer else None
    if address is None or not any(address in net for net in trusted):
        return address
    hops = [hop for header in forwarded_for for hop in header.split(",") if hop.strip()]
    for hop in reversed(hops):
        hop_address = _parse(hop)
        if hop_address is None:
            break  # malformed entry: trust nothing to its left
        address = hop_address
        if not any(hop_address in net for net in trusted):
            break
    return address


async def _send_json(send: Send, status: int, body: object, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class SecurityMiddleware:
    """Security headers and ``Cache-Control: no-store`` (tokens!) on every response, request
    latency per route, and the error boundary of last resort."""

    def __init__(
        self, app: ASGIApp, *, expose_worker: bool = False, shed: Callable[[Scope], bool] | None = None
    ) -> None:
        self.app = app
        self.shed = shed  # answers 503 at once (no routing, no body parsing) when it returns True
        self.extra = [(b"x-auth-worker", str(os.getpid()).encode())] if expose_worker else []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if k.lower() not in {name for name, _ in SECURITY_HEADERS}
                ]
                headers += SECURITY_HEADERS + self.extra
                if not any(k.lower() == b"cache-control" for k, _ in headers):
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        try:
            if self.shed is not None and self.shed(scope):
                metrics.HASH_REFUSED.inc()
                await _send_json(
                    send_with_headers,
                    503,
                    errors.body("overloaded", errors.CATALOGUE["overloaded"][1]),
                    [(b"retry-after", b"1")],
                )
                return
            await self.app(scope, receive, send_with_headers)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if not response_started:
                await _send_json(send_with_headers, 500, errors.body("internal_error", "Internal error."))
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            metrics.REQUEST_SECONDS.labels(scope.get("method", ""), path, str(status)).observe(
                time.perf_counter() - started
            )


class RequestLogMiddleware:
    """For the request's duration, the request-id context of observability.logs holds its
    well-formed ``X-Request-Id`` (the gateway sets or keeps it; contract §10), else nothing; at
    its end one access line: method, path (never the query string), status, duration_ms.
    Bodies and headers are never logged (passwords, tokens)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = next((value for name, value in scope.get("headers", []) if name == b"x-request-id"), None)
        token = logs.request_id.set(logs.well_formed_request_id(header.decode("latin-1") if header else None))
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            duration_ms = round((time.perf_counter() - started) * 1000, 1)
            method, path = scope.get("method", ""), scope.get("path", "")
            access_log.info(
                "%s %s %s %sms", method, path, status, duration_ms,
                extra={"method": method, "path": path, "status": status, "duration_ms": duration_ms},
            )
            logs.request_id.reset(token)
