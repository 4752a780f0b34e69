"""The streaming replica (issue 14, contract §14) on clusters the test owns: a primary built by the
migrations, a replica made from it by pg_basebackup, a PostgREST on each and the gateway in
front. Anonymous catalog reads land on the replica (its pg_stat_activity and the access log), signed-in
reads and writes never do, and the gateway falls back to the primary when the replica lags past
its bound or stops - and returns to it once it is back."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import psycopg
import pytest

from database import build as db
from ops import embedded_pg, services
from ops.launch import auth_process, role_url_on
from tests.conftest import LOG_DIR, TEST_KID
from tests.helpers import create_anime
from tests.test_make_run import start_run, stop_run

MAX_LAG = 2.0  # seconds, PGRST_APP_SETTINGS_REPLICA_MAX_LAG of the replica's PostgREST
PASSWORD = "correct horse battery staple"
CATALOG = {"select": "id,title", "order": "title"}


def url_on(cluster: embedded_pg.Cluster, dbname: str, role: str) -> str:
    return role_url_on(f"127.0.0.1:{cluster.port}", dbname, role)


@dataclass
class Layout:
    primary: embedded_pg.Cluster
    replica: embedded_pg.Cluster
    dbname: str
    primary_api: services.Service
    replica_api: services.Service
    gateway: services.Service

    def address(self, service: services.Service) -> str:
        return str(service.url).removeprefix("http://")

    def access_log(self) -> list[dict[str, object]]:
        path = self.gateway.log_path.with_name(self.gateway.log_path.stem + "-access.log")  # type: ignore[union-attr]
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def replica_last_request(self) -> object:
        """When PostgREST's connections on the replica last started a statement (its
        pg_stat_activity: shared memory, current at once, unlike the cumulative statistics)."""
        with psycopg.connect(url_on(self.replica, self.dbname, "postgres"), autocommit=True) as conn:
            return conn.execute("select max(query_start) from pg_stat_activity "
                                "where datname = %s and usename = 'authenticator'", (self.dbname,)).fetchone()[0]

    def replica_sql(self, statement: str) -> object:
        with psycopg.connect(url_on(self.replica, self.dbname, "postgres"), autocommit=True) as conn:
            return conn.execute(statement).fetchone()[0]  # type: ignore[index]


@pytest.fixture(scope="module")
def layout(database_url, private_cluster, start_postgrest, start_gateway, signing_key) -> Iterator[Layout]:
    from tests.auth_service.conftest import CHEAP_HASHING

    primary = private_cluster()
    dbname = f"kitsu_replica_{uuid.uuid4().hex[:8]}"
    saved = database_url
    os.environ["DATABASE_URL"] = primary.url  # the database build runs on the test's primary
    try:
        db.setup(dbname)
    finally:
        os.environ["DATABASE_URL"] = saved
    with psycopg.connect(url_on(primary, dbname, "kitsu_owner")) as conn:
        for number in range(5):
            create_anime(conn, f"Replicated title {number}", episodes=1)
    replica = private_cluster(standby_of=primary)
    primary_api = start_postgrest(dbname, db_uri=url_on(primary, dbname, "authenticator"))
    replica_api = start_postgrest(dbname, db_uri=url_on(replica, dbname, "authenticator"), replica_max_lag=MAX_LAG)
    auth = auth_process(dbname, port=services.free_port(), workers=1, env={
        **CHEAP_HASHING, "AUTH_DATABASE_URL": url_on(primary, dbname, "auth_service"),
        "AUTH_JWT_KEYS": json.dumps({TEST_KID: signing_key}), "AUTH_TRUSTED_PROXIES": "127.0.0.1/32",
        "AUTH_PURGE_INTERVAL": "3600"}, log_path=LOG_DIR / f"auth-{dbname}.log").start()
    try:
        auth.wait_ready(timeout=60)
        primary_admin = str(primary_api.env["PGRST_ADMIN_SERVER_PORT"])
        gateway = start_gateway(primary_api, f"127.0.0.1:{primary_admin}", auth, catalog_replica=replica_api,
                                GATEWAY_CACHE_SECONDS="0")  # every read reaches a PostgREST
        yield Layout(primary, replica, dbname, primary_api, replica_api, gateway)
    finally:
        auth.stop()


def answered_by(layout: Layout, since: int) -> list[str]:
    """The upstream that finally answered each request after access-log line ``since``."""
    return [str(line["upstream"]).split(", ")[-1] for line in layout.access_log()[since:]]


def replica_answers(layout: Layout) -> bool:
    """Does an anonymous catalog read through the gateway come from the replica now?"""
    since = len(layout.access_log())
    assert httpx.get(f"{layout.gateway.url}/rest/anime", params=CATALOG).status_code == 200
    return answered_by(layout, since) == [layout.address(layout.replica_api)]


def wait_until(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_anonymous_reads_land_on_the_replica_and_signed_in_ones_and_writes_never(layout: Layout):
    with httpx.Client(base_url=str(layout.gateway.url), timeout=10) as client:
        before, since = layout.replica_last_request(), len(layout.access_log())
        for _ in range(10):
            anime = client.get("/rest/anime", params=CATALOG)
            assert anime.status_code == 200 and len(anime.json()) == 5
        assert client.get("/rest/rpc/search_anime", params={"q": "replicated"}).status_code == 200
        assert answered_by(layout, since) == [layout.address(layout.replica_api)] * 11
        after = layout.replica_last_request()
        assert after is not None and (before is None or after > before)

        email = f"replica-{uuid.uuid4().hex[:8]}@example.test"
        assert client.post("/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
        token = client.post("/auth/login", json={"email": email, "password": PASSWORD}).json()["access_token"]
        signed_in = {"Authorization": f"Bearer {token}"}
        first = client.get("/rest/anime", params={"select": "id", "limit": 1}).json()[0]["id"]
        before, since = layout.replica_last_request(), len(layout.access_log())
        for _ in range(5):
            assert client.get("/rest/anime", params=CATALOG, headers=signed_in).status_code == 200
            assert client.get("/rest/favorites", headers=signed_in).status_code == 200
        assert client.post("/rest/favorites", json={"anime_id": first}, headers=signed_in).status_code == 201
        assert client.post("/rest/rpc/search_anime", json={"q": "replicated"}).status_code == 200
        assert answered_by(layout, since) == [layout.address(layout.primary_api)] * 12
        assert layout.replica_last_request() == before  # not one statement on the replica
    # the favorite reached the replica by streaming, as the owner sees it there
    wait_until(lambda: layout.replica_sql("select count(*) from data.favorites") == 1)


def test_past_the_lag_bound_reads_fall_back_to_the_primary(layout: Layout):
    assert layout.replica_sql("select lag_seconds from private.replication_status") == 0
    layout.replica_sql("select pg_wal_replay_pause()::text")
    try:
        with psycopg.connect(url_on(layout.primary, layout.dbname, "kitsu_owner")) as conn:
            create_anime(conn, "Written while the replica is paused", episodes=1)
        wait_until(lambda: layout.replica_sql("select lag_seconds from private.replication_status") > MAX_LAG)
        since = len(layout.access_log())
        with httpx.Client(base_url=str(layout.gateway.url), timeout=10) as client:
            for _ in range(5):
                anime = client.get("/rest/anime", params=CATALOG)
                assert anime.status_code == 200 and len(anime.json()) == 6  # the primary's data
            # the replica's own answer, asked directly: 503 replica_lagging
            direct = httpx.get(f"{layout.replica_api.url}/anime", params=CATALOG)
            assert direct.status_code == 503 and direct.json()["code"] == "replica_lagging"
        assert set(answered_by(layout, since)) == {layout.address(layout.primary_api)}
    finally:
        layout.replica_sql("select pg_wal_replay_resume()::text")
    wait_until(lambda: layout.replica_sql("select lag_seconds from private.replication_status") == 0)
    # back on the replica once nginx's fail_timeout (2 s) is over (and any WAL still in flight
    # after the quiet spell is replayed: the lag is an upper bound, see sql/private/replica.sql)
    wait_until(lambda: replica_answers(layout))


def test_a_stopped_replica_falls_back_to_the_primary_and_is_used_again_once_back(layout: Layout):
    layout.replica.stop()
    try:
        since = len(layout.access_log())
        with httpx.Client(base_url=str(layout.gateway.url), timeout=10) as client:
            for _ in range(10):
                anime = client.get("/rest/anime", params=CATALOG)
                assert anime.status_code == 200 and len(anime.json()) == 6
        assert set(answered_by(layout, since)) == {layout.address(layout.primary_api)}
    finally:
        layout.replica.start()

    wait_until(lambda: replica_answers(layout), timeout=60)


def test_make_run_with_a_replica_routes_anonymous_reads_to_it(layout: Layout, tmp_path):
    # the same clusters and database (set up, catalog not empty: no first sync)
    env = {**os.environ, "DATABASE_URL": layout.primary.url, "READ_REPLICA_URL": layout.replica.url,
           "KITSU_DB": layout.dbname, "KITSU_ENV_FILE": str(tmp_path / ".env"), "KITSU_RUN_DIR": str(tmp_path),
           "GATEWAY_CACHE_SECONDS": "0", "INGEST_WORKERS": "1", **{
               name: str(services.free_port()) for name in ("PGRST_SERVER_PORT", "PGRST_ADMIN_SERVER_PORT",
                                                            "AUTH_PORT", "INGEST_UPSTREAM_PORT", "GATEWAY_PORT")}}
    process, urls, _ = start_run(env)
    try:
        # make run's setup wrote to the primary; once replayed, a quiet primary is not a lagging one
        wait_until(lambda: layout.replica_sql("select lag_seconds from private.replication_status") == 0)
        time.sleep(1.0)
        assert layout.replica_sql("select lag_seconds from private.replication_status") == 0
        for _ in range(3):
            assert httpx.get(f"{urls['gateway']}/rest/anime", params=CATALOG).status_code == 200
        assert httpx.get(f"{urls['gateway']}/rest/favorites").status_code == 401  # not a catalog path: primary
    finally:
        output = stop_run(process)
    assert output.rstrip().endswith("stopped"), output
    lines = [json.loads(line) for line in (tmp_path / "logs" / "gateway-access.log").read_text().splitlines()]
    assert [line["upstream"] for line in lines if line["path"] == "/anime"] == \
        [urls["api_replica"].removeprefix("http://")] * 3
    assert [line["upstream"] for line in lines if line["path"] == "/favorites"] == \
        [urls["api"].removeprefix("http://")]
