"""Unit tests of the upstream clients with an injected httpx transport (no socket, no database):
retries and backoff, Retry-After, what gives up and what does not retry, Kodik's bad token and
its keyset cursor. The same behaviours against the real local upstream are in test_workers.py."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest
from pydantic import SecretStr

from ingest import clients, settings


class CountingLimiter:
    """Stands in for the Postgres limiter (tested in test_sql.py): grants every slot at once."""

    def __init__(self) -> None:
        self.granted = 0

    async def acquire(self, upstream: str) -> None:
        self.granted += 1

    def take(self) -> int:
        return self.granted


CONFIG = settings.Settings(SHIKIMORI_BASE_URL="https://shikimori.test", KODIK_BASE_URL="https://kodik.test",
                           KODIK_TOKEN="secret-token", INGEST_HTTP_RETRIES=3, INGEST_BACKOFF_SECONDS=0.01,
                           INGEST_BACKOFF_MAX_SECONDS=0.05)


def answers(*responses: httpx.Response | Exception) -> tuple[httpx.MockTransport, list[httpx.Request]]:
    """A transport that gives these answers in turn (an exception is raised instead)."""
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handle), seen


def run(make: Callable[[], clients.Upstream], call: Callable[[clients.Upstream], object]) -> object:
    async def main() -> object:
        async with make() as client:
            return await call(client)

    return asyncio.run(main())


ANIMES = httpx.Response(200, json={"data": {"animes": [{"id": "1", "name": "Mushishi"}]}})


def test_a_429_with_retry_after_is_waited_out_then_retried(monkeypatch):
    waits: list[float] = []
    real_sleep = asyncio.sleep

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await real_sleep(0)

    monkeypatch.setattr(clients.asyncio, "sleep", sleep)
    transport, seen = answers(httpx.Response(429, headers={"Retry-After": "0.15"}), ANIMES)
    limiter = CountingLimiter()
    result = run(lambda: clients.Shikimori(CONFIG, limiter, transport), lambda c: c.animes(1))
    assert result == [{"id": "1", "name": "Mushishi"}]
    assert len(seen) == 2 and limiter.granted == 2  # every attempt takes a slot of the shared limit
    assert waits == [0.15]  # the server's hint, not the backoff


def test_errors_and_timeouts_are_retried_with_backoff_then_given_up(monkeypatch):
    real_sleep = asyncio.sleep
    monkeypatch.setattr(clients.asyncio, "sleep", lambda seconds: real_sleep(0))
    transport, seen = answers(httpx.Response(502), httpx.ReadTimeout("slow"), httpx.ConnectError("down"),
                              httpx.Response(503))
    with pytest.raises(clients.UpstreamError) as failure:
        run(lambda: clients.Shikimori(CONFIG, CountingLimiter(), transport), lambda c: c.animes(1))
    assert len(seen) == CONFIG.retries + 1
    assert failure.value.code == "shikimori_unavailable"
    assert "gave up after 4 attempts" in str(failure.value)


def test_a_client_error_is_not_retried():
    transport, seen = answers(httpx.Response(400, text="bad query"))
    with pytest.raises(clients.UpstreamError) as failure:
        run(lambda: clients.Shikimori(CONFIG, CountingLimiter(), transport), lambda c: c.animes(1))
    assert len(seen) == 1 and failure.value.code == "shikimori_http_400"


def test_retry_after_as_a_date_and_as_garbage():
    assert clients.retry_after(httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"})) == 0.0
    assert clients.retry_after(httpx.Response(429, headers={"Retry-After": "soon"})) is None
    assert clients.retry_after(httpx.Response(429)) is None


def test_kodik_reports_a_bad_token_without_retrying():
    transport, seen = answers(httpx.Response(200, json={"error": "Отсутствует или неверный токен"}))
    with pytest.raises(clients.UpstreamError) as failure:
        run(lambda: clients.Kodik(CONFIG, CountingLimiter(), transport), lambda c: c.list_page(None))
    assert failure.value.code == "kodik_bad_token" and len(seen) == 1
    assert seen[0].url.params["token"] == "secret-token"


def test_kodik_needs_a_token():
    with pytest.raises(clients.UpstreamError) as failure:
        clients.Kodik(CONFIG.model_copy(update={"kodik_token": SecretStr("")}), CountingLimiter())
    assert failure.value.code == "kodik_token_missing"


def test_kodik_keyset_cursor_is_read_from_next_page():
    page = {"results": [{"id": "serial-1"}], "total": 250,
            "next_page": "https://kodik.test/list?token=secret-token&next=eyJpZCI6MTB9"}
    transport, seen = answers(httpx.Response(200, json=page), httpx.Response(200, json={"results": [], "total": 250}))

    async def two_pages(client: clients.Kodik) -> tuple[object, object]:
        first = await client.list_page(None)
        return first, await client.list_page(first[1])

    first, last = run(lambda: clients.Kodik(CONFIG, CountingLimiter(), transport), two_pages)
    assert first == ([{"id": "serial-1"}], "eyJpZCI6MTB9", 250)
    assert last == ([], None, 250)
    assert seen[1].url.params["next"] == "eyJpZCI6MTB9"


def test_a_body_that_is_not_json_is_a_clear_error():
    transport, _ = answers(httpx.Response(200, text="<html>maintenance</html>"))
    with pytest.raises(clients.UpstreamError) as failure:
        run(lambda: clients.Shikimori(CONFIG, CountingLimiter(), transport), lambda c: c.animes(1))
    assert failure.value.code == "bad_response" and "maintenance" in str(failure.value)
