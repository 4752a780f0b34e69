"""The public catalog through a real PostgREST: visibility, embedding, search, documentation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import owner_connect
from tests.helpers import create_anime


@pytest.fixture(scope="module")
def catalog(api_db, postgrest):
    with owner_connect(api_db) as conn:
        frieren = create_anime(conn, "Sousou no Frieren", episodes=2, title_ru="Провожающая в последний путь Фрирен",
                               title_en="Frieren: Beyond Journey's End", synonyms=["Frieren"], kind="tv",
                               status="released", year=2023, season="fall", score=9.1)
        create_anime(conn, "Cowboy Bebop", kind="tv", status="released", year=1998, season="spring", score=8.8)
        create_anime(conn, "Cowboy Bebop: Tengoku no Tobira", kind="movie", status="released", year=2001)
        create_anime(conn, "Hidden Frieren draft", state="pending")
        conn.execute("insert into data.genres (id, name, name_ru) values (2, 'Adventure', 'Приключения')")
        conn.execute("insert into data.anime_genres values (%s, 2)", (frieren,))
        conn.execute("insert into data.translations values (610, 'AniLibria', 'voice'), "
                     "(1291, 'Crunchyroll', 'subtitles')")
        episode = conn.execute("select id from data.episodes where anime_id = %s and number = 1",
                               (frieren,)).fetchone()[0]
        conn.execute("insert into data.episode_sources (episode_id, translation_id, quality, player_url) values "
                     "(%s, 610, 'BDRip 720p', 'https://kodik.info/seria/1/a/720p'), "
                     "(%s, 1291, 'WEB-DL 1080p', 'https://kodik.info/seria/1/b/720p')", (episode, episode))
        conn.execute("insert into data.schedule values (%s, 3, %s)", (frieren, datetime.now(UTC) + timedelta(days=2)))
    return {"url": postgrest.url, "frieren": str(frieren)}


def get(catalog, path, **params):
    return httpx.get(f"{catalog['url']}{path}", params=params, timeout=10)


def test_anime_embeds_episodes_sources_and_schedule(catalog):
    response = get(catalog, "/anime", id=f"eq.{catalog['frieren']}",
                   select="title,genres,episodes(number,episode_sources(translation_type,player_url)),schedule(*)")
    assert response.status_code == 200
    [anime] = response.json()
    assert anime["genres"] == ["Приключения"]
    episodes = sorted(anime["episodes"], key=lambda e: e["number"])
    assert [e["number"] for e in episodes] == [1, 2]
    assert {s["translation_type"] for s in episodes[0]["episode_sources"]} == {"voice", "subtitles"}
    assert anime["schedule"][0]["episode_number"] == 3


def test_episode_embeds_its_anime(catalog):
    rows = get(catalog, "/episodes", anime_id=f"eq.{catalog['frieren']}", select="number,anime(title)").json()
    assert rows and all(row["anime"]["title"] == "Sousou no Frieren" for row in rows)


def test_search_matches_every_title_tolerates_typos_and_ranks(catalog):
    def titles(**params):
        response = get(catalog, "/rpc/search_anime", select="title", **params)
        assert response.status_code == 200, response.text
        return [row["title"] for row in response.json()]

    assert titles(q="frieren")[0] == "Sousou no Frieren"
    assert titles(q="Фрирен") == ["Sousou no Frieren"]          # Russian title
    assert titles(q="Beyond Journey") == ["Sousou no Frieren"]  # English title
    assert "Sousou no Frieren" in titles(q="freiren")           # typo
    assert titles(q="cowboy bebop")[0] == "Cowboy Bebop"
    assert titles(q="bebop", kind="movie") == ["Cowboy Bebop: Tengoku no Tobira"]
    assert titles(q="frieren", genre="Приключения") == ["Sousou no Frieren"]
    assert "Hidden Frieren draft" not in titles(q="frieren")
    limited = get(catalog, "/rpc/search_anime", q="bebop", limit=1).json()
    assert len(limited) == 1


def test_search_needs_two_characters(catalog):
    response = get(catalog, "/rpc/search_anime", q="f")
    assert response.status_code == 400
    assert response.json()["code"] == "query_too_short"
    assert "2 characters" in response.json()["message"]


def test_responses_carry_security_headers(catalog):
    response = get(catalog, "/anime", limit=1)
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_openapi_documents_the_api(catalog):
    spec = get(catalog, "/").json()
    assert "Published catalog titles" in spec["definitions"]["anime"]["description"]
    assert spec["definitions"]["anime"]["properties"]["poster_url"]["description"].startswith("Absolute URL")
    # the signed-in resources are not advertised to anonymous callers (follow-privileges)
    assert "favorites" not in spec["definitions"]


def test_cors_allows_only_configured_origins(api_db, start_postgrest):
    postgrest = start_postgrest(api_db, cors_origins="https://kitsu.example")
    allowed = httpx.get(f"{postgrest.url}/anime", headers={"Origin": "https://kitsu.example"})
    other = httpx.get(f"{postgrest.url}/anime", headers={"Origin": "https://evil.example"})
    assert allowed.headers["access-control-allow-origin"] == "https://kitsu.example"
    assert other.status_code == 200 and "access-control-allow-origin" not in other.headers
