"""`make run` from the user's side: the real supervisor (ops/run.py) starts every service,
prints `ready:` only once the catalog is served, keeps data across runs, restarts a process
that dies while the rest keeps serving, and stops everything it started on SIGTERM or SIGINT,
whenever it comes."""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from database import build as db
from ops import services


def start_run(env: dict[str, str]) -> tuple[subprocess.Popen[str], dict[str, str], list[str]]:
    process = subprocess.Popen([sys.executable, "-m", "ops.run"], cwd=db.ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    lines: list[str] = []
    deadline = time.monotonic() + 300
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if line.startswith("ready:"):
            return process, dict(re.findall(r"(\w+)=(\S+)", line)), lines
    process.kill()
    pytest.fail("no ready line:\n" + "".join(lines))


def stop_run(process: subprocess.Popen[str]) -> str:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    return output


def free_base_port(count: int) -> int:
    """A port p with p+1 … p+count free (make run puts worker N's metrics on base + N)."""
    import socket

    while True:
        base = services.free_port()
        try:
            for offset in range(1, count + 1):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue


@pytest.fixture
def run_env(template_db, tmp_path):
    dbname = f"kitsu_run_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "KITSU_DB": dbname, "KITSU_ENV_FILE": str(tmp_path / ".env"),
           "KITSU_RUN_DIR": str(tmp_path), "PGRST_SERVER_PORT": str(services.free_port()),
           "PGRST_ADMIN_SERVER_PORT": str(services.free_port()), "AUTH_PORT": str(services.free_port()),
           "INGEST_UPSTREAM_PORT": str(services.free_port()), "GATEWAY_PORT": str(services.free_port()),
           "INGEST_WORKERS": "2", "MAIL_SINK_PORT": str(services.free_port()),
           "INGEST_METRICS_BASE_PORT": str(free_base_port(2)), "PROMETHEUS_PORT": str(services.free_port())}
    for variable in ("SHIKIMORI_BASE_URL", "KODIK_BASE_URL", "KODIK_TOKEN", "SMTP_HOST"):
        env.pop(variable, None)
    yield env
    db.drop_database(dbname)


def port_open(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
        return True
    except httpx.HTTPError:
        return False


def assert_every_target_is_up(prometheus: str, expected: dict[str, int], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        targets = httpx.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        up: dict[str, int] = {}
        for target in targets:
            if target["health"] == "up":
                up[target["labels"]["job"]] = up.get(target["labels"]["job"], 0) + 1
        if up == expected:
            return
        assert time.monotonic() < deadline, targets
        time.sleep(1)


def test_make_run_serves_a_catalog_and_stops_cleanly(run_env):
    process, urls, lines = start_run(run_env)
    try:
        # the gateway is the one origin, first on the ready line, in front of both services
        assert lines[-1].startswith(f"ready: gateway={urls['gateway']} ")
        through_gateway = httpx.get(f"{urls['gateway']}/rest/anime", params={"select": "id", "limit": 5})
        assert through_gateway.status_code == 200 and len(through_gateway.json()) == 5
        assert httpx.get(f"{urls['gateway']}/health").status_code == 200
        anime = httpx.get(f"{urls['api']}/anime", params={"select": "id,title,poster_url", "limit": 5})
        assert anime.status_code == 200 and len(anime.json()) == 5
        assert httpx.get(f"{urls['auth']}/health").json()["status"] == "ok"
        email = f"run-{uuid.uuid4().hex[:6]}@example.test"
        pair = httpx.post(f"{urls['auth']}/auth/register", json={"email": email, "password": "correct horse 42"})
        assert pair.status_code == 201
        token = pair.json()["access_token"]
        favorite = httpx.post(f"{urls['api']}/favorites", json={"anime_id": anime.json()[0]["id"]},
                              headers={"Authorization": f"Bearer {token}"})
        assert favorite.status_code == 201
        # no SMTP_HOST: the local sink got the verification mail as a file, and logs the reset link
        assert httpx.post(f"{urls['auth']}/auth/password/forgot", json={"email": email}).status_code == 202
        run_dir = Path(run_env["KITSU_RUN_DIR"])
        deadline = time.monotonic() + 60
        while len(list((run_dir / "mail").glob("*.eml"))) < 2 or "/reset-password?token=" not in (
                run_dir / "logs" / "mail.log").read_text():
            assert time.monotonic() < deadline, "the mails did not arrive at the local sink"
            time.sleep(0.2)
        assert email in (run_dir / "logs" / "mail.log").read_text()
        if "prometheus" in urls:  # Debian's prometheus scrapes every service of the run (contract §14)
            assert_every_target_is_up(urls["prometheus"], {"auth_service": 1, "ingest": 2, "postgrest": 1})
    finally:
        output = stop_run(process)
    assert process.returncode == 0 and "stopped" in output
    assert not any(port_open(url) for url in urls.values())
    # logs are readable by their owner only (contract §11)
    logs = list((Path(run_env["KITSU_RUN_DIR"]) / "logs").iterdir())
    assert {"postgrest.log", "auth_service.log", "gateway-access.log", "worker-1.log", "mail.log"} <= {
        p.name for p in logs}
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in logs} == {p.name: "0o600" for p in logs}

    # a second run keeps the data: no first sync, the favorite is still there
    process, urls, lines = start_run(run_env)
    try:
        assert not any(line.startswith("first sync") for line in lines)
        assert httpx.get(f"{urls['api']}/favorites", headers={"Authorization": f"Bearer {token}"}).json()
    finally:
        stop_run(process)


def live_children(run_dir) -> list[int]:
    """Processes started for this run: every child inherits KITSU_RUN_DIR=<its folder>."""
    marker = f"KITSU_RUN_DIR={run_dir}".encode()
    found = []
    for proc in os.listdir("/proc"):
        if proc.isdigit():
            try:
                with open(f"/proc/{proc}/environ", "rb") as environ:
                    if marker in environ.read().split(b"\0"):
                        found.append(int(proc))
            except OSError:
                pass
    return found


def test_sigkilled_worker_comes_back_and_the_sync_finishes_once(run_env):
    run_env = {**run_env, "INGEST_WORKERS": "1", "INGEST_HEARTBEAT_SECONDS": "1", "INGEST_STALLED_SECONDS": "4",
               "INGEST_SWEEP_CRON": "* * * * * */2"}
    process, urls, _ = start_run(run_env)
    dbname = run_env["KITSU_DB"]
    try:
        from ingest import operations as ingest

        since = ingest.latest_run_id(dbname)
        ingest.trigger(dbname, "sync_catalog")
        with psycopg.connect(db.role_url(dbname, "kitsu_owner"), autocommit=True) as conn:
            deadline = time.monotonic() + 60
            while (row := conn.execute("select worker_pid from data.sync_runs where id > %s and status = 'running'",
                                       (since,)).fetchone()) is None:
                assert time.monotonic() < deadline, "the sync never ran"
                time.sleep(0.02)
        os.kill(row[0], signal.SIGKILL)  # the only worker, in the middle of the sync
        # the rest of the platform keeps serving meanwhile
        assert httpx.get(f"{urls['api']}/anime", params={"limit": 1}).status_code == 200
        assert httpx.get(f"{urls['auth']}/health").status_code == 200
        [run] = ingest.wait_runs(dbname, ["sync_catalog"], since_id=since, timeout=120).values()
        assert run["status"] == "succeeded", run
        with psycopg.connect(db.role_url(dbname, "kitsu_owner")) as conn:
            titles, distinct = conn.execute("select count(*), count(distinct shikimori_id) from data.anime").fetchone()
        assert titles == distinct == 300
    finally:
        output = stop_run(process)
    assert "worker-1 exited with signal SIGKILL; restarting" in output and "worker-1 restarted" in output
    assert output.rstrip().endswith("stopped")


def wait_until_catching(pid: int, signum: int, timeout: float = 30.0) -> None:
    """Until the process has a handler for ``signum`` (SigCgt in /proc): before that, the
    interpreter itself is still starting, and a signal gets the kernel's default action, which no
    program can answer. ops/run.py installs its handlers on its first lines."""
    deadline = time.monotonic() + timeout
    while True:
        status = Path(f"/proc/{pid}/status").read_text()
        caught = int(next(line.split()[1] for line in status.splitlines() if line.startswith("SigCgt:")), 16)
        if caught & (1 << (signum - 1)):
            return
        assert time.monotonic() < deadline, "ops.run never installed its signal handlers"
        time.sleep(0.005)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_signal_at_any_moment_stops_everything(run_env, tmp_path, signum):
    rng = random.Random(signum)
    for attempt in range(4):
        env = {**run_env, "KITSU_DB": f"{run_env['KITSU_DB']}_{attempt}"}  # fresh: each run has a first sync
        process = subprocess.Popen([sys.executable, "-m", "ops.run"], cwd=db.ROOT, env=env, text=True,
                                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            # SIGTERM is the last handler ops/run.py installs (SIGINT has Python's own from the start)
            wait_until_catching(process.pid, signal.SIGTERM)
            time.sleep(rng.uniform(0.0, 9.0))  # setting up, starting, first sync or serving
            process.send_signal(signum)
            output, _ = process.communicate(timeout=40)  # the supervisor's deadline is 20 s
        finally:
            if process.poll() is None:
                process.kill()
            db.drop_database(env["KITSU_DB"])
        assert process.returncode == 0, output
        assert output.rstrip().endswith("stopped"), output
        assert live_children(tmp_path) == [], output


def test_without_a_server_make_run_brings_its_own_and_keeps_its_data(run_env):
    # no DATABASE_URL and nothing on the default address: the embedded cluster (this machine's
    # PostgreSQL binaries) in a folder of its own, traversable by the postgres system user
    home = Path(tempfile.mkdtemp(prefix="kitsu-embedded-", dir="/tmp"))
    home.chmod(0o755)
    env = {**run_env, "KITSU_EMBEDDED_PG_DIR": str(home / "pg"),
           "KITSU_DEFAULT_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{services.free_port()}/postgres"}
    env.pop("DATABASE_URL", None)
    try:
        process, urls, lines = start_run(env)
        try:
            assert "database: embedded PostgreSQL 15" in lines[-1]
            assert any(line.startswith("first sync") for line in lines)
            anime = httpx.get(f"{urls['api']}/anime", params={"select": "id", "limit": 5})
            assert anime.status_code == 200 and len(anime.json()) == 5
        finally:
            output = stop_run(process)
        assert process.returncode == 0 and output.rstrip().endswith("stopped")
        assert not (home / "pg" / "data" / "postmaster.pid").exists()  # the cluster stopped too

        process, urls, lines = start_run(env)  # the second run: same cluster, data kept
        try:
            assert not any(line.startswith("first sync") for line in lines)
            assert len(httpx.get(f"{urls['api']}/anime", params={"select": "id", "limit": 5}).json()) == 5
        finally:
            stop_run(process)
        assert not (home / "pg" / "data" / "postmaster.pid").exists()
    finally:
        shutil.rmtree(home, ignore_errors=True)
