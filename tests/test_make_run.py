"""`make run` from the user's side: the real supervisor (ops/run.py) starts every service,
prints `ready:` only once the catalog is served, keeps data across runs, and stops everything
it started on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from ops import db, services


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


@pytest.fixture
def run_env(template_db, tmp_path):
    dbname = f"kitsu_run_{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "KITSU_DB": dbname, "KITSU_ENV_FILE": str(tmp_path / ".env"),
           "KITSU_RUN_DIR": str(tmp_path), "PGRST_SERVER_PORT": str(services.free_port()),
           "PGRST_ADMIN_SERVER_PORT": str(services.free_port()), "AUTH_PORT": str(services.free_port()),
           "INGEST_UPSTREAM_PORT": str(services.free_port()), "INGEST_WORKERS": "2"}
    for variable in ("SHIKIMORI_BASE_URL", "KODIK_BASE_URL", "KODIK_TOKEN"):
        env.pop(variable, None)
    yield env
    db.drop_database(dbname)


def port_open(url: str) -> bool:
    try:
        httpx.get(url, timeout=1)
        return True
    except httpx.HTTPError:
        return False


def test_make_run_serves_a_catalog_and_stops_cleanly(run_env):
    process, urls, _ = start_run(run_env)
    try:
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
    finally:
        output = stop_run(process)
    assert process.returncode == 0 and "stopped" in output
    assert not any(port_open(url) for url in urls.values())

    # a second run keeps the data: no first sync, the favorite is still there
    process, urls, lines = start_run(run_env)
    try:
        assert not any(line.startswith("first sync") for line in lines)
        assert httpx.get(f"{urls['api']}/favorites", headers={"Authorization": f"Bearer {token}"}).json()
    finally:
        stop_run(process)
