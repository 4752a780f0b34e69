"""compose.yaml cannot run here (no docker engine) but can be checked: `docker-compose config`
(Debian's docker-compose, no engine needed) validates and renders it."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from ops import db

SECRETS = ["POSTGRES_PASSWORD", "KITSU_OWNER_PASSWORD", "AUTHENTICATOR_PASSWORD", "AUTH_SERVICE_DB_PASSWORD",
           "INGEST_DB_PASSWORD", "PGRST_JWT_SECRET", "AUTH_JWT_KEYS"]

pytestmark = pytest.mark.skipif(not shutil.which("docker-compose"), reason="docker-compose not installed")


def compose_config(tmp_path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # a copy in an empty folder, so a developer's .env does not fill in what the test leaves out
    shutil.copy(db.ROOT / "compose.yaml", tmp_path / "compose.yaml")
    return subprocess.run(["docker-compose", "-f", str(tmp_path / "compose.yaml"), "config"],
                          env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, text=True)


def test_compose_file_is_valid_and_has_every_service(tmp_path):
    result = compose_config(tmp_path, {name: "secret-value" for name in SECRETS})
    assert result.returncode == 0, result.stderr
    for service in ("db:", "migrate:", "postgrest:", "auth:", "worker:", "upstream:"):
        assert f"\n  {service}" in result.stdout
    assert "postgrest/postgrest:v12.0.2" in result.stdout
    assert "postgres:15" in result.stdout


@pytest.mark.parametrize("missing", SECRETS)
def test_compose_refuses_to_start_without_a_secret(tmp_path, missing):
    result = compose_config(tmp_path, {name: "secret-value" for name in SECRETS if name != missing})
    assert result.returncode != 0
    assert missing in result.stderr
