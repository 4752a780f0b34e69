"""The local upstream speaks Shikimori's and Kodik's formats and limits (docs/upstream-apis.md)."""

from __future__ import annotations

import base64
import json
import time

import httpx
import pytest

from fake_upstream import OFFLINE_KODIK_TOKEN

UA = {"User-Agent": "Kitsu tests (OAuth app: Kitsu)"}


@pytest.fixture(scope="module")
def upstream(start_upstream):
    return start_upstream()


def animes(url, **params):
    return httpx.get(f"{url}/api/animes", params=params, headers=UA).json()


def test_real_limit_five_per_second(start_upstream):
    upstream = start_upstream()
    started = time.monotonic()
    codes = [httpx.get(f"{upstream.url}/api/calendar", headers=UA).status_code for _ in range(8)]
    if time.monotonic() - started < 1.0:  # a slow machine may spread 8 calls over > 1 s
        assert codes[:5] == [200] * 5
        assert 429 in codes[5:]
    response = httpx.get(f"{upstream.url}/api/calendar", headers=UA)
    if response.status_code == 429:
        assert response.text == "Retry later\n"
    time.sleep(1.1)
    assert httpx.get(f"{upstream.url}/api/calendar", headers=UA).status_code == 200


def test_per_minute_limit_in_a_scaled_window(start_upstream):
    # windows x0.1: 5 per 100 ms and 90 per 6 s -- the same rules, fast enough for a test
    upstream = start_upstream(window_scale=0.1)
    accepted = rejected = 0
    with httpx.Client(headers=UA) as client:
        started = time.monotonic()
        while time.monotonic() - started < 5.0 and rejected < 5:
            status = client.get(f"{upstream.url}/api/calendar").status_code
            accepted += status == 200
            rejected += status == 429
            time.sleep(0.026)  # under 5 per 100 ms: only the per-minute rule can refuse
    assert accepted == 90
    assert rejected == 5
    stats = httpx.get(f"{upstream.url}/_control/stats").json()
    assert stats["max_per_minute_window"] == 90
    assert stats["max_per_second_window"] <= 5


def test_user_agent_is_required(upstream):
    assert httpx.get(f"{upstream.url}/api/calendar", headers={"User-Agent": ""}).status_code == 403
    browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"}
    assert httpx.get(f"{upstream.url}/api/calendar", headers=browser).status_code == 403


def test_v1_list_n_plus_one_and_limit_clamp(upstream):
    first = animes(upstream.url, page=1, limit=10)
    assert len(first) == 11  # a next page exists: limit + 1
    assert len(animes(upstream.url, page=1, limit=500)) == 51  # clamped to 50, plus one
    last = animes(upstream.url, page=6, limit=50)  # 300 titles: the last page has no extra item
    assert len(last) == 50
    item = first[0]
    assert isinstance(item["score"], str)
    assert item["image"]["original"].startswith("/system/animes/original/")
    profile = httpx.get(f"{upstream.url}/api/animes/{item['id']}", headers=UA).json()
    assert isinstance(profile["english"], list) and len(profile["english"]) == 1


def test_graphql_pages_of_fifty(upstream):
    query = "query($page: PositiveInt, $limit: PositiveInt) { animes(page: $page, limit: $limit, order: id) { id } }"
    body = httpx.post(
        f"{upstream.url}/api/graphql", headers=UA, json={"query": query, "variables": {"page": 2, "limit": 80}}
    ).json()
    page = body["data"]["animes"]
    assert len(page) == 50
    assert [int(a["id"]) for a in page] == sorted(int(a["id"]) for a in page)
    assert page[0]["airedOn"].keys() >= {"year", "month", "day", "date"}
    assert page[0]["updatedAt"].endswith("+03:00")


def test_kodik_bad_token(upstream):
    response = httpx.get(f"{upstream.url}/kodik/list", params={"token": "wrong"})
    assert response.json() == {"error": "Отсутствует или неверный токен"}
    assert httpx.post(f"{upstream.url}/kodik/search", data={"shikimori_id": "1"}).json()["error"]


def test_kodik_keyset_cursor_walks_everything_once(upstream):
    params = {"token": OFFLINE_KODIK_TOKEN, "limit": 1000, "order": "asc", "with_episodes": "true"}
    url, seen, pages = f"{upstream.url}/kodik/list", [], 0
    first = httpx.get(url, params=params).json()
    assert len(first["results"]) == 100  # limit clamped to 100
    body = first
    while True:
        pages += 1
        seen += [r["id"] + "/" + str(r["translation"]["id"]) for r in body["results"]]
        if not body["next_page"]:
            break
        assert body["next_page"].startswith(upstream.url)  # a full URL
        cursor = httpx.URL(body["next_page"]).params["next"]
        last = body["results"][-1]
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        assert decoded[1] == last["id"] and isinstance(decoded[0], int)
        body = httpx.get(body["next_page"]).json()
    assert len(seen) == len(set(seen)) == first["total"]
    assert pages == -(-first["total"] // 100)
    result = first["results"][0]
    assert isinstance(result["shikimori_id"], str)
    assert result["link"].startswith("//")
    assert result["translation"]["type"] in ("voice", "subtitles")
    assert all(v.startswith("//") for v in result["seasons"]["1"]["episodes"].values())
