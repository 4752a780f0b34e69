"""auth_service with LOG_FORMAT=json behind the real gateway (issue 9, contract §10, §14): every
line of its log is one JSON object, the lines of a request carry that request's X-Request-Id
(the client's when well formed, else the one the gateway made up), one access line per request
names method, path, status and duration, and no password or token ever reaches a line."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

from tests.gateway.conftest import Edge

PASSWORD = "correct-horse-battery-4711"
WRONG = "wrong-password-s3cret-0815"


def test_auth_json_lines_carry_the_request_id_and_no_secret(start_edge: Callable[..., Edge]):
    edge = start_edge(auth_env={"LOG_FORMAT": "json"})
    email = f"log-{uuid.uuid4().hex[:10]}@example.test"
    mine = f"test-{uuid.uuid4()}"
    with edge.client() as client:
        assert client.post("/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
        login = client.post("/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status_code == 200, login.text
        tokens = [login.json()["access_token"], login.json()["refresh_token"]]
        wrong = client.post("/auth/login?next=x", json={"email": email, "password": WRONG},
                            headers={"X-Request-Id": mine})
        assert wrong.status_code == 401, wrong.text
        assert wrong.headers["x-request-id"] == mine
        # no header, and one the gateway refuses to keep: both get an id of the gateway's own
        generated = client.post("/auth/login", json={"email": email, "password": WRONG}).headers["x-request-id"]
        replaced = client.post("/auth/login", json={"email": email, "password": WRONG},
                               headers={"X-Request-Id": "not a well-formed id"}).headers["x-request-id"]
    assert generated and replaced and len({generated, replaced, mine}) == 3
    edge.auth.stop()  # its shutdown lines too, and the file is complete

    assert edge.auth.log_path is not None
    text = edge.auth.log_path.read_text()
    for secret in (PASSWORD, WRONG, *tokens):
        assert secret not in text
    # every line, from start-up to shutdown: uvicorn runs with --log-level warning and prints
    # no banner, and its loggers write through observability.logs once the app is loaded
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all({"time", "level", "component", "logger", "message"} <= set(line) for line in lines)
    assert all(line["component"] == "auth_service" for line in lines)

    def access(request_id: str) -> list[dict[str, object]]:
        return [line for line in lines
                if line.get("request_id") == request_id and line["logger"] == "auth_service.access"]

    [line] = access(mine)
    assert (line["method"], line["path"], line["status"]) == ("POST", "/auth/login", 401)
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert "next=x" not in text  # the path never has its query string
    for request_id in (generated, replaced):
        [line] = access(request_id)
        assert (line["path"], line["status"]) == ("/auth/login", 401)
    assert "not a well-formed id" not in text
    # the gateway's readiness probe and the requests above: one access line each, all named
    assert all(line.get("request_id") for line in lines if line["logger"] == "auth_service.access"
               and line["path"] != "/health")
