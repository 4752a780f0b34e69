"""HTTP clients for Shikimori and Kodik.

One ``httpx.AsyncClient`` per upstream with explicit timeouts and a real User-Agent. Every
attempt first takes a slot from the shared limiter in Postgres (``ingest.acquire_slot``), so
the upstream limit holds for all workers together. 429, 5xx, timeouts and connection errors are
retried with exponential backoff (jittered, capped) that honours ``Retry-After``; other answers
fail at once with an ``UpstreamError`` whose ``code`` ends up in the sync run.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from email.utils import parsedate_to_datetime
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import httpx
import psycopg

from ingest import metrics
from ingest import settings as settings_module
from observability import logs

logger = logging.getLogger("ingest.clients")

PAGE_SIZE = 50  # Shikimori GraphQL `animes` maximum
KODIK_PAGE_SIZE = 100  # Kodik `limit` maximum

ANIME_FIELDS = """
    id malId name russian english japanese synonyms kind status rating
    episodes episodesAired score season
    airedOn { year month day date } releasedOn { year month day date } nextEpisodeAt
    poster { originalUrl mainUrl }
    genres { id name russian kind }
    related { relationKind relationText anime { id } }
    description updatedAt
"""
ANIMES_QUERY = (
    "query($page: PositiveInt, $limit: PositiveInt, $order: OrderEnum, $ids: String) {"
    " animes(page: $page, limit: $limit, order: $order, ids: $ids) {" + ANIME_FIELDS + "} }"
)


class UpstreamError(Exception):
    """An upstream call that failed for good; ``code`` is stored in data.sync_runs.error_code."""

    def __init__(self, code: str, message: str, *, retryable: bool = False) -> None:
        # masked here, once: the message goes to the log and to data.sync_runs.error (which
        # admins read), and may quote an upstream URL with Kodik's token in it (next_page)
        super().__init__(logs.redact(message))
        self.code = code
        self.retryable = retryable


# SQLSTATE of ingest.acquire_slot for an upstream an admin switched off (data.upstream_limits.enabled)
UPSTREAM_DISABLED = "KI007"

# borrows a database connection for one call (ingest.pool.connection)
Connect = Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]]


class Limiter:
    """The shared sliding-window limit, decided in SQL; waits until a slot is granted."""

    def __init__(self, connect: Connect) -> None:
        self.connect = connect
        self.waited = 0.0
        self.granted = 0
        self.recorded = 0

    def take(self) -> int:
        """Requests granted since the last call (for the run's counter)."""
        n, self.recorded = self.granted - self.recorded, self.granted
        return n

    async def acquire(self, upstream: str) -> None:
        while True:
            # borrowed per ask and given back before sleeping; the limiter may ask (for a
            # prefetched page) while the sync stages the previous page on another connection
            try:
                async with self.connect() as conn:
                    cur = await conn.execute("select ingest.acquire_slot(%s)", (upstream,))
                    row = await cur.fetchone()
            except psycopg.Error as exc:
                if exc.sqlstate == UPSTREAM_DISABLED:
                    raise UpstreamError(f"{upstream}_disabled", f"{upstream} is switched off by an admin") from None
                raise
            wait = float(row[0]) if row else 0.0
            if wait <= 0:
                self.granted += 1
                return
            self.waited += wait
            await asyncio.sleep(wait + 0.002)


def retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            moment = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        import datetime as dt

        return max(0.0, (moment - dt.datetime.now(dt.UTC)).total_seconds())


class Upstream:
    """Base client: limiter, retries, counters."""

    name = "upstream"

    def __init__(
        self,
        base_url: str,
        config: settings_module.Settings,
        limiter: Limiter,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.config = config
        self.limiter = limiter
        self.client = httpx.AsyncClient(
            base_url=base_url,
            timeout=httpx.Timeout(config.read_timeout, connect=config.connect_timeout),
            headers={"User-Agent": config.user_agent, "Accept": "application/json"},
            transport=transport,
            follow_redirects=False,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.client.aclose()

    def take_requests(self) -> int:
        """Requests made since the last call (for the run's counter)."""
        return self.limiter.take()

    def check(self, response: httpx.Response) -> None:
        """Hook: raise UpstreamError for answers that look fine but are not (Kodik's token)."""

    def backoff(self, attempt: int) -> float:
        delay = min(self.config.backoff_max, self.config.backoff * 2**attempt)
        return delay * (0.5 + random.random() / 2)

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        last: UpstreamError | None = None
        for attempt in range(self.config.retries + 1):
            await self.limiter.acquire(self.name)
            delay = self.backoff(attempt)
            try:
                response = await self.client.request(method, url, **kwargs)
            except httpx.TimeoutException as exc:
                metrics.UPSTREAM_REQUESTS.labels(self.name, "error").inc()
                last = UpstreamError(
                    f"{self.name}_timeout",
                    f"{self.name}: {method} {url} timed out ({type(exc).__name__})",
                    retryable=True,
                )
            except httpx.TransportError as exc:
                metrics.UPSTREAM_REQUESTS.labels(self.name, "error").inc()
                last = UpstreamError(
                    f"{self.name}_unreachable",
                    f"{self.name}: {method} {url}: {exc!r}",
                    retryable=True,
                )
            else:
                status = response.status_code
                metrics.UPSTREAM_REQUESTS.labels(self.name, str(status)).inc()
                if status == 429:
                    metrics.UPSTREAM_RATE_LIMITED.labels(self.name).inc()
                self.check(response)
                if status == 429 or status >= 500:
                    hint = retry_after(response)
                    if hint is not None:
                        delay = min(max(hint, 0.05), self.config.backoff_max * 4)
                    code = "rate_limited" if status == 429 else "unavailable"
                    last = UpstreamError(
                        f"{self.name}_{code}",
                        f"{self.name}: {method} {url} answered HTTP {status}",
                        retryable=True,
                    )
                elif status >= 400:
                    raise UpstreamError(
                        f"{self.name}_http_{status}",
                        f"{self.name}: {method} {url} answered HTTP {status}: "
                        f"{response.text[:200]}",
                    )
                else:
                    return response
            if attempt < self.config.retries:
                metrics.RETRIES.labels(self.name, last.code.removeprefix(f"{self.name}_")).inc()
                logger.warning(
                    "%s; retry %d/%d in %.2fs", last, attempt + 1, self.config.retries, delay
                )
                await asyncio.sleep(delay)
        assert last is not None
        raise UpstreamError(last.code, f"{last} (gave up after {self.config.retries + 1} attempts)")

    @staticmethod
    def json(response: httpx.Response) -> Any:
        try:
            return response.json()
        except ValueError as exc:
            raise UpstreamError("bad_response", f"not JSON: {response.text[:200]!r}") from exc


class Shikimori(Upstream):
    name = "shikimori"

    def __init__(
        self,
        config: settings_module.Settings,
        limiter: Limiter,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(config.shikimori_base_url, config, limiter, transport)

    async def animes(
        self, page: int, *, ids: list[int] | None = None, limit: int = PAGE_SIZE
    ) -> list[Any]:
        """One GraphQL `animes` page, ordered by id (stable for paging)."""
        variables: dict[str, Any] = {"page": page, "limit": limit, "order": "id"}
        if ids is not None:
            variables["ids"] = ",".join(str(i) for i in ids)
        response = await self.request(
            "POST", "/api/graphql", json={"query": ANIMES_QUERY, "variables": variables}
        )
        body = self.json(response)
        if not isinstance(body, dict) or body.get("errors"):
            raise UpstreamError(
                "shikimori_graphql_error", f"shikimori GraphQL error: {json.dumps(body)[:300]}"
            )
        animes = (body.get("data") or {}).get("animes")
        if not isinstance(animes, list):
            raise UpstreamError("bad_response", "shikimori GraphQL answer has no data.animes list")
        return animes

    async def calendar(self) -> list[Any]:
        body = self.json(await self.request("GET", "/api/calendar", params={"censored": "false"}))
        if not isinstance(body, list):
            raise UpstreamError("bad_response", "shikimori /api/calendar did not answer a list")
        return body


KODIK_TOKEN_ERROR = "Отсутствует или неверный токен"


class Kodik(Upstream):
    name = "kodik"

    def __init__(
        self,
        config: settings_module.Settings,
        limiter: Limiter,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(config.kodik_base_url, config, limiter, transport)
        self.token = config.kodik_token.get_secret_value()
        if not self.token:
            raise UpstreamError(
                "kodik_token_missing",
                "KODIK_TOKEN is not set; it is required with a real KODIK_BASE_URL",
            )

    def check(self, response: httpx.Response) -> None:
        # Kodik reports a bad token as {"error": "..."}; clients check the key, not the status
        if "json" not in response.headers.get("content-type", ""):
            return
        try:
            body = response.json()
        except ValueError:
            return
        if isinstance(body, dict) and body.get("error"):
            message = str(body["error"])
            if "токен" in message.lower() or "token" in message.lower():
                raise UpstreamError("kodik_bad_token", f"kodik rejected the token: {message}")
            if response.status_code < 500:
                raise UpstreamError("kodik_error", f"kodik error: {message}")

    def params(self, **extra: Any) -> dict[str, Any]:
        return {
            "token": self.token,
            "types": "anime,anime-serial",
            "with_episodes": "true",
            "limit": KODIK_PAGE_SIZE,
            **extra,
        }

    async def list_page(self, cursor: str | None) -> tuple[list[Any], str | None, int | None]:
        """One /list page in keyset order; returns (results, next cursor or None, total)."""
        extra: dict[str, Any] = {"sort": "updated_at", "order": "asc"}
        if cursor:
            extra["next"] = cursor
        body = self.json(await self.request("GET", "/list", params=self.params(**extra)))
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise UpstreamError("bad_response", "kodik /list answer has no results list")
        next_page = body.get("next_page")
        next_cursor = None
        if next_page:
            values = parse_qs(urlsplit(next_page).query).get("next")
            if not values:
                raise UpstreamError(
                    "bad_response", f"kodik next_page has no cursor: {next_page[:200]}"
                )
            next_cursor = values[0]
        total = body.get("total") if isinstance(body.get("total"), int) else None
        return body["results"], next_cursor, total

    async def search(self, shikimori_ids: list[int]) -> list[Any]:
        body = self.json(
            await self.request(
                "GET", "/search", params=self.params(shikimori_id=",".join(map(str, shikimori_ids)))
            )
        )
        if not isinstance(body, dict) or not isinstance(body.get("results"), list):
            raise UpstreamError("bad_response", "kodik /search answer has no results list")
        return body["results"]


def decode_kodik_cursor(cursor: str) -> list[Any]:
    """Kodik's keyset cursor: base64 of JSON [updated_at epoch ms, id] (for logs and tests)."""
    return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
