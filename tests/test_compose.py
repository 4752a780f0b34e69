"""compose.yaml cannot run here (no docker engine) but can be checked: `docker-compose config`
(Debian's docker-compose, no engine needed) validates and renders it."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

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


def compose_postgrest_env(tmp_path, service: str = "postgrest") -> dict[str, str]:
    """A PostgREST service's environment as `docker-compose config` renders it (flat YAML)."""
    result = compose_config(tmp_path, {name: "secret-value" for name in SECRETS})
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    start = lines.index(f"  {service}:")
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


def service_block(rendered: str, name: str) -> str:
    """One service's lines of `docker-compose config` output (two-space indented names)."""
    lines = rendered.splitlines()
    block = []
    for line in lines[lines.index(f"  {name}:") + 1:]:
        if not line.startswith("   "):
            break
        block.append(line)
    return "\n".join(block)


def test_the_mail_sink_is_a_dev_only_service_the_workers_deliver_to(tmp_path):
    """Contract §12: compose gets the `make run` sink (ops/mail_sink.py) under the dev profile,
    and the workers send to it unless SMTP_HOST names a real server."""
    result = compose_config(tmp_path, {name: "secret-value" for name in SECRETS})
    assert result.returncode == 0, result.stderr
    mail = service_block(result.stdout, "mail")
    assert "- ops.mail_sink" in mail and "profiles:\n    - dev" in mail
    worker = service_block(result.stdout, "worker")
    assert "SMTP_HOST: mail" in worker and "- sync,periodic,mail" in worker
    with_server = compose_config(tmp_path, {**{name: "secret-value" for name in SECRETS}, "SMTP_HOST": "smtp.example"})
    assert "SMTP_HOST: smtp.example" in service_block(with_server.stdout, "worker")


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


# services that run for good (not one-shot) and why one has no healthcheck of its own
ONE_SHOT = {"migrate", "gateway-config"}
# the image has no shell; the gateway and Prometheus check postgrest, the gateway's fallback the replica's
CHECKED_FROM_OUTSIDE = {"postgrest", "postgrest-replica"}
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


def replica_config(tmp_path, **extra: str) -> str:
    shutil.copy(db.ROOT / "compose.yaml", tmp_path / "compose.yaml")
    result = subprocess.run(["docker-compose", "-f", str(tmp_path / "compose.yaml"), "--profile", "replica", "config"],
                            env={"PATH": "/usr/bin:/bin", **{name: "secret-value" for name in SECRETS}, **extra},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_compose_has_a_streaming_replica_on_request(tmp_path):
    """The `replica` profile: a second PostgreSQL made by pg_basebackup -R of db, a PostgREST on
    it, and the gateway sending anonymous catalog reads there once CATALOG_REPLICA names it."""
    rendered = replica_config(tmp_path, CATALOG_REPLICA="postgrest-replica:3000")
    replica = service_block(rendered, "db-replica")
    assert "pg_basebackup -h db -U postgres" in replica and "-R -X stream" in replica
    assert "profiles:\n    - replica" in replica and "pgreplica:/var/lib/postgresql/data" in replica
    assert "PGPASSWORD: secret-value" in replica and "user: postgres" in replica
    # both servers read the same access rules, which let the replica connect for replication
    for server in ("db", "db-replica"):
        assert "hba_file=/etc/kitsu-postgres/pg_hba.conf" in service_block(rendered, server)
    api = service_block(rendered, "postgrest-replica")
    assert "@db-replica:5432/kitsu" in api and "profiles:\n    - replica" in api
    assert "- --catalog-replica\n    - postgrest-replica:3000" in service_block(rendered, "gateway-config")
    # without CATALOG_REPLICA the gateway has no replica upstream (nginx would not start without it)
    assert "- --catalog-replica\n    - ''" in service_block(replica_config(tmp_path), "gateway-config")


def test_compose_configures_the_replica_postgrest_as_make_run_does(tmp_path):
    from ops import services

    ours = services.postgrest_env("kitsu", jwks_json="{}", port=1, admin_port=2, replica_max_lag=5)
    ours = {k: v for k, v in ours.items() if k not in DEPLOYMENT_SPECIFIC}
    assert compose_postgrest_env(tmp_path, "postgrest-replica") == ours
    drifted = services.postgrest_env("kitsu", jwks_json="{}", port=1, admin_port=2, replica_max_lag=9)
    assert compose_postgrest_env(tmp_path, "postgrest-replica") != {
        k: v for k, v in drifted.items() if k not in DEPLOYMENT_SPECIFIC}


HBA = db.ROOT / "database" / "compose" / "pg_hba.conf"


@pytest.fixture
def hba_copy():
    """Writes a pg_hba.conf where the server's own user can read it: the checkout may be in a
    directory only its owner enters (a CI clone in a `mktemp -d`), and the private cluster runs
    as postgres."""
    made: list[Path] = []

    def write(text: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix="kitsu-hba-", dir="/tmp")) / "pg_hba.conf"
        path.write_text(text)
        path.parent.chmod(0o755)
        path.chmod(0o644)
        made.append(path.parent)
        return path
    yield write
    for directory in made:
        shutil.rmtree(directory, ignore_errors=True)


def test_the_compose_access_rules_load_and_allow_password_replication(private_cluster, hba_copy):
    """database/compose/pg_hba.conf on a real PostgreSQL 15: it starts with the file, which has
    the replication rule (password, any address, the postgres user); a broken copy is refused."""
    import psycopg

    cluster = private_cluster(settings={"hba_file": str(hba_copy(HBA.read_text()))})
    with psycopg.connect(cluster.url, autocommit=True) as conn:
        rules = conn.execute("select type, database, user_name, address, auth_method, error"
                             " from pg_hba_file_rules").fetchall()
    assert all(rule[5] is None for rule in rules), rules
    assert ("host", ["replication"], ["postgres"], "all", "scram-sha-256", None) in rules


def test_a_broken_compose_access_rule_is_refused(private_cluster, hba_copy):
    broken = hba_copy(HBA.read_text().replace("postgres        all                     scram-sha-256",
                                              "postgres        all                     no-such-method"))
    with pytest.raises(subprocess.CalledProcessError):
        private_cluster(settings={"hba_file": str(broken)})
