"""The signed-in part of the API through a real PostgREST: favorites, progress, me, sessions,
and who may see what."""

from __future__ import annotations

import concurrent.futures
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import owner_connect
from tests.helpers import create_anime, create_user

OBJECT = "application/vnd.pgrst.object+json"


@pytest.fixture(scope="module")
def world(api_db, postgrest, mint):
    """Two people, twenty published titles with episodes, one draft and one deleted title."""
    with owner_connect(api_db) as conn:
        alice, alice_sid = create_user(conn, "alice@example.test")
        bob, bob_sid = create_user(conn, "bob@example.test")
        published = [create_anime(conn, f"Published {i}", episodes=3, poster_url=f"https://img.test/{i}.jpg")
                     for i in range(20)]
        draft = create_anime(conn, "Draft title", state="draft")
        deleted = create_anime(conn, "Deleted title", deleted=True)
    return {
        "url": postgrest.url,
        "alice": alice, "bob": bob,
        "alice_token": mint(alice, alice_sid), "bob_token": mint(bob, bob_sid),
        "published": published, "draft": draft, "deleted": deleted,
        "db": api_db, "mint": mint,
    }


def client(world, who: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {world[who + '_token']}"} if who else {}
    return httpx.Client(base_url=world["url"], headers=headers, timeout=10)


def test_favorites_embed_their_anime_in_one_request(world):
    with client(world, "alice") as alice:
        for anime_id in world["published"]:
            assert alice.post("/favorites", json={"anime_id": str(anime_id)}).status_code == 201
        response = alice.get("/favorites", params={"select": "*,anime(*)", "order": "created_at.desc"})
    assert response.status_code == 200
    rows = response.json()
    assert len(rows) == 20
    assert {row["anime_id"] for row in rows} == {str(a) for a in world["published"]}
    assert all(row["anime"]["id"] == row["anime_id"] and row["anime"]["poster_url"] for row in rows)
    assert all(row["user_id"] == str(world["alice"]) and row["list_status"] == "planned" for row in rows)


def test_continue_watching_embeds_anime_and_episode(world):
    anime_id = world["published"][0]
    with client(world, "alice") as alice:
        saved = alice.post("/rpc/save_progress", json={
            "anime_id": str(anime_id), "episode_number": 2, "position_seconds": 300})
        assert saved.status_code == 200, saved.text
        response = alice.get("/continue_watching", params={
            "select": "*,anime(id,title,poster_url),episodes(id,number,title)",
            "order": "last_watched_at.desc"})
    assert response.status_code == 200
    [row] = [r for r in response.json() if r["anime_id"] == str(anime_id)]
    assert row["anime"]["title"] == "Published 0"
    assert row["episodes"]["number"] == 2 and row["episode_id"] == row["episodes"]["id"]
    assert row["position_seconds"] == 300
    assert row["new_episodes"] == 1  # episode 3 of 3


def test_continue_watching_counts_new_episodes_aired_since_the_last_watched(world):
    with owner_connect(world["db"]) as conn:
        anime_id = create_anime(conn, "Still airing", episodes=5)
        # episode 4 deleted, episode 5 announced for next week: neither is new yet
        conn.execute("update data.episodes set deleted_at = now() where anime_id = %s and number = 4", [anime_id])
        conn.execute("update data.episodes set aired_at = now() + interval '7 days'"
                     " where anime_id = %s and number = 5", [anime_id])
    with client(world, "bob") as bob:
        saved = bob.post("/rpc/save_progress",
                         json={"anime_id": str(anime_id), "episode_number": 1, "position_seconds": 60})
        assert saved.status_code == 200, saved.text
        [row] = [r for r in bob.get("/continue_watching").json() if r["anime_id"] == str(anime_id)]
        assert row["new_episodes"] == 2  # episodes 2 and 3
        with owner_connect(world["db"]) as conn:
            conn.execute("update data.episodes set aired_at = now() - interval '1 minute'"
                         " where anime_id = %s and number = 5", [anime_id])
        [row] = [r for r in bob.get("/continue_watching").json() if r["anime_id"] == str(anime_id)]
        assert row["new_episodes"] == 3
        saved = bob.post("/rpc/save_progress",
                         json={"anime_id": str(anime_id), "episode_number": 5, "position_seconds": 60})
        assert saved.status_code == 200, saved.text
        [row] = [r for r in bob.get("/continue_watching").json() if r["anime_id"] == str(anime_id)]
        assert row["new_episodes"] == 0


@pytest.mark.parametrize("prefer, allowed", [
    ("resolution=ignore-duplicates", {200, 201}),
    ("resolution=merge-duplicates", {200, 201}),
    (None, {201, 409}),  # without a resolution a duplicate is a conflict, never a 5xx
])
def test_fifty_concurrent_adds_of_one_favorite_store_one_row(world, prefer, allowed):
    with owner_connect(world["db"]) as conn:
        anime_id = str(create_anime(conn))
    token = world["bob_token"]
    headers = {"Authorization": f"Bearer {token}", **({"Prefer": prefer} if prefer else {})}

    def add(_: int) -> int:
        with httpx.Client(base_url=world["url"], timeout=30) as c:
            return c.post("/favorites", json={"anime_id": anime_id}, headers=headers).status_code

    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        statuses = list(pool.map(add, range(50)))
    assert set(statuses) <= allowed, statuses
    if prefer is None:
        assert statuses.count(201) == 1
    with owner_connect(world["db"]) as conn:
        count = conn.execute("select count(*) from data.favorites where user_id = %s and anime_id = %s",
                             (world["bob"], anime_id)).fetchone()[0]
    assert count == 1


def test_duplicate_favorite_without_prefer_is_409_and_with_merge_updates(world):
    anime_id = str(world["published"][6])
    with client(world, "bob") as bob:
        assert bob.post("/favorites", json={"anime_id": anime_id}).status_code == 201
        assert bob.post("/favorites", json={"anime_id": anime_id}).status_code == 409
        merged = bob.post("/favorites", json={"anime_id": anime_id, "list_status": "watching"},
                          headers={"Prefer": "resolution=merge-duplicates,return=representation"})
        assert merged.status_code in (200, 201), merged.text
        assert merged.json()[0]["list_status"] == "watching"
        assert bob.patch("/favorites", params={"anime_id": f"eq.{anime_id}"},
                         json={"list_status": "bogus"}).status_code == 400


def test_delete_favorite_is_204_even_when_absent(world):
    anime_id = str(world["published"][7])
    with client(world, "bob") as bob:
        bob.post("/favorites", json={"anime_id": anime_id})
        assert bob.delete("/favorites", params={"anime_id": f"eq.{anime_id}"}).status_code == 204
        assert bob.delete("/favorites", params={"anime_id": f"eq.{anime_id}"}).status_code == 204
        assert bob.get("/favorites", params={"anime_id": f"eq.{anime_id}"}).json() == []


def test_people_never_touch_each_others_rows(world):
    target = str(world["published"][0])
    with client(world, "bob") as bob:
        # reading: only bob's rows, however the filter is written
        assert bob.get("/favorites", params={"user_id": f"eq.{world['alice']}"}).json() == []
        # changing and deleting alice's favorite affects nothing
        assert bob.patch("/favorites", params={"anime_id": f"eq.{target}", "user_id": f"eq.{world['alice']}"},
                         json={"list_status": "dropped"}).status_code in (200, 204)
        assert bob.delete("/favorites", params={"user_id": f"eq.{world['alice']}"}).status_code == 204
        # writing a row owned by alice is refused
        forged = bob.post("/favorites", json={"anime_id": target, "user_id": str(world["alice"])})
        assert forged.status_code in (401, 403)
        assert bob.get("/watch_progress", params={"anime_id": f"eq.{target}"}).json() == []
        sessions = bob.get("/sessions").json()
        assert len(sessions) == 1 and sessions[0]["current"] is True
    with client(world, "alice") as alice:
        rows = alice.get("/favorites", params={"anime_id": f"eq.{target}"}).json()
        assert rows and rows[0]["list_status"] == "planned"
        assert len(alice.get("/watch_progress").json()) >= 1
        alice_sessions = alice.get("/sessions").json()
    with client(world, "bob") as bob:
        # bob cannot revoke alice's session
        assert bob.delete("/sessions", params={"id": f"eq.{alice_sessions[0]['id']}"}).status_code == 204
    with client(world, "alice") as alice:
        assert alice.get("/me", headers={"Accept": OBJECT}).status_code == 200


@pytest.mark.parametrize("method, path", [
    ("GET", "/favorites"), ("POST", "/favorites"), ("PATCH", "/favorites"), ("DELETE", "/favorites"),
    ("GET", "/continue_watching"), ("GET", "/watch_progress"), ("GET", "/me"), ("PATCH", "/me"),
    ("GET", "/sessions"), ("DELETE", "/sessions"), ("POST", "/rpc/save_progress"), ("GET", "/watch_history"),
])
def test_anonymous_callers_get_401_on_signed_in_resources(world, method, path):
    with client(world) as anon:
        anime_id = str(world["published"][0])
        body = {"/favorites": {"anime_id": anime_id}, "/me": {"display_name": "x"},
                "/rpc/save_progress": {"anime_id": anime_id, "episode_number": 1, "position_seconds": 1}}
        response = anon.request(method, path, json=body[path] if method in ("POST", "PATCH") else None)
    assert response.status_code == 401, response.text


def test_unpublished_and_deleted_titles_are_invisible(world):
    hidden = {str(world["draft"]), str(world["deleted"])}
    for who in (None, "alice"):
        with client(world, who) as c:
            ids = {row["id"] for row in c.get("/anime", params={"select": "id"}).json()}
            assert ids and not ids & hidden
            for anime_id in hidden:
                assert c.get("/anime", params={"id": f"eq.{anime_id}"}).json() == []
                assert c.get("/episodes", params={"anime_id": f"eq.{anime_id}"}).json() == []
    with client(world, "alice") as alice:
        missing = alice.post("/rpc/save_progress", json={
            "anime_id": str(world["draft"]), "episode_number": 1, "progress_percent": 10})
        assert missing.status_code == 404 and missing.json()["code"] == "anime_not_found"


def test_a_favorite_whose_title_is_unpublished_is_kept_but_not_listed(world):
    with owner_connect(world["db"]) as conn:
        anime_id = create_anime(conn, "Soon unpublished")
    with client(world, "alice") as alice:
        assert alice.post("/favorites", json={"anime_id": str(anime_id)}).status_code == 201
        with owner_connect(world["db"]) as conn:
            conn.execute("update data.anime set state = 'archived' where id = %s", (anime_id,))
        assert alice.get("/favorites", params={"anime_id": f"eq.{anime_id}"}).json() == []
    with owner_connect(world["db"]) as conn:
        kept = conn.execute("select count(*) from data.favorites where anime_id = %s", (anime_id,)).fetchone()[0]
    assert kept == 1


@pytest.mark.parametrize("body, message", [
    ({"episode_number": 0, "position_seconds": 1}, "episode_number"),
    ({"episode_number": 1}, "position_seconds, progress_percent"),
    ({"episode_number": 1, "position_seconds": -5}, "position_seconds"),
    ({"episode_number": 1, "progress_percent": 100.5}, "progress_percent"),
    ({"episode_number": 1, "progress_percent": -1}, "progress_percent"),
    ({"episode_number": 1, "position_seconds": 1, "translation_id": 999999}, "translation_id"),
    ({"episode_number": 1, "position_seconds": 1, "watched_at": "2999-01-01T00:00:00Z"}, "future"),
])
def test_save_progress_rejects_invalid_input_and_stores_nothing(world, body, message):
    anime_id = str(world["published"][10])
    with client(world, "bob") as bob:
        response = bob.post("/rpc/save_progress", json={"anime_id": anime_id, **body})
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "invalid_progress"
        assert message in response.json()["message"]
        assert response.headers["x-content-type-options"] == "nosniff"
        assert bob.get("/watch_progress", params={"anime_id": f"eq.{anime_id}"}).json() == []


def test_save_progress_rejects_malformed_types(world):
    with client(world, "bob") as bob:
        response = bob.post("/rpc/save_progress", json={"anime_id": "not-a-uuid", "episode_number": 1,
                                                        "position_seconds": 1})
        assert response.status_code == 400


def test_an_older_watched_at_never_overwrites_a_newer_one(world):
    anime_id = str(world["published"][11])
    now = datetime.now(UTC)
    with client(world, "bob") as bob:
        newer = bob.post("/rpc/save_progress", json={
            "anime_id": anime_id, "episode_number": 3, "position_seconds": 900,
            "watched_at": now.isoformat()})
        assert newer.status_code == 200
        late = bob.post("/rpc/save_progress", json={
            "anime_id": anime_id, "episode_number": 1, "position_seconds": 10,
            "watched_at": (now - timedelta(hours=1)).isoformat()})
        assert late.status_code == 200
        assert late.json()["episode_number"] == 3 and late.json()["position_seconds"] == 900
        [stored] = bob.get("/watch_progress", params={"anime_id": f"eq.{anime_id}"}).json()
        assert stored["episode_number"] == 3
        # a newer report does win
        later = bob.post("/rpc/save_progress", json={
            "anime_id": anime_id, "episode_number": 4, "progress_percent": 12.5})
        assert later.json()["episode_number"] == 4 and later.json()["progress_percent"] == 12.5


def test_me_reads_and_patches_only_its_own_profile_fields(world):
    with client(world, "alice") as alice:
        me = alice.get("/me", headers={"Accept": OBJECT}).json()
        assert me["id"] == str(world["alice"]) and me["email"] == "alice@example.test"
        # `user` holds no permission: anime.view means the admin catalog (migration 0030)
        assert me["roles"] == ["user"] and me["permissions"] == []
        assert "password_hash" not in me
        patched = alice.patch("/me", json={"display_name": "Alice", "avatar_url": "https://img.test/a.png"},
                              headers={"Prefer": "return=representation", "Accept": OBJECT})
        assert patched.status_code == 200 and patched.json()["display_name"] == "Alice"
        assert alice.patch("/me", json={"email": "evil@example.test"}).status_code in (401, 403)
        assert alice.patch("/me", json={"avatar_url": "javascript:alert(1)"}).status_code == 400


def test_a_revoked_session_token_is_refused_on_the_next_request(world, mint):
    with owner_connect(world["db"]) as conn:
        user_id, sid = create_user(conn)
        _, other_sid = create_user(conn)
    token = mint(user_id, sid)
    with httpx.Client(base_url=world["url"], headers={"Authorization": f"Bearer {token}"}) as c:
        assert c.get("/favorites").status_code == 200
        # the person signs this device out through the API itself
        assert c.delete("/sessions", params={"id": f"eq.{sid}"}).status_code == 204
        refused = c.get("/favorites")
    assert refused.status_code == 401 and refused.json()["code"] == "session_expired"
    # a token naming someone else's session is refused too
    assert httpx.get(f"{world['url']}/favorites",
                     headers={"Authorization": f"Bearer {mint(user_id, other_sid)}"}).status_code == 401
    assert httpx.get(f"{world['url']}/favorites",
                     headers={"Authorization": f"Bearer {mint(user_id, uuid.uuid4())}"}).status_code == 401


def test_tokens_with_a_foreign_role_or_no_session_are_refused(world, mint):
    alice = world["alice"]
    for token in (mint(alice, None), mint(None, None), mint(alice, None, role="authenticator")):
        response = httpx.get(f"{world['url']}/anime", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code in (401, 403), response.text


def test_a_deactivated_account_is_refused_on_the_next_request(world, mint):
    with owner_connect(world["db"]) as conn:
        user_id, sid = create_user(conn)
    headers = {"Authorization": f"Bearer {mint(user_id, sid)}"}
    assert httpx.get(f"{world['url']}/favorites", headers=headers).status_code == 200
    with owner_connect(world["db"]) as conn:
        conn.execute("update data.users set is_active = false where id = %s", (user_id,))
    assert httpx.get(f"{world['url']}/favorites", headers=headers).status_code == 401


def test_watch_history_keeps_each_episode_and_can_be_forgotten(world):
    anime_id = str(world["published"][12])
    with client(world, "alice") as alice:
        for episode in (1, 2, 3):
            assert alice.post("/rpc/save_progress", json={
                "anime_id": anime_id, "episode_number": episode, "progress_percent": 100}).status_code == 200
        history = alice.get("/watch_history", params={"anime_id": f"eq.{anime_id}", "order": "episode_number"})
        assert [row["episode_number"] for row in history.json()] == [1, 2, 3]
        assert alice.delete("/watch_history", params={"anime_id": f"eq.{anime_id}",
                                                      "episode_number": "eq.2"}).status_code == 204
        assert len(alice.get("/watch_history", params={"anime_id": f"eq.{anime_id}"}).json()) == 2
    with client(world, "bob") as bob:
        assert bob.get("/watch_history", params={"anime_id": f"eq.{anime_id}"}).json() == []
        bob.delete("/watch_history", params={"anime_id": f"eq.{anime_id}"})
    with client(world, "alice") as alice:
        assert len(alice.get("/watch_history", params={"anime_id": f"eq.{anime_id}"}).json()) == 2


def test_import_list_matches_by_mal_id_or_title_and_stores_statuses(world):
    with owner_connect(world["db"]) as conn:
        by_id = create_anime(conn, "Mushishi", shikimori_id=457)
        by_title = create_anime(conn, "Kimi no Na wa.", title_en="Your Name.")
    items = [{"mal_id": 457, "title": "something else", "status": "COMPLETED"},
             {"title": "Your Name", "status": "PLANNING"},
             {"title": "zzzz no such title qqq", "status": "CURRENT"},
             {"mal_id": 457, "status": "DROPPED"}]
    with client(world, "alice") as alice:
        response = alice.post("/rpc/import_list", json={"items": items})
        assert response.status_code == 200, response.text
        rows = response.json()
        assert [(r["item"], r["anime_id"], r["matched_by"]) for r in rows] == [
            (1, str(by_id), "mal_id"), (2, str(by_title), "title"), (3, None, None), (4, str(by_id), "mal_id")]
        stored = {r["anime_id"]: r["list_status"] for r in alice.get(
            "/favorites", params={"anime_id": f"in.({by_id},{by_title})"}).json()}
        assert stored == {str(by_id): "completed", str(by_title): "planned"}  # first entry of a title wins
        assert alice.post("/rpc/import_list", json={"items": {"not": "a list"}}).status_code == 400
        # an unreadable entry is skipped with its reason (tests/db/test_import_list.py has the rest)
        invalid = alice.post("/rpc/import_list", json={"items": [{"mal_id": 457, "status": "WATCHED_TWICE"},
                                                                 {"mal_id": "x1"}]})
        assert [(r["action"], r["reason"]) for r in invalid.json()] == [
            ("skipped", "unknown_status"), ("skipped", "invalid_id")]
    with client(world) as anon:
        assert anon.post("/rpc/import_list", json={"items": items}).status_code == 401


def test_list_counts_counts_the_callers_list_per_status_in_one_request(world):
    with owner_connect(world["db"]) as conn:
        carol, carol_sid = create_user(conn, "carol-counts@example.test")
        titles = [create_anime(conn) for _ in range(3)]
    headers = {"Authorization": f"Bearer {world['mint'](carol, carol_sid)}"}
    with httpx.Client(base_url=world["url"], headers=headers, timeout=10) as carol_client:
        for anime_id, status in zip(titles, ["watching", "watching", "dropped"], strict=True):
            added = carol_client.post("/favorites", json={"anime_id": str(anime_id), "list_status": status})
            assert added.status_code == 201, added.text
        response = carol_client.get("/list_counts")
    assert response.status_code == 200
    assert {r["list_status"]: r["titles"] for r in response.json()} == {"watching": 2, "dropped": 1}
    with client(world) as anon:
        assert anon.get("/list_counts").status_code == 401


def test_favorites_keep_a_score_and_episodes_watched_written_on_post_and_patch(world):
    with owner_connect(world["db"]) as conn:
        dave, dave_sid = create_user(conn, "dave-score@example.test")
        counted, open_ended = create_anime(conn, episodes_total=12), create_anime(conn)
    headers = {"Authorization": f"Bearer {world['mint'](dave, dave_sid)}",
               "Prefer": "return=representation"}
    with httpx.Client(base_url=world["url"], headers=headers, timeout=10) as dave_client:
        added = dave_client.post("/favorites", json={"anime_id": str(counted), "score": 7, "episodes_watched": 3})
        assert added.status_code == 201, added.text
        assert (added.json()[0]["score"], added.json()[0]["episodes_watched"]) == (7, 3)
        plain = dave_client.post("/favorites", json={"anime_id": str(open_ended)})
        assert (plain.json()[0]["score"], plain.json()[0]["episodes_watched"]) == (None, 0)
        patched = dave_client.patch("/favorites", params={"anime_id": f"eq.{counted}"},
                                    json={"score": 10, "episodes_watched": 12})
        assert patched.status_code == 200, patched.text
        # no known episode count: any non-negative number
        assert dave_client.patch("/favorites", params={"anime_id": f"eq.{open_ended}"},
                                 json={"score": 1, "episodes_watched": 500}).status_code == 200
        assert dave_client.patch("/favorites", params={"anime_id": f"eq.{open_ended}"},
                                 json={"score": None}).status_code == 200
        rows = {r["anime_id"]: (r["score"], r["episodes_watched"])
                for r in dave_client.get("/favorites").json()}
    assert rows == {str(counted): (10, 12), str(open_ended): (None, 500)}


@pytest.mark.parametrize("body, constraint", [
    ({"score": 0}, "favorites_score_1_to_10"),
    ({"score": 11}, "favorites_score_1_to_10"),
    ({"score": -3}, "favorites_score_1_to_10"),
    ({"episodes_watched": -1}, "favorites_episodes_watched_nonnegative"),
    ({"episodes_watched": 13}, "favorites_episodes_watched_within_total"),
])
def test_out_of_range_score_or_episodes_is_400_naming_the_rule_and_changes_nothing(world, body, constraint):
    with owner_connect(world["db"]) as conn:
        erin, erin_sid = create_user(conn, f"erin-{uuid.uuid4().hex[:8]}@example.test")
        anime_id = str(create_anime(conn, episodes_total=12))
    headers = {"Authorization": f"Bearer {world['mint'](erin, erin_sid)}"}
    with httpx.Client(base_url=world["url"], headers=headers, timeout=10) as erin_client:
        # on POST: nothing stored
        posted = erin_client.post("/favorites", json={"anime_id": anime_id, **body})
        assert posted.status_code == 400, posted.text
        assert posted.json()["code"] == "23514" and constraint in posted.json()["message"]
        assert erin_client.get("/favorites").json() == []
        # on PATCH: the stored row is unchanged
        assert erin_client.post("/favorites", json={"anime_id": anime_id, "score": 5,
                                                    "episodes_watched": 2}).status_code == 201
        patched = erin_client.patch("/favorites", params={"anime_id": f"eq.{anime_id}"}, json=body)
        assert patched.status_code == 400, patched.text
        assert patched.json()["code"] == "23514" and constraint in patched.json()["message"]
        rows = erin_client.get("/favorites").json()
    assert [(r["score"], r["episodes_watched"]) for r in rows] == [(5, 2)]


def test_nobody_changes_another_persons_score_or_episodes(world):
    with owner_connect(world["db"]) as conn:
        frank, frank_sid = create_user(conn, "frank-score@example.test")
        anime_id = str(create_anime(conn, episodes_total=24))
    frank_headers = {"Authorization": f"Bearer {world['mint'](frank, frank_sid)}"}
    with httpx.Client(base_url=world["url"], headers=frank_headers, timeout=10) as frank_client:
        assert frank_client.post("/favorites", json={"anime_id": anime_id, "score": 8,
                                                     "episodes_watched": 4}).status_code == 201
    with client(world, "bob") as bob:
        changed = bob.patch("/favorites", params={"anime_id": f"eq.{anime_id}", "user_id": f"eq.{frank}"},
                            json={"score": 1, "episodes_watched": 0}, headers={"Prefer": "return=representation"})
        assert changed.status_code == 200 and changed.json() == []
    with httpx.Client(base_url=world["url"], headers=frank_headers, timeout=10) as frank_client:
        rows = frank_client.get("/favorites").json()
    assert [(r["score"], r["episodes_watched"]) for r in rows] == [(8, 4)]
