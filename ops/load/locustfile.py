"""Locust users of the load harness (ops/load/harness.py starts locust headless with one of these
classes against the gateway; never imported by the product).

Every request goes through the gateway (``--host``), as a browser's would: ``/rest/…`` to
PostgREST, ``/auth/…`` to auth_service. Each task is one page a person opens; every request and
every page is recorded (start time, name, milliseconds, status, ok) and written as JSON to
``KITSU_LOAD_OUT`` when locust quits, so the harness computes its own percentiles (reads apart
from writes, the ramp-up left out). ``KITSU_LOAD_DATA`` names the JSON the harness wrote: the
people (emails, one password), title ids and names, the attacker's victim.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import time
import urllib.parse
from typing import Any

from locust import between, constant, events, task
from locust.contrib.fasthttp import FastHttpUser

DATA: dict[str, Any] = json.loads(open(os.environ["KITSU_LOAD_DATA"]).read()) if "KITSU_LOAD_DATA" in os.environ else {}
CARD = "id,title,title_ru,title_original,kind,status,year,poster_url"
FAVORITES_PAGE = "/rest/favorites?select=*,anime(*)&order=created_at.desc&limit=20"
CONTINUE = ("/rest/continue_watching?select=*,anime(id,title,poster_url),episodes(id,number,title)"
            "&order=last_watched_at.desc&limit=10")
# the request names that write (everything else is a read)
WRITES = {"save progress", "sign in"}

records: list[tuple[float, str, float, int, bool]] = []  # (start, name, ms, status, ok)
pages: list[tuple[float, str, int]] = []  # (start, page, requests it took)
_people = itertools.count()


@events.request.add_listener
def _record(request_type: str, name: str, response_time: float, response_length: int, exception: Any = None,
            response: Any = None, context: Any = None, start_time: float | None = None, **_: Any) -> None:
    status = getattr(response, "status_code", 0) or 0
    started = start_time if start_time is not None else time.time() - response_time / 1000
    records.append((started, name, response_time, status, exception is None))


@events.quitting.add_listener
def _dump(environment: Any, **_: Any) -> None:
    if out := os.environ.get("KITSU_LOAD_OUT"):
        with open(out, "w") as file:
            json.dump({"requests": records, "pages": pages}, file)


def _query() -> str:
    """What a person types: 3 consecutive letters of a real title."""
    while True:
        name = random.choice(DATA["names"])
        start = random.randint(0, max(len(name) - 3, 0))
        if len(piece := name[start:start + 3]) == 3 and piece.isalpha():
            return piece


class KitsuUser(FastHttpUser):
    abstract = True
    network_timeout = 30.0
    connection_timeout = 10.0

    def page(self, name: str, method: str, path: str, *, expect: int = 200, check: Any = None,
             **kwargs: Any) -> Any:
        """One page view made of one request; a wrong status or a body failing ``check`` is an error."""
        started = time.time()
        with self.client.request(method, path, name=name, catch_response=True, **kwargs) as response:
            if response.status_code != expect:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
                body = None
            else:
                body = response.json() if response.text else None
                problem = check(body) if check else None
                if problem:
                    response.failure(problem)
        pages.append((started, name, 1))
        return body

    # the pages of the product
    def catalog_page(self) -> None:
        offset = random.randint(0, DATA["titles_total"] - 20)
        self.page("catalog page", "GET", f"/rest/anime?select={CARD}&order=updated_at.desc&limit=20&offset={offset}",
                  check=lambda rows: None if len(rows) == 20 else f"{len(rows)} rows")

    def title_page(self) -> None:
        anime = random.choice(DATA["titles"])
        self.page("title page", "GET", f"/rest/anime?id=eq.{anime}&select=*,episodes(id,number,title)",
                  check=lambda rows: None if len(rows) == 1 else "title missing")

    def search(self) -> None:
        self.page("search", "GET", f"/rest/rpc/search_anime?q={urllib.parse.quote(_query())}&limit=20")


class SignedIn(KitsuUser):
    abstract = True
    token = ""
    email = ""

    def on_start(self) -> None:
        self.email = DATA["people"][next(_people) % len(DATA["people"])]
        self.sign_in()

    def sign_in(self) -> None:
        """Sign in as a browser does: a 503 ``overloaded`` (the hashing queue is full; it comes
        with Retry-After) is shed load, not an error, and is tried again after the wait it names
        (recorded as "sign in shed"); anything else but 200 is an error. A person who is not
        signed in tries again before opening a signed-in page (``auth``)."""
        while True:
            started = time.time()
            with self.client.post("/auth/login", name="sign in", catch_response=True,
                                  json={"email": self.email, "password": DATA["password"]}) as response:
                if response.status_code == 503:
                    response.success()
                    pages.append((started, "sign in shed", 1))
                    wait = float((getattr(response, "headers", None) or {}).get("retry-after") or 1)
                elif response.status_code == 200 and (body := response.json()).get("access_token"):
                    pages.append((started, "sign in", 1))
                    self.token = body["access_token"]
                    return
                else:
                    response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
                    pages.append((started, "sign in", 1))
                    return
            time.sleep(wait)

    def auth(self) -> dict[str, str]:
        if not self.token:
            self.sign_in()
        return {"Authorization": f"Bearer {self.token}"}

    def favorites_page(self) -> None:
        def complete(rows: Any) -> str | None:  # the whole page in this one request: 20 titles embedded
            if len(rows) != DATA["favorites_each"] or any(not row.get("anime") for row in rows):
                return f"{len(rows)} favorites, {sum(1 for r in rows if not r.get('anime'))} without their title"
            return None

        self.page("favorites page", "GET", FAVORITES_PAGE, headers=self.auth(), check=complete)

    def continue_watching(self) -> None:
        self.page("continue watching", "GET", CONTINUE, headers=self.auth(),
                  check=lambda rows: None if rows else "nothing to continue")

    def save_progress(self) -> None:
        self.page("save progress", "POST", "/rest/rpc/save_progress", headers=self.auth(),
                  json={"anime_id": random.choice(DATA["titles"]), "episode_number": random.randint(1, 3),
                        "position_seconds": random.randint(0, 1400)})


class CatalogBrowser(KitsuUser):
    """Audit scenario 1: open the catalog, scroll, click a title."""

    wait_time = between(0.5, 1.5)

    @task(3)
    def scroll(self) -> None:
        self.catalog_page()

    @task(1)
    def click(self) -> None:
        self.title_page()


class FavoritesReader(SignedIn):
    """Audit scenario 2: a signed-in person with 20 favorites opens the favorites page."""

    wait_time = between(0.5, 1.5)

    @task
    def favorites(self) -> None:
        self.favorites_page()


class Attacker(KitsuUser):
    """Audit scenario 3: one address guessing one person's password as fast as answers come.
    Every answer is expected (401 wrong password, 429 limited, 503 busy); the harness counts
    how many reached the password check (401) against the configured limit (the limit lives in
    PostgreSQL, so it holds whichever of the workers answers)."""

    wait_time = constant(0.02)

    @task
    def guess(self) -> None:
        with self.client.post("/auth/login", name="attack", catch_response=True,
                              json={"email": DATA["victim"], "password": f"guess-{random.random()}"}) as response:
            if response.status_code in (401, 429, 503):
                response.success()
            else:
                response.failure(f"HTTP {response.status_code}")


class MixedUser(SignedIn):
    """The 500-user mix: browse, search, title page, favorites, continue watching, save progress,
    sign in again now and then; a person thinks 1-3 s between pages."""

    wait_time = between(1, 3)

    @task(30)
    def browse(self) -> None:
        self.catalog_page()

    @task(15)
    def find(self) -> None:
        self.search()

    @task(20)
    def open_title(self) -> None:
        self.title_page()

    @task(15)
    def favorites(self) -> None:
        self.favorites_page()

    @task(10)
    def resume(self) -> None:
        self.continue_watching()

    @task(8)
    def watch(self) -> None:
        self.save_progress()

    @task(2)
    def again(self) -> None:
        self.sign_in()
