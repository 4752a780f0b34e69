"""compose.yaml cannot run here (no docker engine) but can be checked: `docker-compose config`
(Debian's docker-compose, no engine needed) validates and renders it."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from database import build as db

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
    for service in ("db:", "migrate:", "postgrest:", "auth:", "worker:", "upstream:", "gateway-config:", "gateway:"):
        assert f"\n  {service}" in result.stdout
    assert "postgrest/postgrest:v12.0.2" in result.stdout
    assert "nginx:1.22" in result.stdout  # the same nginx as Debian 12's, which make run uses
    assert "postgres:15" in result.stdout


@pytest.mark.parametrize("missing", SECRETS)
def test_compose_refuses_to_start_without_a_secret(tmp_path, missing):
    result = compose_config(tmp_path, {name: "secret-value" for name in SECRETS if name != missing})
    assert result.returncode != 0
    assert missing in result.stderr


# what may differ: where things are (URIs, hosts, ports, keys) and the CORS list of a deployment
DEPLOYMENT_SPECIFIC = {"PGRST_DB_URI", "PGRST_JWT_SECRET", "PGRST_SERVER_HOST", "PGRST_SERVER_PORT",
                       "PGRST_ADMIN_SERVER_PORT", "PGRST_SERVER_CORS_ALLOWED_ORIGINS"}


def compose_postgrest_env(tmp_path) -> dict[str, str]:
    """The postgrest service's environment as `docker-compose config` renders it (flat YAML)."""
    result = compose_config(tmp_path, {name: "secret-value" for name in SECRETS})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    start = lines.index("  postgrest:")
    env_at = next(i for i in range(start, len(lines)) if lines[i] == "    environment:")
    environment = {}
    for line in lines[env_at + 1:]:
        if not line.startswith("      "):
            break
        key, _, value = line.strip().partition(": ")
        environment[key] = value.strip("'\"")
    return {k: v for k, v in environment.items() if k not in DEPLOYMENT_SPECIFIC}


def test_compose_configures_postgrest_as_make_run_does(tmp_path):
    from ops import services

    ours = services.postgrest_env("kitsu", jwks_json="{}", port=1, admin_port=2)
    ours = {k: v for k, v in ours.items() if k not in DEPLOYMENT_SPECIFIC}
    assert compose_postgrest_env(tmp_path) == ours


def test_the_agreement_test_sees_a_drift(tmp_path):
    from ops import services

    drifted = services.postgrest_env("kitsu", jwks_json="{}", port=1, admin_port=2, pool=7)
    assert compose_postgrest_env(tmp_path) != {k: v for k, v in drifted.items() if k not in DEPLOYMENT_SPECIFIC}


def service_block(rendered: str, service: str) -> str:
    lines = rendered.splitlines()
    start = lines.index(f"  {service}:")
    # the next line indented by exactly two spaces starts the next service
    end = next((i for i in range(start + 1, len(lines)) if lines[i][:2] == "  " and lines[i][2] != " "), len(lines))
    return "\n".join(lines[start:end])


def test_compose_scales_postgrest_and_auth_as_make_run_does(tmp_path):
    secrets = {name: "secret-value" for name in SECRETS}
    default = compose_config(tmp_path, secrets)
    assert default.returncode == 0, default.stderr
    for service in ("postgrest", "auth"):
        assert "replicas: 1" in service_block(default.stdout, service)
    scaled = compose_config(tmp_path, {**secrets, "PGRST_REPLICAS": "2", "AUTH_REPLICAS": "3",
                                       "PGRST_SERVER_PORT_LAST": "3001", "PGRST_ADMIN_SERVER_PORT": "3101",
                                       "PGRST_ADMIN_SERVER_PORT_LAST": "3102", "AUTH_PORT_LAST": "8002"})
    assert scaled.returncode == 0, scaled.stderr
    postgrest, auth = service_block(scaled.stdout, "postgrest"), service_block(scaled.stdout, "auth")
    assert "replicas: 2" in postgrest and "published: 3000-3001" in postgrest and "published: 3101-3102" in postgrest
    assert "replicas: 3" in auth and "published: 8000-8002" in auth


def test_compose_pools_the_web_logins_through_pgbouncer_on_request(tmp_path):
    secrets = {name: "secret-value" for name in SECRETS}
    pooled = {**secrets, "WEB_DB_HOST": "pgbouncer", "WEB_DB_PORT": "6432", "PGRST_DB_PREPARED_STATEMENTS": "false",
              "PGRST_DB_CHANNEL_ENABLED": "false", "AUTH_DB_PREPARED_STATEMENTS": "false"}
    shutil.copy(db.ROOT / "compose.yaml", tmp_path / "compose.yaml")
    result = subprocess.run(["docker-compose", "-f", str(tmp_path / "compose.yaml"), "--profile", "pooled", "config"],
                            env={"PATH": "/usr/bin:/bin", **pooled}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    pgbouncer = service_block(result.stdout, "pgbouncer")
    assert "target: pooler" in pgbouncer and "pgbouncer-config" in pgbouncer
    postgrest, auth = service_block(result.stdout, "postgrest"), service_block(result.stdout, "auth")
    assert "@pgbouncer:6432/kitsu" in postgrest and "PGRST_DB_PREPARED_STATEMENTS: \"false\"" in postgrest
    assert "@pgbouncer:6432/kitsu" in auth and "AUTH_DB_PREPARED_STATEMENTS: \"false\"" in auth
    assert "@db:5432/kitsu" in service_block(result.stdout, "worker")  # workers LISTEN: never pooled
