"""Catalog v1.1 through a real worker (contract §15): Shikimori's GraphQL `related` staged and
published, a title page with its episodes and franchise in one request through PostgREST, and
the schedule keeping every announced airing as the calendar moves on."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from fake_upstream import fixtures, real_titles
from tests.ingest.support import catalog, control, execute, query, sync


@pytest.fixture(scope="module")
def upstream(start_upstream):
    return start_upstream()


@pytest.fixture(scope="module")
def synced(module_db, upstream, start_worker):
    start_worker(module_db, upstream, name="related")
    runs = sync(module_db, "sync_catalog", "sync_episodes", "sync_schedule")
    assert {r["status"] for r in runs.values()} == {"succeeded"}, runs
    return module_db


def relation(kind, shikimori_id):
    return {"relationKind": kind, "relationText": kind.replace("_", " ").title(), "anime": {"id": str(shikimori_id)},
            "manga": None}


def anime_id(dbname, shikimori_id):
    return str(query(dbname, "select id from data.anime where shikimori_id = %s", (shikimori_id,))[0]["id"])


def title_page(url, anime_id):
    response = httpx.get(f"{url}/anime", params={
        "id": f"eq.{anime_id}", "select": "id,title,episodes(number),related(relation,related_id,title,kind,year)",
        "related.order": "relation"}, timeout=10)
    assert response.status_code == 200, response.text
    [page] = response.json()
    return page


def test_related_titles_are_published_and_embedded_in_the_title_page(synced, upstream, start_postgrest):
    rows = catalog(synced)
    with_episodes = [r for r in rows if r["sources"]]
    main, sequel, side = with_episodes[0], rows[-1], rows[-2]
    for row in (main, sequel, side):
        row["id"] = anime_id(synced, row["shikimori_id"])
    control(upstream, "animes", [{"id": main["shikimori_id"], "related": [
        relation("sequel", sequel["shikimori_id"]),
        relation("side_story", side["shikimori_id"]),
        relation("prequel", 9_999_999),  # not in this catalog: stored, not listed
        {"relationKind": "adaptation", "relationText": "Adaptation", "anime": None, "manga": {"id": "7"}},
    ]}])
    run = sync(synced, "sync_catalog")["sync_catalog"]
    assert run["status"] == "succeeded" and run["published"]["relations_written"] == 3, run
    stored = query(synced, "select related_shikimori_id, relation from data.anime_relations order by 1")
    assert stored == sorted([{"related_shikimori_id": sequel["shikimori_id"], "relation": "sequel"},
                             {"related_shikimori_id": side["shikimori_id"], "relation": "side_story"},
                             {"related_shikimori_id": 9_999_999, "relation": "prequel"}],
                            key=lambda r: r["related_shikimori_id"])

    postgrest = start_postgrest(synced)
    page = title_page(postgrest.url, main["id"])  # one request: the title, its episodes, its franchise
    assert page["episodes"]
    assert [(r["relation"], r["related_id"]) for r in page["related"]] == [
        ("sequel", sequel["id"]), ("side_story", side["id"])]
    assert page["related"][0]["title"] == sequel["title"]

    # a related title that leaves the catalog leaves the page; the upstream dropping a relation drops it
    execute(synced, "update data.anime set state = 'archived' where id = %s", (sequel["id"],))
    assert [r["relation"] for r in title_page(postgrest.url, main["id"])["related"]] == ["side_story"]
    control(upstream, "animes", [{"id": main["shikimori_id"], "related": [relation("prequel", side["shikimori_id"])]}])
    assert sync(synced, "sync_catalog")["sync_catalog"]["status"] == "succeeded"
    assert query(synced, "select related_shikimori_id, relation from data.anime_relations") == [
        {"related_shikimori_id": side["shikimori_id"], "relation": "prequel"}]
    # a second sync without upstream change writes nothing
    run = sync(synced, "sync_catalog")["sync_catalog"]
    assert run["items_updated"] == 0 and run["published"].get("relations_written", 0) == 0


def test_the_schedule_keeps_each_announced_episode(synced, upstream, start_postgrest):
    [title] = query(synced, "select a.shikimori_id, s.episode_number from data.schedule s "
                            "join data.anime a on a.id = s.anime_id order by a.shikimori_id limit 1")
    announced = datetime.now(UTC).replace(microsecond=0) + timedelta(days=1)
    following = announced + timedelta(days=7)
    control(upstream, "animes", [{"id": title["shikimori_id"], "nextEpisodeAt": fixtures.msk(announced)}])
    assert sync(synced, "sync_schedule")["sync_schedule"]["status"] == "succeeded"
    # the calendar moves on: the episode announced before aired, the next one is announced
    control(upstream, "animes", [{"id": title["shikimori_id"], "episodesAired": title["episode_number"],
                                  "nextEpisodeAt": fixtures.msk(following)}])
    assert sync(synced, "sync_schedule")["sync_schedule"]["status"] == "succeeded"
    postgrest = start_postgrest(synced)
    anime = anime_id(synced, title["shikimori_id"])
    rows = httpx.get(f"{postgrest.url}/schedule", params={"anime_id": f"eq.{anime}", "order": "episode_number"},
                     timeout=10).json()
    assert [(r["episode_number"], datetime.fromisoformat(r["airs_at"])) for r in rows] == [
        (title["episode_number"], announced), (title["episode_number"] + 1, following)]
    # range-filterable: only the later one in its own week
    week = httpx.get(f"{postgrest.url}/schedule", params=[
        ("anime_id", f"eq.{anime}"), ("airs_at", f"gte.{(following - timedelta(days=1)).isoformat()}"),
        ("airs_at", f"lt.{(following + timedelta(days=6)).isoformat()}")], timeout=10).json()
    assert [r["episode_number"] for r in week] == [title["episode_number"] + 1]


def test_the_offline_upstreams_generated_russian_titles_arrive_marked(fresh_db, start_upstream, start_worker):
    """`make run`'s offline upstream serving real titles (bangumi-data): each Russian title was
    generated there, says so (`generated`), and is published marked (anime.title_ru_generated)."""
    if not real_titles.available():
        pytest.skip("bangumi-data is not installed (`make titles`)")
    real = start_upstream(catalog="real", titles=12)
    start_worker(fresh_db, real, name="real-ru")
    assert sync(fresh_db, "sync_catalog")["sync_catalog"]["status"] == "succeeded"
    assert query(fresh_db, "select count(*) filter (where title_ru_generated) as marked, count(*) as titles "
                           "from data.anime where title_ru is not null") == [{"marked": 12, "titles": 12}]
