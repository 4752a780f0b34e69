"""Ingest fixtures: real Procrastinate worker processes and the local upstream over a socket."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from ops import launch, services
from tests.conftest import LOG_DIR
from tests.ingest.support import FAST


@pytest.fixture(scope="session")
def start_upstream() -> Iterator[Callable[..., services.Service]]:
    started: list[services.Service] = []
    LOG_DIR.mkdir(parents=True, exist_ok=True)

    def start(**options: Any) -> services.Service:
        port = services.free_port()
        service = launch.upstream_process(port=port, log_path=LOG_DIR / f"upstream-{port}.log", **options)
        started.append(service.start())
        return service.wait_ready()

    yield start
    for service in started:
        service.stop()


@pytest.fixture(scope="session")
def start_worker() -> Iterator[Callable[..., services.Service]]:
    started: list[services.Service] = []

    def start(
        dbname: str,
        upstream: services.Service,
        *,
        name: str = "w",
        env: dict[str, str] | None = None,
        token: str | None = None,
    ) -> services.Service:
        full_env = {**FAST, **launch.upstream_env(upstream), **(env or {})}
        if token is not None:
            full_env["KODIK_TOKEN"] = token
        service = launch.worker_process(
            dbname, name=name, env=full_env, log_path=LOG_DIR / f"worker-{dbname}-{name}.log"
        )
        started.append(service.start())
        return service.wait_ready()

    yield start
    for service in started:
        service.stop()
