"""Start, probe and stop the platform's processes. Shared by `make run` (ops/run.py) and the
tests, so both run PostgREST, uvicorn and workers exactly the same way."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import httpx

from database.build import ROOT, role_url

POSTGREST_BIN = ROOT / "bin" / "postgrest"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgrest_env(dbname: str, *, jwks_json: str, port: int, admin_port: int,
                  audience: str = "kitsu", pool: int = 20,
                  cors_origins: str | None = None, plans: bool = False, db_uri: str | None = None,
                  transaction_pooler: bool = False, replica_max_lag: float | None = None) -> dict[str, str]:
    """PostgREST configuration (all by environment, contract §1). ``db_uri`` replaces the direct
    authenticator URL (PgBouncer's, a streaming replica's); ``transaction_pooler``: it is PgBouncer
    in transaction mode; ``replica_max_lag``: the database is a streaming replica that may serve
    requests while it lags the primary by at most that many seconds."""
    env = {
        "PGRST_DB_URI": db_uri or role_url(dbname, "authenticator"),
        "PGRST_DB_SCHEMAS": "api",
        "PGRST_DB_ANON_ROLE": "anon",
        "PGRST_DB_PRE_REQUEST": "private.pre_request",
        "PGRST_JWT_SECRET": jwks_json,
        "PGRST_JWT_AUD": audience,
        "PGRST_SERVER_HOST": "127.0.0.1",
        "PGRST_SERVER_PORT": str(port),
        "PGRST_ADMIN_SERVER_PORT": str(admin_port),
        "PGRST_DB_POOL": str(pool),
        "PGRST_DB_MAX_ROWS": "1000",
        "PGRST_OPENAPI_MODE": "follow-privileges",
        "PGRST_LOG_LEVEL": "error",
        # validated tokens are cached (bounded by their exp); revocation is still checked per
        # request by db-pre-request, so caching the signature check loses nothing
        "PGRST_JWT_CACHE_MAX_LIFETIME": "3600",
        # PostgREST's defaults, said out loud: a pooled layout turns both off (below; compose too)
        "PGRST_DB_PREPARED_STATEMENTS": "true",
        "PGRST_DB_CHANNEL_ENABLED": "true",
    }
    if cors_origins:
        env["PGRST_SERVER_CORS_ALLOWED_ORIGINS"] = cors_origins
    if plans:  # tests only: EXPLAIN through `Accept: application/vnd.pgrst.plan+json`
        env["PGRST_DB_PLAN_ENABLED"] = "true"
    if transaction_pooler:
        # PgBouncer 1.18 keeps no prepared statement past a transaction, and cannot carry LISTEN:
        # schema reloads then come by SIGUSR1 instead of NOTIFY pgrst
        env["PGRST_DB_PREPARED_STATEMENTS"] = "false"
        env["PGRST_DB_CHANNEL_ENABLED"] = "false"
    if replica_max_lag is not None:
        # a standby cannot LISTEN; each request first checks the replica's lag (503 past the
        # bound, and the gateway retries the read on the primary)
        env["PGRST_DB_CHANNEL_ENABLED"] = "false"
        env["PGRST_DB_PRE_REQUEST"] = "private.replica_pre_request"
        env["PGRST_APP_SETTINGS_REPLICA_MAX_LAG"] = f"{replica_max_lag:g}"
    return env


def open_private(path: Path) -> BinaryIO:
    """Open ``path`` for appending, mode 0600 (also when it existed with a wider mode)."""
    log = open(os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")
    os.chmod(path, 0o600)
    return log


@dataclass
class Service:
    """A child process with a readiness URL."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    ready_url: str | None = None
    url: str | None = None
    log_path: Path | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)

    def start(self) -> Service:
        # logs are readable by their owner only (contract §11): they hold addresses and request ids
        log = open_private(self.log_path) if self.log_path else subprocess.DEVNULL
        try:
            # umask 077: files the service creates itself (nginx's access log) are private too
            self.process = subprocess.Popen(
                list(self.argv), env={**os.environ, **self.env}, cwd=ROOT,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True, umask=0o077)
        finally:
            if log is not subprocess.DEVNULL:
                log.close()  # the child holds its own copy of the descriptor
        return self

    def wait_ready(self, timeout: float = 30.0) -> Service:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}; see {self.log_path}")
            if self.ready_url is None:
                return self
            if self.ready_url.startswith("tcp://"):  # a server that speaks no HTTP (PgBouncer)
                host, port = self.ready_url.removeprefix("tcp://").rsplit(":", 1)
                with contextlib.suppress(OSError), socket.create_connection((host, int(port)), 1.0):
                    return self
                time.sleep(0.1)
                continue
            try:
                # always a short timeout: PostgREST without a database accepts and never answers
                if httpx.get(self.ready_url, timeout=1.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} not ready at {self.ready_url} after {timeout}s")

    def signal(self, signum: int) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signum)

    def kill_leftovers(self) -> None:
        """SIGKILL what is left of the process group once its leader has exited (nginx or uvicorn
        workers of a killed master would keep the port and block the restart)."""
        if self.process is not None and self.process.poll() is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.signal(signal.SIGTERM)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.process.wait()


def postgrest(dbname: str, *, jwks_json: str, port: int | None = None,
              admin_port: int | None = None, log_path: Path | None = None, name: str = "postgrest",
              **options: object) -> Service:
    port = port or free_port()
    admin_port = admin_port or free_port()
    env = postgrest_env(dbname, jwks_json=jwks_json, port=port, admin_port=admin_port, **options)  # type: ignore[arg-type]
    return Service(name, [str(POSTGREST_BIN)], env,
                   ready_url=f"http://127.0.0.1:{admin_port}/ready",
                   url=f"http://127.0.0.1:{port}", log_path=log_path)
