"""rpc/import_list through a real PostgREST (contract §15): Shikimori's and AniList's export
formats, 500 entries in one transaction, per-entry results, and a re-import that changes nothing."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import owner_connect
from tests.helpers import create_user

TITLES = 600  # shikimori_id 1..600, "Import title N", 24 episodes each
SHIKIMORI_STATUSES = ["planned", "watching", "rewatching", "completed", "on_hold", "dropped"]
OURS = {"planned": "planned", "watching": "watching", "rewatching": "watching", "completed": "completed",
        "on_hold": "on_hold", "dropped": "dropped"}
ANILIST_STATUSES = {"CURRENT": "watching", "PLANNING": "planned", "COMPLETED": "completed",
                    "DROPPED": "dropped", "PAUSED": "on_hold", "REPEATING": "watching"}


@pytest.fixture(scope="module")
def catalog(api_db, postgrest, mint):
    with owner_connect(api_db) as conn:
        conn.execute("insert into data.anime (shikimori_id, title, title_en, episodes_total, state)"
                     " select i, 'Import title ' || i, 'Imported English ' || i, 24, 'published'"
                     " from generate_series(1, %s) i", [TITLES])
        conn.execute("insert into data.anime (title, state) values ('Twin Title', 'published'),"
                     " ('Twin Title', 'published'), ('Only One Of Its Kind', 'published')")
        conn.execute("insert into data.anime (shikimori_id, title, state) values (700, 'Hidden draft', 'draft')")
        ids = dict(conn.execute("select shikimori_id, id::text from data.anime where shikimori_id is not null"))

    def person(email: str) -> httpx.Client:
        with owner_connect(api_db) as conn:
            user, sid = create_user(conn, email)
        return httpx.Client(base_url=postgrest.url, headers={"Authorization": f"Bearer {mint(user, sid)}"},
                            timeout=30)
    return {"ids": ids, "person": person, "db": api_db}


def shikimori_export(n: int = 500) -> list[dict]:
    """What Shikimori's "export list (JSON)" writes: one object per title."""
    return [{"target_title": f"Import title {i}", "target_title_ru": None, "target_id": i, "target_type": "Anime",
             "score": i % 11, "status": SHIKIMORI_STATUSES[i % 6], "rewatches": 0, "episodes": i % 25,
             "text": None} for i in range(1, n + 1)]


def anilist_export(n: int = 500) -> dict:
    """AniList's list as its API exports it (MediaListCollection), scores out of 100; every fifth
    entry has no MyAnimeList id and is matched by its title."""
    statuses = list(ANILIST_STATUSES)
    lists: dict[str, list[dict]] = {}
    for i in range(1, n + 1):
        status = statuses[i % len(statuses)]
        lists.setdefault(status, []).append({
            "status": status, "score": (i * 7) % 101, "progress": i % 25,
            "media": {"id": 90_000 + i, "idMal": None if i % 5 == 0 else i,
                      "title": {"romaji": f"Import title {i}", "english": f"Imported English {i}", "native": None}}})
    return {"data": {"MediaListCollection": {
        "user": {"name": "someone", "mediaListOptions": {"scoreFormat": "POINT_100"}},
        "lists": [{"name": name, "status": name, "entries": entries} for name, entries in lists.items()]}}}


def favorites(db: str, email: str) -> dict[str, tuple]:
    with owner_connect(db) as conn:
        rows = conn.execute(
            "select f.anime_id::text, f.list_status, f.score, f.episodes_watched, f.created_at, f.updated_at"
            "  from data.favorites f join data.users u on u.id = f.user_id where u.email = %s", [email])
        return {row[0]: row[1:] for row in rows}


def import_list(person: httpx.Client, items: object) -> list[dict]:
    response = person.post("/rpc/import_list", json={"items": items})
    assert response.status_code == 200, response.text
    return response.json()


def assert_reimport_changes_nothing(catalog, person: httpx.Client, email: str, items: object) -> None:
    before = favorites(catalog["db"], email)
    again = import_list(person, items)
    assert {(r["match"], r["action"]) for r in again} == {("matched", "unchanged")}
    assert favorites(catalog["db"], email) == before  # updated_at included


def test_a_shikimori_export_of_500_imports_in_one_transaction_and_again_changes_nothing(catalog):
    email = "shikimori-500@example.test"
    export = shikimori_export()
    with catalog["person"](email) as person:
        results = import_list(person, export)
        assert len(results) == 500
        assert {(r["match"], r["action"], r["matched_by"], r["reason"]) for r in results} == {
            ("matched", "imported", "mal_id", None)}
        stored = favorites(catalog["db"], email)
        assert len(stored) == 500
        assert len({created for _, _, _, created, _ in stored.values()}) == 1  # one transaction's now()
        for entry in export:
            status, score, episodes, *_ = stored[catalog["ids"][entry["target_id"]]]
            assert (status, score, episodes) == (OURS[entry["status"]], entry["score"] or None, entry["episodes"])
        assert_reimport_changes_nothing(catalog, person, email, export)

        export[9]["score"], export[10]["status"] = 3, "completed"  # items 10 and 11
        changed = import_list(person, export)
        assert [r["item"] for r in changed if r["action"] == "updated"] == [10, 11]


def test_an_anilist_export_of_500_imports_by_mal_id_or_title_with_its_score_format(catalog):
    email = "anilist-500@example.test"
    export = anilist_export()
    entries = [e for lst in export["data"]["MediaListCollection"]["lists"] for e in lst["entries"]]
    with catalog["person"](email) as person:
        results = import_list(person, export)
        assert len(results) == 500
        assert {(r["match"], r["action"]) for r in results} == {("matched", "imported")}
        by_item = {r["item"]: r for r in results}
        for item, entry in enumerate(entries, start=1):
            number = entry["media"]["title"]["romaji"].rsplit(" ", 1)[1]
            row = by_item[item]
            assert row["anime_id"] == catalog["ids"][int(number)]
            assert row["matched_by"] == ("title" if entry["media"]["idMal"] is None else "mal_id")
            expected_score = max((entry["score"] + 5) // 10, 1) if entry["score"] else None  # half up
            assert (row["list_status"], row["score"], row["episodes_watched"]) == (
                ANILIST_STATUSES[entry["status"]], expected_score, entry["progress"])
        stored = favorites(catalog["db"], email)
        assert len(stored) == 500 and len({created for _, _, _, created, _ in stored.values()}) == 1
        assert_reimport_changes_nothing(catalog, person, email, export)


def test_bad_entries_are_skipped_with_a_reason_and_the_good_ones_kept(catalog):
    email = "mixed@example.test"
    good = {"target_id": 1, "target_type": "Anime", "status": "rewatching", "score": 9, "episodes": 12}
    items = [
        good,
        {"target_id": 2, "target_type": "Manga", "status": "completed", "score": 7, "chapters": 100},
        {"target_id": 999_999, "target_type": "Anime", "status": "completed"},
        {"target_id": 700, "target_type": "Anime", "status": "completed"},  # a draft: unknown to the caller
        {"target_id": 3, "target_type": "Anime", "status": "binge"},
        {"target_id": 4, "target_type": "Anime", "status": "completed", "score": 11},
        {"target_id": 5, "target_type": "Anime", "status": "completed", "episodes": -1},
        {"target_id": 6, "target_type": "Anime", "status": "completed", "episodes": 25},  # of 24
        {"target_id": "six", "status": "completed"},
        "not an entry",
        {"status": "completed"},
        {"title": "Twin Title", "status": "planned"},
        {"title": "Only One Of Its Kind", "status": "planned"},
        {"mal_id": 1, "status": "dropped"},  # the same title again: the first entry wins
    ]
    with catalog["person"](email) as person:
        results = import_list(person, items)
    assert [(r["item"], r["match"], r["action"], r["reason"]) for r in results] == [
        (1, "matched", "imported", None),
        (2, None, "skipped", "not_anime"),
        (3, "not_found", "skipped", "not_found"),
        (4, "not_found", "skipped", "not_found"),
        (5, None, "skipped", "unknown_status"),
        (6, None, "skipped", "invalid_score"),
        (7, None, "skipped", "invalid_episodes"),
        (8, "matched", "skipped", "episodes_exceed_total"),
        (9, None, "skipped", "invalid_id"),
        (10, None, "skipped", "not_an_object"),
        (11, None, "skipped", "no_id_or_title"),
        (12, "ambiguous", "skipped", "ambiguous"),
        (13, "matched", "imported", None),
        (14, "matched", "skipped", "duplicate"),
    ]
    stored = favorites(catalog["db"], email)
    assert sorted(v[:3] for v in stored.values()) == [("planned", None, 0), ("watching", 9, 12)]


def test_an_entry_without_score_or_episodes_keeps_what_the_list_has(catalog):
    email = "partial@example.test"
    with catalog["person"](email) as person:
        import_list(person, [{"mal_id": 1, "status": "CURRENT", "score": 8, "progress": 3}])
        [row] = import_list(person, [{"mal_id": 1, "status": "COMPLETED"}])
    assert (row["action"], row["list_status"], row["score"], row["episodes_watched"]) == (
        "updated", "completed", 8, 3)


def test_what_is_not_a_list_export_is_refused_whole(catalog):
    with catalog["person"]("refused@example.test") as person:
        for items in [{"not": "a list"}, "text", 5, None, [{"mal_id": 1}] * 2001]:
            response = person.post("/rpc/import_list", json={"items": items})
            assert response.status_code == 400, items
            assert response.json()["code"] == "invalid_import"
    assert favorites(catalog["db"], "refused@example.test") == {}
