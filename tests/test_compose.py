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


# services that run for good (not one-shot) and why one has no healthcheck of its own
ONE_SHOT = {"migrate", "gateway-config"}
CHECKED_FROM_OUTSIDE = {"postgrest"}  # the image has no shell; the gateway and Prometheus check it
PROMETHEUS_HEALTHCHECK = """    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9090/-/ready"]
"""


def services_without_healthcheck(tmp_path, compose_text: str) -> set[str]:
    """Long-running services of ``compose_text`` that `docker-compose config` renders without a
    healthcheck (its output: services two-space indented, their keys four)."""
    (tmp_path / "compose.yaml").write_text(compose_text)
    result = subprocess.run(["docker-compose", "-f", str(tmp_path / "compose.yaml"), "config"],
                            env={"PATH": "/usr/bin:/bin", **{name: "secret-value" for name in SECRETS}},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    services: dict[str, list[str]] = {}
    current, in_services = None, False
    for line in result.stdout.splitlines():
        if line == "services:":
            in_services = True
        elif line and not line.startswith(" "):
            in_services = False
        elif in_services and line.startswith("  ") and not line.startswith("   ") and line.endswith(":"):
            current = line.strip().rstrip(":")
            services[current] = []
        elif in_services and current:
            services[current].append(line)
    assert {"worker", "upstream", "prometheus", "auth", "gateway", "db"} <= set(services)
    return {name for name, lines in services.items()
            if name not in ONE_SHOT | CHECKED_FROM_OUTSIDE and "    healthcheck:" not in lines}


def test_every_long_running_service_has_a_healthcheck(tmp_path):
    assert services_without_healthcheck(tmp_path, (db.ROOT / "compose.yaml").read_text()) == set()


def test_the_healthcheck_test_sees_a_service_without_one(tmp_path):
    text = (db.ROOT / "compose.yaml").read_text()
    assert PROMETHEUS_HEALTHCHECK in text
    planted = text.replace(PROMETHEUS_HEALTHCHECK, "    x-healthcheck-removed:\n      test: [\"CMD\"]\n")
    assert services_without_healthcheck(tmp_path, planted) == {"prometheus"}
