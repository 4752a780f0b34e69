"""`make run` scaled out (issue 14) on a cluster the test owns, with max_connections = 60: two
PostgREST and two auth_service replicas are over the direct budget, so the web roles go through
PgBouncer (transaction mode) - and under load the server never holds more connections than the
budget allows. A planted configuration over budget is refused before anything starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import psycopg
import pytest

from database import build as db
from ops import services
from ops.launch import pgbouncer_process, role_url_on, server_address
from tests.test_make_run import start_run, stop_run

MAX_CONNECTIONS = 60
PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def small_server(private_cluster):
    return private_cluster(max_connections=MAX_CONNECTIONS)


@pytest.fixture
def scaled_env(small_server, tmp_path):
    env = {**os.environ, "DATABASE_URL": small_server.url, "KITSU_DB": f"kitsu_scale_{uuid.uuid4().hex[:8]}",
           "KITSU_ENV_FILE": str(tmp_path / ".env"), "KITSU_RUN_DIR": str(tmp_path),
           "PGRST_SERVER_PORT": str(services.free_port()), "PGRST_ADMIN_SERVER_PORT": str(services.free_port()),
           "AUTH_PORT": str(services.free_port()), "INGEST_UPSTREAM_PORT": str(services.free_port()),
           "GATEWAY_PORT": str(services.free_port()), "GATEWAY_CACHE_SECONDS": "0",  # every read reaches the db
           "PGRST_REPLICAS": "2", "AUTH_REPLICAS": "2", "AUTH_WORKERS": "2", "INGEST_WORKERS": "1",
           "AUTH_ARGON2_ALLOW_WEAK": "true", "AUTH_ARGON2_TIME_COST": "1", "AUTH_ARGON2_MEMORY_COST": "8",
           "AUTH_ARGON2_PARALLELISM": "1"}
    for variable in ("SHIKIMORI_BASE_URL", "KODIK_BASE_URL", "KODIK_TOKEN", "PGBOUNCER"):
        env.pop(variable, None)
    yield env
    with psycopg.connect(small_server.url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{env["KITSU_DB"]}" with (force)')


def connections(url: str, dbname: str) -> Counter[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute("select coalesce(usename, ''), count(*) from pg_stat_activity "
                            "where backend_type = 'client backend' and datname = %s group by 1", (dbname,)).fetchall()
    return Counter({user: count for user, count in rows})


def test_replicas_over_the_direct_budget_run_through_pgbouncer_within_it(scaled_env, small_server):
    process, urls, lines = start_run(scaled_env)
    dbname = scaled_env["KITSU_DB"]
    try:
        [budget_line] = [line for line in lines if line.startswith("connections:")]
        assert budget_line.startswith(f"connections: 42 of max_connections {MAX_CONNECTIONS} (web roles through "
                                      "PgBouncer"), budget_line
        assert {"pgbouncer", "api_2", "auth_2"} <= urls.keys()

        peak: Counter[str] = Counter()
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                now = connections(small_server.url, dbname)
                for user, count in now.items():
                    peak[user] = max(peak[user], count)
                peak["total"] = max(peak["total"], sum(now.values()))
                time.sleep(0.05)

        sampler = threading.Thread(target=sample)
        sampler.start()
        # load: wrk holds 64 connections on an uncached catalog read while signed-in clients log in
        # (auth_service through PgBouncer: more than 5 statements per connection, so no prepared
        # statement may be left behind) and read their favorites
        catalog = f"{urls['gateway']}/rest/anime?select=id,title&limit=20"
        # (wrk's default 2 s timeout counts a slow answer on a loaded machine as a socket error)
        wrk = subprocess.Popen(["wrk", "-t2", "-c64", "-d10s", "--timeout", "10s", catalog], stdout=subprocess.PIPE,
                               text=True)
        statuses: Counter[int] = Counter()
        with httpx.Client(base_url=urls["gateway"], timeout=30) as client:
            email = f"scale-{uuid.uuid4().hex[:8]}@example.test"
            assert client.post("/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
            while wrk.poll() is None:
                login = client.post("/auth/login", json={"email": email, "password": PASSWORD})
                statuses[login.status_code] += 1
                if login.status_code == 200:
                    token = login.json()["access_token"]
                    favorites = client.get("/rest/favorites", headers={"Authorization": f"Bearer {token}"})
                    statuses[favorites.status_code] += 1
        report = wrk.communicate()[0]
        done.set()
        sampler.join()
        assert set(statuses) == {200}, statuses
        assert statuses[200] >= 20, statuses
        assert "Non-2xx" not in report and "Socket errors" not in report, report
        print(f"peak connections under load: {dict(peak)}; wrk: {report}")
        # the budget, counted: the web roles hold at most PgBouncer's 2 x 10, everything fits
        assert peak["authenticator"] <= 10 and peak["auth_service"] <= 10, peak
        assert peak["total"] <= 42 - 10, peak  # the headroom stays free for operators
        assert peak["authenticator"] >= 2, peak  # the load did reach the database
        # both PostgREST and both auth_service replicas answered through the gateway
        log = Path(scaled_env["KITSU_RUN_DIR"]) / "logs" / "gateway-access.log"
        answered = {json.loads(line)["upstream"] for line in log.read_text().splitlines() if line.strip()}
        wanted = {urls[name].removeprefix("http://") for name in ("api", "api_2", "auth", "auth_2")}
        assert wanted <= answered, answered
    finally:
        output = stop_run(process)
    assert output.rstrip().endswith("stopped"), output


def test_a_configuration_over_budget_is_refused_before_anything_starts(scaled_env):
    planted = {**scaled_env, "PGBOUNCER": "0"}  # 2 x 21 + 2 x 2 x 10 + 12 + 10 = 104 > 60
    result = subprocess.run([sys.executable, "-m", "ops.run"], cwd=db.ROOT, env=planted, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "could not start: over the connection budget: connections: 104 of max_connections 60 (direct" \
        in result.stderr
    assert not (Path(scaled_env["KITSU_RUN_DIR"]) / "logs").exists()  # nothing was started
    with psycopg.connect(scaled_env["DATABASE_URL"]) as conn:
        assert conn.execute("select 1 from pg_database where datname = %s", (planted["KITSU_DB"],)).fetchone() is None


def test_behind_pgbouncer_postgrest_must_not_prepare_statements(make_db, start_postgrest, tmp_path):
    """Why the pooled layout turns prepared statements off: with them on, PostgREST's statements
    prepared on one server connection are missing on the next one PgBouncer hands out."""
    dbname = make_db()
    pgbouncer = pgbouncer_process(dbname, run_dir=tmp_path / "pgbouncer", pool_size=2,
                                  log_path=tmp_path / "pgbouncer.log").start()
    try:
        pgbouncer.wait_ready()
        pooled = role_url_on(server_address(str(pgbouncer.url)), dbname, "authenticator")
        for prepared, want_all_ok in (("true", False), ("false", True)):
            postgrest = start_postgrest(dbname, pool=8, db_uri=pooled, transaction_pooler=True)
            assert postgrest.env["PGRST_DB_PREPARED_STATEMENTS"] == "false"  # what the layout sets
            if prepared == "true":  # planted: the setting the layout must never leave on
                postgrest.stop()
                postgrest.env = {**postgrest.env, "PGRST_DB_PREPARED_STATEMENTS": "true"}
                postgrest.start().wait_ready()
            report = subprocess.run(["wrk", "-t2", "-c16", "-d2s", f"{postgrest.url}/anime?select=id&limit=5"],
                                    capture_output=True, text=True).stdout
            assert ("Non-2xx" not in report) == want_all_ok, (prepared, report)
            postgrest.stop()
    finally:
        pgbouncer.stop()
