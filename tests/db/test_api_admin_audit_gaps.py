"""Audit with no gaps (issue 13), the parts not covered elsewhere: ingest's writes to the airing
schedule are audited as the system actor, one row per title whose airings changed, in the
publish's own statement; merging an auto-created duplicate into a title made by hand (one
transaction, one audit row, each refusal its own code)."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import owner_connect
from tests.helpers import create_anime, create_user


def stage_airing(conn, shikimori_id: int, episode: int, airs_at: str) -> None:
    conn.execute(
        "insert into data.staging_schedule (shikimori_id, episode_number, airs_at, content_hash) "
        "values (%s, %s, %s, md5(%s)) on conflict (shikimori_id) do update "
        "set episode_number = excluded.episode_number, airs_at = excluded.airs_at, "
        "content_hash = excluded.content_hash",
        (shikimori_id, episode, airs_at, f"{episode}@{airs_at}"))


def schedule_audit(conn, anime_id) -> list[tuple]:
    return conn.execute(
        "select actor_type, actor_id, before, after, reason from data.audit_log "
        "where action = 'ingest.schedule_update' and entity_id = %s order by id", (str(anime_id),)).fetchall()


def test_ingest_schedule_writes_are_audited_once_per_changed_title(conn):
    first = create_anime(conn, shikimori_id=990001)
    second = create_anime(conn, shikimori_id=990002)
    stage_airing(conn, 990001, 3, "2026-12-10T12:00:00Z")
    stage_airing(conn, 990002, 7, "2026-12-11T12:00:00Z")
    result = conn.execute("select ingest.publish(null, array[990001, 990002])").fetchone()[0]
    assert result["schedule_written"] == 2
    assert schedule_audit(conn, first) == [
        ("system", None, {"3": None}, {"3": "2026-12-10T12:00:00+00:00"}, "publish")]
    assert len(schedule_audit(conn, second)) == 1

    # the same airing again: nothing written, nothing audited; a moved airing: before/after
    assert conn.execute("select ingest.publish(null, array[990001])").fetchone()[0]["schedule_written"] == 0
    stage_airing(conn, 990001, 3, "2026-12-10T18:30:00Z")
    stage_airing(conn, 990002, 7, "2026-12-11T12:00:00Z")  # unchanged content: no row for it
    conn.execute("select ingest.publish(null, array[990001, 990002])")
    assert schedule_audit(conn, first)[1][2:4] == (
        {"3": "2026-12-10T12:00:00+00:00"}, {"3": "2026-12-10T18:30:00+00:00"})
    assert len(schedule_audit(conn, second)) == 1


# --- merging an auto-created duplicate into a title made by hand ----------------------------------

@pytest.fixture(scope="module")
def world(api_db, postgrest, mint):
    tokens, people = {}, {}
    with owner_connect(api_db) as conn:
        for who, role in (("admin", "admin"), ("editor", "editor"), ("fan", None), ("fan2", None)):
            user_id, session_id = create_user(conn, f"{who}@gaps.test")
            if role:
                conn.execute("insert into data.user_roles (user_id, role) values (%s, %s)", (user_id, role))
            tokens[who], people[who] = mint(user_id, session_id), user_id
        conn.execute("insert into data.translations (id, title, type) values (9101, 'Studio A', 'voice'), "
                     "(9102, 'Studio B', 'voice') on conflict do nothing")
    return {"url": postgrest.url, "db": api_db, "tokens": tokens, "people": people}


def call(world, who: str, path: str, **body: object) -> httpx.Response:
    return httpx.post(world["url"] + path, json=body, timeout=10,
                      headers={"Authorization": f"Bearer {world['tokens'][who]}"})


def add_player(conn, anime_id, number: int, translation_id: int, url: str) -> None:
    conn.execute("insert into data.episode_sources (episode_id, translation_id, player_url, source) "
                 "select id, %s, %s, 'parser' from data.episodes where anime_id = %s and number = %s",
                 (translation_id, url, anime_id, number))


def pair(world, shikimori_id: int):
    """A manual title with episodes 1-2 and an auto-created duplicate with episodes 1-3, each
    with favorites and progress of the same person (fan) and the duplicate's of another (fan2)."""
    fan, fan2 = world["people"]["fan"], world["people"]["fan2"]
    with owner_connect(world["db"]) as conn:
        target = create_anime(conn, "Hand made", episodes=2, source="manual", episodes_total=12)
        dup = create_anime(conn, "Auto", episodes=3, source="parser", shikimori_id=shikimori_id)
        add_player(conn, target, 1, 9101, "https://k.test/t1a")
        add_player(conn, dup, 1, 9101, "https://k.test/d1a")  # the target has its own: stays
        add_player(conn, dup, 1, 9102, "https://k.test/d1b")  # the target lacks it: moves
        add_player(conn, dup, 3, 9101, "https://k.test/d3a")  # with episode 3
        for anime_id, status, watched, score in ((target, "watching", 1, None), (dup, "completed", 3, 8)):
            conn.execute("insert into data.favorites (user_id, anime_id, list_status, episodes_watched, score) "
                         "values (%s, %s, %s, %s, %s)", (fan, anime_id, status, watched, score))
        conn.execute("insert into data.favorites (user_id, anime_id) values (%s, %s)", (fan2, dup))
        conn.execute("insert into data.watch_progress (user_id, anime_id, episode_number, position_seconds, "
                     "last_watched_at) values (%s, %s, 1, 10, now() - interval '1 day'), "
                     "(%s, %s, 3, 20, now())", (fan, target, fan, dup))
        conn.execute("insert into data.anime_relations (anime_id, related_shikimori_id, relation) "
                     "values (%s, 4242, 'sequel')", (dup,))
    return target, dup


def test_merging_moves_everything_onto_the_target_in_one_audited_change(world):
    target, dup = pair(world, 880001)
    with owner_connect(world["db"]) as conn:  # the duplicate's upstream row, published into it
        conn.execute("insert into data.staging_anime (shikimori_id, payload, content_hash, anime_id, matched_by, "
                     "published_hash) values (880001, '{}', 'x', %s, 'auto', 'x')", (dup,))
    answer = call(world, "admin", "/rpc/admin_merge_anime", duplicate_id=str(dup), target_id=str(target),
                  reason="auto-created twin")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["anime"]["shikimori_id"] == 880001 and body["anime"]["episodes_count"] == 3
    assert body["merged"] == {"staging": 1, "episodes": 1, "players": 1, "favorites": 1,
                              "favorites_collapsed": 1, "progress": 1, "history": 0, "relations": 1,
                              "schedule": 0}
    fan, fan2 = world["people"]["fan"], world["people"]["fan2"]
    with owner_connect(world["db"]) as conn:
        assert conn.execute("select shikimori_id, deleted_at is not null, delete_reason from data.anime where id = %s",
                            (dup,)).fetchone() == (None, True, f"merged into {target}: auto-created twin")
        players = conn.execute("select e.number, s.translation_id, s.player_url from data.episode_sources s "
                               "join data.episodes e on e.id = s.episode_id where e.anime_id = %s order by 1, 2",
                               (target,)).fetchall()
        assert players == [(1, 9101, "https://k.test/t1a"), (1, 9102, "https://k.test/d1b"),
                           (3, 9101, "https://k.test/d3a")]
        favorites = conn.execute("select user_id, list_status, episodes_watched, score from data.favorites "
                                 "where anime_id in (%s, %s) order by user_id = %s desc",
                                 (target, dup, fan)).fetchall()
        assert favorites == [(fan, "watching", 3, 8), (fan2, "planned", 0, None)]
        assert conn.execute("select anime_id, episode_number, position_seconds, episode_id is not null "
                            "from data.watch_progress where user_id = %s", (fan,)).fetchall() == [(target, 3, 20, True)]
        # ingest writes into the target from now on (its next publish included)
        assert conn.execute("select anime_id, matched_by, published_hash from data.staging_anime "
                            "where shikimori_id = 880001").fetchone() == (target, "manual", None)
        assert conn.execute("select anime_id from data.anime_relations where related_shikimori_id = 4242"
                            ).fetchall() == [(target,)]
        audit = conn.execute("select action, entity_id, after -> 'moved' ->> 'episodes' from data.audit_log "
                             "where actor_id = %s and action like 'anime.%%'", (world["people"]["admin"],)).fetchall()
        assert audit == [("anime.merge", str(target), "1")]


def test_merge_refusals_each_have_their_own_code_and_change_nothing(world):
    target, dup = pair(world, 880002)
    with owner_connect(world["db"]) as conn:
        other = create_anime(conn, "Other upstream", shikimori_id=880003)
        gone = create_anime(conn, "Deleted", deleted=True)
        staged = create_anime(conn, "Matched, not published yet")
        conn.execute("insert into data.staging_anime (shikimori_id, payload, content_hash, anime_id, matched_by) "
                     "values (880004, '{}', 'x', %s, 'manual'), (880002, '{}', 'y', %s, 'auto')", (staged, dup))
        before = conn.execute("select count(*), max(id) from data.audit_log").fetchone()
    cases = [
        ("editor", dup, target, 403, "permission_denied"),  # audited, coalesced
        ("admin", dup, dup, 409, "merge_same_title"),
        ("admin", dup, uuid.uuid4(), 404, "anime_not_found"),
        ("admin", dup, gone, 410, "merge_target_deleted"),
        ("admin", gone, target, 410, "anime_deleted"),
        ("admin", dup, other, 409, "shikimori_id_conflict"),
        ("admin", dup, staged, 409, "shikimori_id_conflict"),
    ]
    for who, source, into, status, code in cases:
        answer = call(world, who, "/rpc/admin_merge_anime", duplicate_id=str(source), target_id=str(into))
        assert (answer.status_code, answer.json()["code"]) == (status, code), (who, code, answer.text)
    with owner_connect(world["db"]) as conn:
        assert conn.execute("select shikimori_id, deleted_at from data.anime where id = %s", (dup,)).fetchone() == (
            880002, None)
        assert conn.execute("select count(*) from data.episodes where anime_id = %s", (dup,)).fetchone()[0] == 3
        rows = conn.execute("select action from data.audit_log where id > %s", (before[1],)).fetchall()
        assert rows == [("security.permission_denied",)]


# --- the old parser's translation and quality priorities, as data ----------------------------------

def public_players(world, anime_id) -> list[tuple]:
    rows = httpx.get(world["url"] + "/episodes", timeout=10, params={
        "anime_id": f"eq.{anime_id}", "number": "eq.1",
        "select": "episode_sources(translation_id,quality,preference,preferred)",
        "episode_sources.order": "preference,translation_id"}).json()
    return [(s["translation_id"], s["quality"], s["preferred"]) for s in rows[0]["episode_sources"]]


def test_priorities_decide_which_player_is_offered_first(world):
    with owner_connect(world["db"]) as conn:
        conn.execute("insert into data.translations (id, title, type) values (9103, 'Subs C', 'subtitles') "
                     "on conflict do nothing")
        anime_id = create_anime(conn, "Players", episodes=1)
        for translation_id, quality in ((9101, "WEB-DLRip 720p"), (9102, "BDRip 1080p"), (9103, "BDRip 1080p")):
            conn.execute("insert into data.episode_sources (episode_id, translation_id, player_url, quality) "
                         "select id, %s, 'https://k.test/p', %s from data.episodes where anime_id = %s",
                         (translation_id, quality, anime_id))
    # nothing ranked: by translation id
    assert [p[0] for p in public_players(world, anime_id)] == [9101, 9102, 9103]
    # quality first: 1080p before 720p
    answer = call(world, "admin", "/rpc/admin_set_player_priorities", qualities=["1080p", "720p"])
    assert answer.status_code == 200, answer.text
    assert public_players(world, anime_id) == [(9102, "BDRip 1080p", True), (9103, "BDRip 1080p", False),
                                               (9101, "WEB-DLRip 720p", False)]
    # a translation priority comes before quality; the public order changed, so the catalog
    # version (the ETag of cached public answers) moves with it
    with owner_connect(world["db"]) as conn:
        version = conn.execute("select version from data.catalog_version").fetchone()[0]
    answer = call(world, "admin", "/rpc/admin_set_player_priorities", translations=[9103, 9101], reason="dub fans")
    assert answer.json()["priorities"] == {"translations": [9103, 9101], "qualities": ["1080p", "720p"]}
    assert [p[0] for p in public_players(world, anime_id)] == [9103, 9101, 9102]
    with owner_connect(world["db"]) as conn:
        assert conn.execute("select version from data.catalog_version").fetchone()[0] > version
    ranked = httpx.get(world["url"] + "/admin_player_priorities?order=kind,priority", timeout=10,
                       headers={"Authorization": f"Bearer {world['tokens']['admin']}"}).json()
    assert [(r["kind"], r["key"], r["priority"]) for r in ranked] == [
        ("quality", "1080p", 1), ("quality", "720p", 2), ("translation", "9103", 1), ("translation", "9101", 2)]

    # each change one audit row; the same lists again: none
    with owner_connect(world["db"]) as conn:
        audit = conn.execute("select before, after, reason from data.audit_log "
                             "where action = 'ingest.priorities_update' order by id").fetchall()
    assert len(audit) == 2 and audit[1] == (
        {"translations": [], "qualities": ["1080p", "720p"]},
        {"translations": [9103, 9101], "qualities": ["1080p", "720p"]}, "dub fans")
    again = call(world, "admin", "/rpc/admin_set_player_priorities", translations=[9103, 9101])
    assert again.json()["warnings"] == ["no_changes"] and again.json()["audit_log_id"] is None


def test_priority_refusals_each_have_their_own_code_and_change_nothing(world):
    with owner_connect(world["db"]) as conn:
        before = conn.execute("select private.player_priorities_json()").fetchone()[0]
    cases = [
        ("editor", {"qualities": ["480p"]}, 403, "permission_denied"),
        ("admin", {}, 400, "empty_patch"),
        ("admin", {"qualities": ["720p", "720P"]}, 400, "duplicate_priority"),
        ("admin", {"qualities": ["<script>"]}, 400, "invalid_quality"),
        ("admin", {"translations": [9101, -5], "qualities": ["480p"]}, 404, "translation_not_found"),
        ("admin", {"qualities": [f"q{i}" for i in range(1001)]}, 400, "too_many_priorities"),
    ]
    for who, body, status, code in cases:
        answer = call(world, who, "/rpc/admin_set_player_priorities", **body)
        assert (answer.status_code, answer.json()["code"]) == (status, code), (body, answer.text)
    with owner_connect(world["db"]) as conn:
        assert conn.execute("select private.player_priorities_json()").fetchone()[0] == before
