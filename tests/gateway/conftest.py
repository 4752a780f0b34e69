"""The gateway under test (tests/conftest.py starts it: Edge, start_gateway, start_edge), with
one origin allowed by CORS and a small body limit."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import Edge

ALLOWED_ORIGIN = "https://app.kitsu.test"
OTHER_ORIGIN = "https://evil.example"


@pytest.fixture(scope="module")
def edge(start_edge: Callable[..., Edge]) -> Edge:
    return start_edge(CORS_ALLOWED_ORIGINS=ALLOWED_ORIGIN, GATEWAY_MAX_BODY="64k")
