"""The Prometheus side of contract §14: the alert rules load (`promtool check rules`), each
alert fires on the series it is meant for and not on healthy ones (`promtool test rules`), both
configurations (make run's rendered one, compose's) pass `promtool check config`, and a broken
rule or a wrong threshold is caught by the same checks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ops import monitoring

PROMTOOL = shutil.which("promtool")
RULES_DIR = monitoring.RULES.parent

pytestmark = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package prometheus)")


def promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, cwd=cwd)


def test_alert_rules_load_and_fire_as_intended():
    checked = promtool("check", "rules", str(monitoring.RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 10 rules found" in checked.stdout
    tested = promtool("test", "rules", "rules_test.yml", cwd=RULES_DIR)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_of_the_issue_is_there():
    text = monitoring.RULES.read_text()
    for alert in ("KitsuAuthErrorRate", "KitsuAuthLatencyP95", "KitsuQueueAge", "KitsuReplicaLag",
                  "KitsuConnectionSaturation", "KitsuTargetDown", "KitsuMailBacklog"):
        assert f"alert: {alert}\n" in text, alert


def test_a_broken_rule_is_refused(tmp_path):
    broken = monitoring.RULES.read_text().replace(
        "max by (queue) (ingest_queue_oldest_todo_age_seconds) > 600",
        "max by (queue) (ingest_queue_oldest_todo_age_seconds > 600")  # unbalanced parenthesis
    assert broken != monitoring.RULES.read_text()
    (tmp_path / "rules.yml").write_text(broken)
    result = promtool("check", "rules", str(tmp_path / "rules.yml"))
    assert result.returncode != 0
    assert "KitsuQueueAge" in result.stdout + result.stderr or "parse error" in result.stdout + result.stderr


def test_a_wrong_threshold_is_caught_by_the_rule_tests(tmp_path):
    """The unit tests are not vacuous: an alert that no longer fires where it should fails them."""
    shutil.copy(RULES_DIR / "rules_test.yml", tmp_path / "rules_test.yml")
    (tmp_path / "rules.yml").write_text(monitoring.RULES.read_text().replace(
        "max by (replica) (kitsu_db_replica_replay_lag_seconds) > 30",
        "max by (replica) (kitsu_db_replica_replay_lag_seconds) > 300"))
    result = promtool("test", "rules", "rules_test.yml", cwd=tmp_path)
    assert result.returncode != 0
    assert "KitsuReplicaLag" in result.stdout + result.stderr


def test_make_run_configuration_is_valid(tmp_path):
    text = monitoring.config(auth=["http://127.0.0.1:8000"], workers=["http://127.0.0.1:9101", "http://127.0.0.1:9102"],
                             postgrest_admin=["http://127.0.0.1:3001"])
    (tmp_path / "prometheus.yml").write_text(text)
    result = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 10 rules found" in result.stdout


def test_compose_configuration_is_valid(tmp_path):
    # compose mounts ops/prometheus at /etc/kitsu-prometheus; checked here with the path made local
    text = (RULES_DIR / "compose.yml").read_text().replace("/etc/kitsu-prometheus/", str(RULES_DIR) + "/")
    (tmp_path / "prometheus.yml").write_text(text)
    result = promtool("check", "config", str(tmp_path / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 10 rules found" in result.stdout


def test_a_broken_configuration_is_refused(tmp_path):
    (tmp_path / "prometheus.yml").write_text(
        monitoring.config(auth=["http://127.0.0.1:8000"], workers=[], postgrest_admin=[]).replace(
            '"scrape_interval"', '"scrape_intervall"'))
    assert promtool("check", "config", str(tmp_path / "prometheus.yml")).returncode != 0
