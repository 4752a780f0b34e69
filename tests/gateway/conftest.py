"""The gateway under test: Debian's nginx with the rendered configuration in front of a real
PostgREST and a real auth_service (two uvicorn workers) on one database."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest

from ops import services
from ops.launch import auth_process, gateway_process, nginx_binary
from tests.auth_service.conftest import CHEAP_HASHING
from tests.conftest import LOG_DIR, TEST_KID, owner_connect
from tests.helpers import create_anime

ALLOWED_ORIGIN = "https://app.kitsu.test"
OTHER_ORIGIN = "https://evil.example"


@dataclass
class Edge:
    url: str
    db: str
    postgrest: services.Service
    auth: services.Service
    gateway: services.Service
    published: list[uuid.UUID]
    draft: uuid.UUID

    def client(self, **kwargs: object) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10, **kwargs)  # type: ignore[arg-type]

    def access_log(self) -> list[dict[str, object]]:
        path = self.gateway.log_path.with_name(self.gateway.log_path.stem + "-access.log")  # type: ignore[union-attr]
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def start_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., services.Service]]:
    """Factory: nginx with the gateway configuration in front of the given services."""
    if nginx_binary() is None:
        pytest.fail("nginx is not installed (Debian package nginx; .ci/run installs it)")
    started: list[services.Service] = []

    def start(postgrest: services.Service, postgrest_admin: str, auth: services.Service, *,
              wait: bool = True, **env: str) -> services.Service:
        run_dir = tmp_path_factory.mktemp("gateway")
        gateway = gateway_process(postgrest=postgrest, postgrest_admin=postgrest_admin, auth=auth,
                                  run_dir=run_dir, port=services.free_port(), env=env,
                                  log_path=LOG_DIR / f"gateway-{run_dir.name}.log")
        started.append(gateway.start())
        return gateway.wait_ready(timeout=20) if wait else gateway

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture(scope="module")
def edge(make_db, start_postgrest, start_gateway, signing_key) -> Iterator[Edge]:
    dbname = make_db()
    with owner_connect(dbname) as conn:
        published = [create_anime(conn, f"Gateway title {i}", episodes=2) for i in range(5)]
        draft = create_anime(conn, "Hidden draft", state="draft")
    admin_port = services.free_port()
    postgrest = start_postgrest(dbname, admin_port=admin_port)
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    auth = auth_process(dbname, port=services.free_port(), workers=2, env={
        **CHEAP_HASHING,
        "AUTH_JWT_KEYS": json.dumps({TEST_KID: signing_key}),
        "AUTH_TRUSTED_PROXIES": "127.0.0.1/32",  # the gateway, the only proxy auth_service trusts
        "AUTH_PURGE_INTERVAL": "3600",
    }, log_path=LOG_DIR / f"auth-gateway-{dbname}.log").start().wait_ready(timeout=60)
    try:
        gateway = start_gateway(postgrest, f"127.0.0.1:{admin_port}", auth,
                                CORS_ALLOWED_ORIGINS=ALLOWED_ORIGIN, GATEWAY_MAX_BODY="64k")
        assert gateway.url
        yield Edge(gateway.url, dbname, postgrest, auth, gateway, published, draft)
    finally:
        auth.stop()
