"""Ingest configuration: environment only (every variable is in .env.example), validated at start-up.

A blank variable means its default, as an unset one does (.env.example and compose list every
variable, many of them empty). A bad value stops the worker at start-up with a pydantic error
naming the variable. Cron expressions are read once, when ``loaded`` is built at import
(contract §8): they decide when a periodic tick is deferred; the database settings
(data.ingest_settings) decide whether a tick does any work.
"""

from __future__ import annotations

from typing import Annotated, Any

import croniter  # type: ignore[import-untyped]  # Procrastinate's cron parser (a dependency of it)
from pydantic import (
    AfterValidator,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from database.build import database_name, role_url

SHIKIMORI_URL = "https://shikimori.one"
KODIK_URL = "https://kodikapi.com"
DEFAULT_USER_AGENT = "Kitsu/1.0 (Kitsu catalog ingest; +https://github.com/kitsu-platform)"


def _cron(expression: str) -> str:
    # croniter is what Procrastinate schedules with; checking here names the variable at start-up
    if not croniter.croniter.is_valid(expression):
        raise ValueError(f"not a cron expression: {expression!r}")
    return expression


def _without_trailing_slash(url: str) -> str:
    return url.rstrip("/")


Cron = Annotated[str, AfterValidator(_cron)]
BaseUrl = Annotated[str, AfterValidator(_without_trailing_slash)]


class Settings(BaseSettings):
    """Every ingest variable; ``Settings()`` reads the environment, ``load()`` wraps its errors."""

    # Each field names its variable (validation_alias), so that a validation error names the
    # variable, not the field; the variables share no common prefix to configure instead.
    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore", frozen=True)

    # upstreams
    shikimori_base_url: BaseUrl = Field(default=SHIKIMORI_URL, validation_alias="SHIKIMORI_BASE_URL")
    kodik_base_url: BaseUrl = Field(default=KODIK_URL, validation_alias="KODIK_BASE_URL")
    # a partner token, secret (hidden in reprs); required by the real Kodik when a Kodik sync starts
    kodik_token: SecretStr = Field(default=SecretStr(""), validation_alias="KODIK_TOKEN")
    user_agent: str = Field(default=DEFAULT_USER_AGENT, validation_alias="INGEST_USER_AGENT")

    # HTTP: timeouts (s), retries, exponential backoff base and cap (s)
    connect_timeout: PositiveFloat = Field(default=5.0, validation_alias="INGEST_HTTP_CONNECT_TIMEOUT")
    read_timeout: PositiveFloat = Field(default=30.0, validation_alias="INGEST_HTTP_TIMEOUT")
    retries: NonNegativeInt = Field(default=5, validation_alias="INGEST_HTTP_RETRIES")
    backoff: NonNegativeFloat = Field(default=0.5, validation_alias="INGEST_BACKOFF_SECONDS")
    backoff_max: NonNegativeFloat = Field(default=30.0, validation_alias="INGEST_BACKOFF_MAX_SECONDS")
    prefetch: NonNegativeInt = Field(default=1, validation_alias="INGEST_PREFETCH")  # 0: no page fetched ahead

    # the Procrastinate worker (s)
    heartbeat: PositiveFloat = Field(default=5.0, validation_alias="INGEST_HEARTBEAT_SECONDS")
    stalled_seconds: PositiveFloat = Field(default=30.0, validation_alias="INGEST_STALLED_SECONDS")
    poll_seconds: PositiveFloat = Field(default=1.0, validation_alias="INGEST_POLL_SECONDS")

    # periodic schedules (croniter; an optional 6th field is seconds)
    catalog_cron: Cron = Field(default="*/15 * * * *", validation_alias="INGEST_CATALOG_CRON")
    schedule_cron: Cron = Field(default="*/10 * * * *", validation_alias="INGEST_SCHEDULE_CRON")
    episodes_cron: Cron = Field(default="*/15 * * * *", validation_alias="INGEST_EPISODES_CRON")
    autoupdate_cron: Cron = Field(default="*/5 * * * *", validation_alias="INGEST_AUTOUPDATE_CRON")
    sweep_cron: Cron = Field(default="* * * * * */15", validation_alias="INGEST_SWEEP_CRON")
    # finished queue rows older than INGEST_JOB_RETENTION_HOURS are deleted (data.sync_runs keeps
    # the history)
    purge_cron: Cron = Field(default="17 3 * * *", validation_alias="INGEST_PURGE_CRON")
    job_retention_hours: NonNegativeInt = Field(default=168, validation_alias="INGEST_JOB_RETENTION_HOURS")
    # search recounts the words it corrects typos to (data.catalog_search_words), hourly
    search_words_cron: Cron = Field(default="41 * * * *", validation_alias="INGEST_SEARCH_WORDS_CRON")

    # mail (contract §12): the send_mail task delivers the outbox over SMTP. SMTP_HOST unset: no
    # server to deliver to, so every attempt fails (counted, retried; `make run` starts a sink)
    smtp_host: str = Field(default="", validation_alias="SMTP_HOST")
    smtp_port: int = Field(default=587, ge=1, le=65535, validation_alias="SMTP_PORT")
    smtp_user: str = Field(default="", validation_alias="SMTP_USER")  # empty: no AUTH
    smtp_password: SecretStr = Field(default=SecretStr(""), validation_alias="SMTP_PASSWORD")
    smtp_starttls: bool = Field(default=True, validation_alias="SMTP_STARTTLS")
    smtp_timeout: PositiveFloat = Field(default=10.0, validation_alias="SMTP_TIMEOUT")
    mail_from: str = Field(default="Kitsu <no-reply@kitsu.localhost>", validation_alias="MAIL_FROM")
    # where the links of the mails point (the frontend's origin)
    public_base_url: BaseUrl = Field(default="http://127.0.0.1:8080", validation_alias="PUBLIC_BASE_URL")
    # a failed delivery is retried forever, after base x 2^attempts seconds, at most max
    mail_retry_seconds: PositiveFloat = Field(default=5.0, validation_alias="MAIL_RETRY_SECONDS")
    mail_retry_max_seconds: PositiveFloat = Field(default=600.0, validation_alias="MAIL_RETRY_MAX_SECONDS")
    # metrics and health (ingest/metrics.py): the port defaults to 9100 + the worker's index
    metrics_host: str = Field(default="127.0.0.1", validation_alias="INGEST_METRICS_HOST")
    metrics_port_setting: int | None = Field(default=None, ge=0, le=65535, validation_alias="INGEST_METRICS_PORT")
    worker_index: NonNegativeInt = Field(default=0, validation_alias="INGEST_WORKER_INDEX")

    # unset: the ingest_worker role on KITSU_DB of DATABASE_URL's server (see database_conninfo)
    database_url: SecretStr | None = Field(default=None, validation_alias="INGEST_DATABASE_URL")

    @model_validator(mode="before")
    @classmethod
    def _blank_means_default(cls, values: Any) -> Any:
        # surrounding blanks are dropped, and a blank variable takes its default (compose and
        # .env.example set many variables to nothing)
        if not isinstance(values, dict):
            return values
        stripped = {name: value.strip() if isinstance(value, str) else value for name, value in values.items()}
        return {name: value for name, value in stripped.items() if value != ""}

    def database_conninfo(self) -> str:
        """INGEST_DATABASE_URL, else the ingest_worker role on KITSU_DB of DATABASE_URL's server."""
        if self.database_url is not None:
            return self.database_url.get_secret_value()
        return role_url(database_name(), "ingest_worker")

    def metrics_port(self) -> int:
        """INGEST_METRICS_PORT, else 9100 + INGEST_WORKER_INDEX (contract §14)."""
        return self.metrics_port_setting if self.metrics_port_setting is not None else 9100 + self.worker_index

    def sync_crons(self) -> dict[str, str]:
        """The cron of each sync's periodic tick, by task name."""
        return {
            "sync_catalog": self.catalog_cron,
            "sync_schedule": self.schedule_cron,
            "sync_episodes": self.episodes_cron,
            "autoupdate": self.autoupdate_cron,
        }


class InvalidSettings(RuntimeError):
    """A bad ingest variable; the message is pydantic's, naming each variable and its problem.

    Deliberately not a ValueError (as pydantic's ValidationError is): ``procrastinate --app``
    imports the app inside argparse, which would hide a ValueError behind "invalid load_app
    value"."""


def load() -> Settings:
    """The settings from the environment; raises InvalidSettings for a bad value."""
    try:
        return Settings()
    except ValidationError as exc:
        raise InvalidSettings(str(exc)) from None


# The process's settings, read at import: ingest.tasks registers the periodic ticks with these
# crons when the worker imports it, and a bad value stops the worker before it starts.
loaded = load()
