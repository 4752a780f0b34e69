"""auth_service configuration: environment only (prefix ``AUTH_``), validated at start-up.

Every variable is listed in ``.env.example`` and ``docs/auth.md``. Secrets (the database URL's
password, the signing keys) have no defaults.
"""

from __future__ import annotations

import ipaddress
import os
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, BeforeValidator, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from auth_service import keys

# OWASP Password Storage Cheat Sheet: argon2id minimum configurations (memory KiB, time cost),
# parallelism 1; any configuration at least as strong as one of these is accepted.
OWASP_ARGON2_MINIMUMS = ((47104, 1), (19456, 2), (12288, 3), (9216, 4), (7168, 5))

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _seconds(value: object) -> object:
    """Durations are plain seconds in the environment ("900", "0.5"); ISO 8601 also works."""
    if isinstance(value, str):
        try:
            return timedelta(seconds=float(value))
        except ValueError:
            return value
    return value


Duration = Annotated[timedelta, BeforeValidator(_seconds)]


def _log_format(value: object) -> object:
    """LOG_FORMAT as observability.logs reads it: empty means text, case and spaces ignored."""
    if isinstance(value, str):
        return value.strip().lower() or "text"
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AUTH_", extra="ignore")

    database_url: SecretStr
    db_pool_min: int = 1
    db_pool_max: int = 10
    db_timeout: float = 5.0
    # false behind a transaction pooler (PgBouncer < 1.21 keeps no prepared statements across
    # transactions): psycopg then never prepares, like PostgREST's db-prepared-statements=false
    db_prepared_statements: bool = True

    # signing keys: AUTH_JWT_KEYS (JSON {kid: PEM}) and/or AUTH_JWT_KEYS_DIR (<kid>.pem files)
    jwt_keys: SecretStr | None = None
    jwt_keys_dir: Path | None = None
    jwt_signing_kid: str | None = None
    jwt_audience: str = "kitsu"
    jwt_issuer: str = "kitsu-auth"
    access_ttl: Duration = timedelta(minutes=15)
    session_ttl: Duration = timedelta(days=30)
    refresh_grace: Duration = timedelta(seconds=10)

    argon2_time_cost: int = 2
    argon2_memory_cost: int = 19456
    argon2_parallelism: int = 1
    argon2_allow_weak: bool = False  # tests only: permits parameters below OWASP's minimum

    # hashing runs in a bounded thread pool per process; beyond the queue: 503
    # default: the cores shared out over the AUTH_WORKERS processes (one hash per core in total)
    hash_concurrency: int = 0
    workers: int = 1
    hash_queue: int = 256
    hash_queue_timeout: float = 10.0
    # admission by expected wait (issue 9): (queued + running) x average hash time / threads
    # must stay <= this, else 503 at once; a count alone let accepted logins outwait the timeout
    hash_max_wait_seconds: float = 2.0

    login_ip_email_limit: int = 5
    login_ip_email_window: Duration = timedelta(seconds=60)
    login_email_limit: int = 20
    login_email_window: Duration = timedelta(hours=1)
    # per client address (IPv6: its /64), checked before hashing: one client cycling through
    # emails or spraying one password over many accounts is refused without costing a hash
    login_ip_limit: int = 30
    login_ip_window: Duration = timedelta(minutes=10)
    refresh_ip_limit: int = 60
    refresh_ip_window: Duration = timedelta(seconds=60)
    register_ip_limit: int = 20
    register_ip_window: Duration = timedelta(hours=1)
    # accounts (contract §12): reset requests per email and per address, resends per account
    forgot_email_limit: int = 5
    forgot_email_window: Duration = timedelta(hours=1)
    forgot_ip_limit: int = 20
    forgot_ip_window: Duration = timedelta(hours=1)
    verify_resend_limit: int = 5
    verify_resend_window: Duration = timedelta(hours=1)
    reset_ttl: Duration = timedelta(minutes=30)
    verification_ttl: Duration = timedelta(days=7)

    trusted_proxies: str = ""  # comma-separated addresses/CIDRs whose X-Forwarded-For is honoured
    cors_origins: str = ""  # comma-separated allowed browser origins
    purge_interval: Duration = timedelta(minutes=5)
    session_retention: Duration = timedelta(days=30)
    expose_worker: bool = False  # tests only: X-Auth-Worker header with the process id
    # shared by every Kitsu process, so no AUTH_ prefix (compose sets json; contract §14)
    log_format: Annotated[Literal["text", "json"], BeforeValidator(_log_format)] = Field(
        default="text", validation_alias=AliasChoices("LOG_FORMAT", "log_format")
    )

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if not self.argon2_allow_weak and not any(
            self.argon2_memory_cost >= m and self.argon2_time_cost >= t
            for m, t in OWASP_ARGON2_MINIMUMS
        ):
            raise ValueError(
                f"argon2 parameters m={self.argon2_memory_cost} t={self.argon2_time_cost} "
                "are below OWASP's minimum (e.g. m=19456 KiB, t=2, p=1)"
            )
        if self.hash_concurrency == 0:
            self.hash_concurrency = max(1, -(-(os.cpu_count() or 1) // max(1, self.workers)))
        if self.argon2_parallelism < 1 or self.hash_concurrency < 1 or self.hash_queue < 0:
            raise ValueError("argon2 parallelism and hash concurrency must be >= 1")
        if self.hash_max_wait_seconds <= 0:
            raise ValueError("AUTH_HASH_MAX_WAIT_SECONDS must be positive")
        for name in ("login_ip_email", "login_email", "login_ip", "refresh_ip", "register_ip",
                     "forgot_email", "forgot_ip", "verify_resend"):
            if getattr(self, f"{name}_limit") < 1 or getattr(self, f"{name}_window") <= timedelta(
                0
            ):
                raise ValueError(f"AUTH_{name.upper()}_LIMIT and _WINDOW must be positive")
        if self.reset_ttl <= timedelta(0) or self.verification_ttl <= timedelta(0):
            raise ValueError("AUTH_RESET_TTL and AUTH_VERIFICATION_TTL must be positive")
        if self.access_ttl <= timedelta(0) or self.session_ttl <= self.access_ttl:
            raise ValueError("AUTH_ACCESS_TTL must be positive and shorter than AUTH_SESSION_TTL")
        self.trusted_networks()  # parse errors surface at start-up
        self.signing_keys()
        return self

    def trusted_networks(self) -> list[Network]:
        return [
            ipaddress.ip_network(item.strip(), strict=False)
            for item in self.trusted_proxies.split(",")
            if item.strip()
        ]

    def cors_origin_list(self) -> list[str]:
        return [item.strip().rstrip("/") for item in self.cors_origins.split(",") if item.strip()]

    def signing_keys(self) -> tuple[dict[str, str], str]:
        """Every private key (kid -> PEM) and the kid that signs new tokens."""
        pems = keys.load_private_keys(
            self.jwt_keys.get_secret_value() if self.jwt_keys else None, self.jwt_keys_dir
        )
        if not pems:
            raise ValueError("no signing key: set AUTH_JWT_KEYS or AUTH_JWT_KEYS_DIR")
        kid = self.jwt_signing_kid or (next(iter(pems)) if len(pems) == 1 else None)
        if kid is None:
            raise ValueError(f"several keys ({', '.join(pems)}): set AUTH_JWT_SIGNING_KID")
        if kid not in pems:
            raise ValueError(f"AUTH_JWT_SIGNING_KID={kid} names no loaded key ({', '.join(pems)})")
        return pems, kid
