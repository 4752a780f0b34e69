"""The connection budget's arithmetic (ops/budget.py): what each layout costs, when PgBouncer is
chosen, and that a configuration over budget is refused with the figures. The process-level
proof (the layout started, pg_stat_activity counted under load) is tests/test_scaling.py."""

from __future__ import annotations

import pytest

from ops import budget


def plan(env: dict[str, str], max_connections: int = 100, installed: bool = True) -> budget.Plan:
    return budget.plan(budget.Settings.from_env(env), max_connections=max_connections, reserved=3,
                       pgbouncer_installed=installed)


def test_the_default_layout_is_direct_and_every_line_is_counted():
    layout = plan({})
    # PostgREST pool 20 + its listener, auth 2 workers x 10, one worker 8 + 4, headroom 3 + 7
    assert layout.lines == {"postgrest": 21, "auth_service": 20, "ingest workers": 12, "headroom": 10}
    assert (layout.pooled, layout.total) == (False, 63)
    assert "connections: 63 of max_connections 100 (direct" in layout.describe()


def test_replicas_over_budget_go_through_pgbouncer_and_workers_stay_direct():
    layout = plan({"PGRST_REPLICAS": "2", "AUTH_REPLICAS": "2"})  # direct: 42 + 40 + 12 + 10 = 104
    assert layout.pooled
    assert layout.lines == {"pgbouncer": 20, "ingest workers": 12, "headroom": 10}


def test_a_configuration_over_budget_either_way_is_refused_with_its_figures():
    with pytest.raises(budget.OverBudget, match="connections: 62 of max_connections 60"):
        plan({"PGRST_REPLICAS": "2", "AUTH_REPLICAS": "2", "PGBOUNCER_POOL_SIZE": "20"}, max_connections=60)
    with pytest.raises(budget.OverBudget, match=r"connections: 104 of max_connections 100 \(direct"):
        plan({"PGRST_REPLICAS": "2", "AUTH_REPLICAS": "2", "PGBOUNCER": "0"})
    with pytest.raises(budget.OverBudget, match="pgbouncer is not installed"):
        plan({"PGRST_REPLICAS": "2", "AUTH_REPLICAS": "2"}, installed=False)
    with pytest.raises(budget.OverBudget, match="not installed"):
        plan({"PGBOUNCER": "1"}, installed=False)


def test_pgbouncer_on_request_and_bad_values_refused():
    assert plan({"PGBOUNCER": "1"}).pooled
    for name, value in (("PGBOUNCER", "yes"), ("PGRST_REPLICAS", "0"), ("INGEST_WORKERS", "-1")):
        with pytest.raises(ValueError, match=name):
            budget.Settings.from_env({name: value})


def test_compose_defaults_fit_the_official_image_max_connections():
    # postgres:15 keeps max_connections = 100; compose's pools are make run's (tests/test_compose.py)
    assert plan({}, max_connections=100).total <= 100


def test_compose_writes_the_same_pgbouncer_configuration_as_make_run(tmp_path):
    import subprocess
    import sys

    from database.build import ROOT

    env = {"PATH": "/usr/bin:/bin", "KITSU_DB": "kitsu", "DATABASE_URL": "postgresql://postgres:pw@db:5432/postgres",
           "AUTHENTICATOR_PASSWORD": "a-secret", "AUTH_SERVICE_DB_PASSWORD": "b-secret", "PGBOUNCER_POOL_SIZE": "7"}
    result = subprocess.run([sys.executable, "-m", "database", "pgbouncer-config", str(tmp_path / "pgb")], cwd=ROOT,
                            env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    ini = (tmp_path / "pgb" / "pgbouncer.ini").read_text()
    for line in ("kitsu = host=db port=5432 dbname=kitsu", "listen_addr = 0.0.0.0", "listen_port = 6432",
                 "pool_mode = transaction", "default_pool_size = 7", "max_db_connections = 14",
                 "auth_type = scram-sha-256"):
        assert line in ini.splitlines(), (line, ini)
    users = tmp_path / "pgb" / "userlist.txt"
    assert users.read_text() == '"authenticator" "a-secret"\n"auth_service" "b-secret"\n'
    assert oct(users.stat().st_mode & 0o777) == "0o600"
