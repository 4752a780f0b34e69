"""Replicas behind the gateway (issue 14): with two PostgREST and two auth_service instances nginx
sends requests to both (the access log names the upstream that answered), and with one of each
killed the gateway keeps answering from the other."""

from __future__ import annotations

import signal
import uuid
from collections import Counter
from collections.abc import Callable

import pytest

from tests.conftest import Edge

PASSWORD = "correct horse battery staple"


@pytest.fixture(scope="module")
def edge(start_edge: Callable[..., Edge]) -> Edge:
    return start_edge(replicas=2, GATEWAY_CACHE_SECONDS="0")  # no micro-cache: every read goes upstream


def upstreams(edge: Edge, path_prefix: str, since: int) -> Counter[str]:
    """How many requests under ``path_prefix`` (as logged: /rest/ already stripped) each upstream
    answered, after access-log line ``since``."""
    return Counter(str(line["upstream"]) for line in edge.access_log()[since:]
                   if str(line["path"]).startswith(path_prefix))


def address(url: str | None) -> str:
    return str(url).removeprefix("http://")


def test_requests_land_on_every_replica_and_survive_one_killed(edge: Edge):
    with edge.client() as client:
        since = len(edge.access_log())
        for _ in range(20):
            assert client.get("/rest/anime", params={"select": "id"}).status_code == 200
            assert client.get("/.well-known/jwks.json").status_code == 200
        email = f"replica-{uuid.uuid4().hex[:8]}@example.test"
        assert client.post("/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
        rest, auth = upstreams(edge, "/anime", since), upstreams(edge, "/.well-known/", since)
        assert set(rest) == {address(p.url) for p in edge.postgrests}, rest
        assert min(rest.values()) >= 5, rest  # round-robin: both get a fair share
        assert set(auth) == {address(a.url) for a in edge.auths}, auth

        # one of each dies (SIGKILL, no goodbye): every request still answers, from the survivor
        edge.postgrests[0].signal(signal.SIGKILL)
        edge.auths[0].signal(signal.SIGKILL)
        edge.postgrests[0].process.wait()  # type: ignore[union-attr]
        edge.auths[0].process.wait()  # type: ignore[union-attr]
        since = len(edge.access_log())
        for _ in range(20):
            assert client.get("/rest/anime", params={"select": "id"}).status_code == 200
            assert client.get("/.well-known/jwks.json").status_code == 200
        login = client.post("/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        signed_in = client.get("/rest/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
        assert signed_in.status_code == 200, signed_in.text
        assert client.get("/health").status_code == 200
        # a refused connection is retried on the other server within the same request
        survivors = {address(edge.postgrests[1].url), address(edge.auths[1].url)}
        answered = upstreams(edge, "/", since)
        assert {a.split(", ")[-1] for a in answered} <= survivors, answered
