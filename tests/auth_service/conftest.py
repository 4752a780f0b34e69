"""auth_service under test: real uvicorn processes (>= 2 workers) on a real database, next to a
real PostgREST that trusts the same public key. Every request goes over HTTP."""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest

from ops import services
from ops.launch import auth_process
from tests.conftest import LOG_DIR, TEST_KID

# cheap argon2 parameters for speed (allowed only with AUTH_ARGON2_ALLOW_WEAK)
CHEAP_HASHING = {
    "AUTH_ARGON2_ALLOW_WEAK": "true",
    "AUTH_ARGON2_TIME_COST": "1",
    "AUTH_ARGON2_MEMORY_COST": "8",
    "AUTH_ARGON2_PARALLELISM": "1",
}
# OWASP's minimum (the production default): for timing and overload tests
OWASP_HASHING = {
    "AUTH_ARGON2_TIME_COST": "2",
    "AUTH_ARGON2_MEMORY_COST": "19456",
    "AUTH_ARGON2_PARALLELISM": "1",
}
CORS_ORIGIN = "https://app.kitsu.test"


def new_ip() -> str:
    """A client address of its own for one test (sent as X-Forwarded-For via a trusted proxy),
    so per-IP limits of different tests never meet."""
    return f"10.{random.randrange(256)}.{random.randrange(256)}.{random.randrange(1, 255)}"


def new_email() -> str:
    return f"user-{uuid.uuid4().hex[:12]}@example.com"


class Api:
    """Plain HTTP calls; each call opens a new connection, so the kernel spreads them over
    uvicorn's worker processes."""

    def __init__(self, url: str) -> None:
        self.url = url

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        ip: str | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        all_headers = dict(headers or {})
        if ip:
            all_headers["X-Forwarded-For"] = ip
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        return httpx.request(
            method, self.url + path, json=json_body, headers=all_headers, timeout=60, **kwargs
        )

    def post(self, path: str, json_body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, json_body=json_body, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def register(
        self,
        email: str | None = None,
        password: str = "correct horse battery",
        ip: str | None = None,
    ) -> dict[str, Any]:
        response = self.post(
            "/auth/register",
            {"email": email or new_email(), "password": password},
            ip=ip or new_ip(),
        )
        assert response.status_code == 201, response.text
        return response.json()

    def login(
        self, email: str, password: str, ip: str | None = None, user_agent: str = "pytest"
    ) -> httpx.Response:
        return self.post(
            "/auth/login",
            {"email": email, "password": password},
            ip=ip or new_ip(),
            headers={"User-Agent": user_agent},
        )


def claims(access_token: str) -> dict[str, Any]:
    return jwt.decode(access_token, options={"verify_signature": False})


@pytest.fixture(scope="session")
def auth_env(signing_key: str) -> dict[str, str]:
    """The test configuration: the PostgREST fixture's key, cheap hashing, 127.0.0.1 as the
    trusted proxy (tests choose their client address), a CORS origin, the worker header."""
    return {
        **CHEAP_HASHING,
        "AUTH_JWT_KEYS": json.dumps({TEST_KID: signing_key}),
        "AUTH_TRUSTED_PROXIES": "127.0.0.1/32",
        "AUTH_CORS_ORIGINS": CORS_ORIGIN,
        "AUTH_EXPOSE_WORKER": "true",
        "AUTH_PURGE_INTERVAL": "3600",
    }


@pytest.fixture(scope="module")
def start_auth(auth_env: dict[str, str]) -> Iterator[Callable[..., services.Service]]:
    """Factory: a running auth_service (``workers`` uvicorn processes) for a database, stopped
    when the module ends."""
    started: list[services.Service] = []
    LOG_DIR.mkdir(parents=True, exist_ok=True)

    def start(dbname: str, *, workers: int = 2, **overrides: str) -> services.Service:
        service = auth_process(
            dbname,
            port=services.free_port(),
            workers=workers,
            env={**auth_env, **overrides},
            log_path=LOG_DIR / f"auth-{dbname}.log",
        )
        started.append(service.start())
        return service.wait_ready(timeout=60)

    yield start
    for service in started:
        service.stop()


@pytest.fixture(scope="module")
def auth_db(make_db: Callable[[], str]) -> str:
    return make_db()


@pytest.fixture(scope="module")
def auth_service(auth_db: str, start_auth: Callable[..., services.Service]) -> services.Service:
    return start_auth(auth_db, workers=3)


@pytest.fixture(scope="module")
def api(auth_service: services.Service) -> Api:
    assert auth_service.url
    return Api(auth_service.url)


@pytest.fixture(scope="module")
def rest(auth_db: str, start_postgrest: Callable[..., services.Service]) -> Api:
    service = start_postgrest(auth_db)
    assert service.url
    return Api(service.url)
