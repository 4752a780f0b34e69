"""Shared fixtures: a real PostgreSQL (DATABASE_URL, the default address, or an embedded cluster),
a template database built by the real migrations, and real PostgREST processes.

Databases: ``template_db`` is migrated once per run; ``make_db()`` clones it (CREATE DATABASE
... TEMPLATE) for tests that commit; ``conn`` gives a rolled-back transaction for pure SQL tests.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import jwt
import psycopg
import pytest

from auth_service import keys
from database import build as db
from ops import embedded_pg, services
from ops.launch import auth_process, gateway_process, nginx_binary
from tests.helpers import create_anime

LOG_DIR = Path(__file__).resolve().parent.parent / ".cache" / "test-logs"
# fixtures that start real processes (PostgREST, uvicorn, workers, the upstream, `make run`):
# a test using one is a process-level test, marked `processes` (`make test-fast` leaves them out)
PROCESS_FIXTURES = {"start_postgrest", "start_auth", "start_worker", "start_upstream", "start_gateway", "start_edge",
                    "run_env", "private_cluster"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if PROCESS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.processes)
TEMPLATE = f"kitsu_test_template_{os.getpid()}"
TEST_KID = "test-key-1"


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """An administrative URL: DATABASE_URL, else the server on the default address, else a private
    cluster from this machine's PostgreSQL binaries (ops/embedded_pg.py), stopped at the end."""
    try:
        database = embedded_pg.resolve()
    except SystemExit as missing:  # no server binaries on this host: a container, where docker exists
        try:
            from testcontainers.postgres import PostgresContainer

            container = PostgresContainer("postgres:15", driver=None)
        except Exception as exc:  # no docker engine either
            pytest.skip(f"{missing}; no docker: {type(exc).__name__}")
        with container:
            os.environ["DATABASE_URL"] = container.get_connection_url()
            yield os.environ["DATABASE_URL"]
        return
    yield database.url
    database.stop()


@pytest.fixture(scope="module")
def private_cluster() -> Iterator[Callable[..., embedded_pg.Cluster]]:
    """Factory: a PostgreSQL cluster of the test's own (initdb from this machine's server binaries
    in a temporary folder, a free port, trust auth), for what must not touch the shared server:
    a small max_connections, a streaming replica, a restart. ``standby_of`` makes it a replica of
    another one. Stopped and removed when the module ends."""
    clusters: list[embedded_pg.Cluster] = []

    def start(*, standby_of: embedded_pg.Cluster | None = None, **options: object) -> embedded_pg.Cluster:
        cluster = embedded_pg.Cluster(Path(tempfile.mkdtemp(prefix="kitsu-cluster-", dir="/tmp")), **options)  # type: ignore[arg-type]
        clusters.append(cluster)
        if standby_of is not None:
            cluster.standby_of(standby_of)
        return cluster.start()

    yield start
    for cluster in reversed(clusters):
        with contextlib.suppress(subprocess.CalledProcessError):
            cluster.stop()
        shutil.rmtree(cluster.home, ignore_errors=True)


@pytest.fixture(scope="session")
def template_db(database_url: str) -> Iterator[str]:
    """A database built by every migration plus the code layer, used as a template."""
    db.ensure_roles()
    db.drop_database(TEMPLATE)
    db.ensure_database(TEMPLATE)
    db.migrate(TEMPLATE)
    yield TEMPLATE
    db.drop_database(TEMPLATE)


@pytest.fixture(scope="session")
def make_db(template_db: str) -> Iterator[Callable[[], str]]:
    """Factory of fresh databases cloned from the template; all dropped at the end."""
    created: list[str] = []

    def make() -> str:
        name = f"kitsu_test_{uuid.uuid4().hex[:12]}"
        db.ensure_database(name, template=template_db)
        created.append(name)
        return name

    yield make
    for name in created:
        db.drop_database(name)


@pytest.fixture
def fresh_db(make_db: Callable[[], str]) -> str:
    return make_db()


@pytest.fixture(scope="module")
def module_db(make_db: Callable[[], str]) -> str:
    return make_db()


def owner_connect(dbname: str, **kwargs: object) -> psycopg.Connection:
    """Connection as kitsu_owner (bypasses RLS): for seeding and inspecting test data."""
    return psycopg.connect(db.role_url(dbname, "kitsu_owner"), **kwargs)  # type: ignore[arg-type]


@pytest.fixture
def conn(template_db: str) -> Iterator[psycopg.Connection]:
    """A transaction on the template database that is always rolled back."""
    with owner_connect(template_db) as c, c.transaction(force_rollback=True):
        yield c


def as_role(conn: psycopg.Connection, role: str, user_id: uuid.UUID | None = None,
            session_id: uuid.UUID | None = None) -> None:
    """Act as PostgREST would: SET ROLE plus the request.jwt.claims of a token."""
    claims: dict[str, str] = {"role": role}
    if user_id:
        claims["sub"] = str(user_id)
    if session_id:
        claims["sid"] = str(session_id)
    conn.execute("select set_config('role', %s, true), set_config('request.jwt.claims', %s, true)",
                 (role, json.dumps(claims)))


# --- tokens ------------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def signing_key() -> str:
    return keys.generate_private_pem()


@pytest.fixture(scope="session")
def jwks_json(signing_key: str) -> str:
    return keys.jwks_json({TEST_KID: signing_key})


@pytest.fixture(scope="session")
def mint(signing_key: str) -> Callable[..., str]:
    """Mint an ES256 access token the way auth_service does (tests of the foundation)."""

    def mint_token(sub: uuid.UUID | str | None, sid: uuid.UUID | str | None, *, role: str = "web_user",
                   ttl: int = 900, key: str | None = None, kid: str = TEST_KID, **extra: object) -> str:
        now = int(time.time())
        claims: dict[str, object] = {"role": role, "aud": "kitsu", "iss": "kitsu-auth",
                                     "iat": now, "exp": now + ttl}
        if sub is not None:
            claims["sub"] = str(sub)
        if sid is not None:
            claims["sid"] = str(sid)
        claims.update(extra)
        return jwt.encode(claims, key or signing_key, algorithm="ES256", headers={"kid": kid})

    return mint_token


# --- PostgREST ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def start_postgrest(jwks_json: str) -> Iterator[Callable[..., services.Service]]:
    """Factory: a real PostgREST 12.0.2 process on free ports for a database. Stopped when the
    module ends, so the suite never holds more pools than one module needs (max_connections)."""
    started: list[services.Service] = []
    LOG_DIR.mkdir(parents=True, exist_ok=True)

    def start(dbname: str, **options: object) -> services.Service:
        options.setdefault("jwks_json", jwks_json)
        service = services.postgrest(dbname, log_path=LOG_DIR / f"postgrest-{dbname}.log", **options)
        started.append(service.start())
        return service.wait_ready()

    yield start
    for service in started:
        service.stop()


@pytest.fixture(scope="module")
def api_db(make_db: Callable[[], str]) -> str:
    """A database for one test module's PostgREST."""
    return make_db()


@pytest.fixture(scope="module")
def postgrest(api_db: str, start_postgrest: Callable[..., services.Service]) -> services.Service:
    return start_postgrest(api_db)


# --- the gateway (tests/gateway, tests/browser) ------------------------------------------------

@dataclass
class Edge:
    """nginx with the gateway configuration in front of real PostgREST and auth_service processes
    (two uvicorn workers each; ``replicas`` of them, balanced) on one database seeded with
    published titles and a draft."""

    url: str
    db: str
    postgrest: services.Service
    auth: services.Service
    gateway: services.Service
    published: list[uuid.UUID]
    draft: uuid.UUID
    postgrests: list[services.Service] = field(default_factory=list)
    auths: list[services.Service] = field(default_factory=list)

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

    def start(postgrest: services.Service | list[services.Service], postgrest_admin: str | list[str],
              auth: services.Service | list[services.Service], *, wait: bool = True,
              catalog_replica: services.Service | None = None, **env: str) -> services.Service:
        run_dir = tmp_path_factory.mktemp("gateway")
        gateway = gateway_process(postgrest=postgrest, postgrest_admin=postgrest_admin, auth=auth,
                                  catalog_replica=catalog_replica, run_dir=run_dir, port=services.free_port(), env=env,
                                  log_path=LOG_DIR / f"gateway-{run_dir.name}.log")
        started.append(gateway.start())
        return gateway.wait_ready(timeout=20) if wait else gateway

    yield start
    for gateway in started:
        gateway.stop()


@pytest.fixture(scope="module")
def start_edge(make_db, start_postgrest, start_gateway, signing_key) -> Iterator[Callable[..., Edge]]:
    """Factory: a fresh seeded database with PostgREST, auth_service and the gateway in front;
    ``env`` sets the edge (CORS_ALLOWED_ORIGINS, GATEWAY_*), ``auth_env`` adds to auth_service's
    environment (LOG_FORMAT). Stopped when the module ends."""
    # imported here: tests/auth_service/conftest.py imports this module
    from tests.auth_service.conftest import CHEAP_HASHING

    auths: list[services.Service] = []

    def start(auth_env: dict[str, str] | None = None, replicas: int = 1, **env: str) -> Edge:
        dbname = make_db()
        with owner_connect(dbname) as conn:
            published = [create_anime(conn, f"Gateway title {i}", episodes=2) for i in range(5)]
            draft = create_anime(conn, "Hidden draft", state="draft")
        admin_ports = [services.free_port() for _ in range(replicas)]
        postgrests = [start_postgrest(dbname, admin_port=port) for port in admin_ports]
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        started = []
        for index in range(replicas):
            auth = auth_process(dbname, port=services.free_port(), workers=2, env={
                **CHEAP_HASHING,
                "AUTH_JWT_KEYS": json.dumps({TEST_KID: signing_key}),
                "AUTH_TRUSTED_PROXIES": "127.0.0.1/32",  # the gateway, the only proxy auth_service trusts
                "AUTH_PURGE_INTERVAL": "3600",
                **(auth_env or {}),
            }, log_path=LOG_DIR / f"auth-gateway-{dbname}-{index}.log").start()
            auths.append(auth)
            started.append(auth)
        for auth in started:
            auth.wait_ready(timeout=60)
        gateway = start_gateway(postgrests, [f"127.0.0.1:{port}" for port in admin_ports], started, **env)
        assert gateway.url
        return Edge(gateway.url, dbname, postgrests[0], started[0], gateway, published, draft, postgrests, started)

    yield start
    for auth in auths:
        auth.stop()
