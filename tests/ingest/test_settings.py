"""The ingest settings (ingest/settings.py): a blank variable means its default, a bad value fails at
start-up with an error naming the variable, and the worker command shows that error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from database import build as db
from ingest import settings

VARIABLES = [field.validation_alias for field in settings.Settings.model_fields.values()]
PROCRASTINATE = str(Path(sys.executable).with_name("procrastinate"))


@pytest.fixture(autouse=True)
def no_ingest_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        assert isinstance(name, str)
        monkeypatch.delenv(name, raising=False)


def test_every_setting_has_a_default():
    assert settings.Settings() == settings.Settings.model_construct()


@pytest.mark.parametrize("blank", ["", "   "])
def test_blank_variables_take_their_defaults(monkeypatch, blank):
    for name in VARIABLES:
        monkeypatch.setenv(name, blank)
    config = settings.Settings()
    assert config == settings.Settings.model_construct()
    assert config.retries == 5 and config.read_timeout == 30.0 and config.sweep_cron == "* * * * * */15"
    assert config.shikimori_base_url == settings.SHIKIMORI_URL and config.user_agent == settings.DEFAULT_USER_AGENT
    assert config.database_url is None


def test_values_are_trimmed_and_base_urls_lose_their_trailing_slash(monkeypatch):
    monkeypatch.setenv("SHIKIMORI_BASE_URL", " http://127.0.0.1:8765/ ")
    monkeypatch.setenv("KODIK_BASE_URL", "http://127.0.0.1:8765/kodik//")
    monkeypatch.setenv("KODIK_TOKEN", " token ")
    monkeypatch.setenv("INGEST_HTTP_RETRIES", " 2 ")
    monkeypatch.setenv("INGEST_PURGE_CRON", " * * * * * */1 ")
    config = settings.Settings()
    assert config.shikimori_base_url == "http://127.0.0.1:8765"
    assert config.kodik_base_url == "http://127.0.0.1:8765/kodik"
    assert config.kodik_token.get_secret_value() == "token"
    assert config.retries == 2
    assert config.purge_cron == "* * * * * */1"


def test_the_kodik_token_and_database_url_stay_out_of_reprs(monkeypatch):
    monkeypatch.setenv("KODIK_TOKEN", "partner-secret")
    monkeypatch.setenv("INGEST_DATABASE_URL", "postgresql://ingest_worker:db-secret@db/kitsu")
    config = settings.Settings()
    assert "partner-secret" not in repr(config) and "db-secret" not in repr(config)
    assert config.database_conninfo() == "postgresql://ingest_worker:db-secret@db/kitsu"


def test_without_a_database_url_the_worker_connects_as_ingest_worker_on_kitsu_db(monkeypatch):
    monkeypatch.setenv("KITSU_DB", "kitsu_elsewhere")
    assert settings.Settings().database_conninfo() == db.role_url("kitsu_elsewhere", "ingest_worker")


@pytest.mark.parametrize(
    "name, value",
    [
        ("INGEST_HTTP_RETRIES", "abc"),
        ("INGEST_HTTP_RETRIES", "-1"),
        ("INGEST_HTTP_TIMEOUT", "-1"),
        ("INGEST_HTTP_CONNECT_TIMEOUT", "0"),
        ("INGEST_BACKOFF_SECONDS", "-0.5"),
        ("INGEST_POLL_SECONDS", "soon"),
        ("INGEST_JOB_RETENTION_HOURS", "1.5"),
        ("INGEST_SWEEP_CRON", "every 15 seconds"),
        ("INGEST_CATALOG_CRON", "61 * * * *"),
    ],
)
def test_a_bad_value_is_an_error_naming_the_variable(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as failure:
        settings.Settings()
    [error] = failure.value.errors()
    assert error["loc"] == (name,)
    with pytest.raises(settings.InvalidSettings, match=name):
        settings.load()


def test_the_worker_command_stops_at_start_up_naming_the_bad_variable():
    # before connecting anywhere: the settings are read when the app is imported
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(db.ROOT), "INGEST_HTTP_RETRIES": "abc"}
    result = subprocess.run([PROCRASTINATE, "--app=ingest.app", "worker"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode != 0
    assert "InvalidSettings" in result.stderr and "INGEST_HTTP_RETRIES" in result.stderr
    assert "unable to parse string as an integer" in result.stderr
