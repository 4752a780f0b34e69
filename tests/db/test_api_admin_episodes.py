"""Episode administration through a real PostgREST with real tokens (issue 13): the list with
player links per translation, create, edit, field and whole-row locks, soft delete / restore,
hiding, fixing and locking one player link, each refusal with its own code and no change, one
audit row per write; and end to end, a sync (the ingest SQL path a worker takes: stage, finish
the run, which publishes) keeps a locked link while the audit log shows the system actor's
changes to everything else."""

from __future__ import annotations

import copy
import uuid

import httpx
import psycopg
import pytest

from fake_upstream import fixtures
from tests.conftest import owner_connect
from tests.helpers import create_anime, create_user, sync_in_sql

HEADERS = {"User-Agent": "episode-admin-tests/1.0", "X-Forwarded-For": "203.0.113.30"}
ROLES = ("super_admin", "admin", "moderator", "editor", "support")


@pytest.fixture(scope="module")
def world(api_db, postgrest, mint):
    people: dict[str, uuid.UUID] = {}
    tokens: dict[str, str] = {}
    with owner_connect(api_db) as conn:
        conn.execute("insert into data.translations (id, title, type) values (610, 'AniLibria', 'voice'), "
                     "(609, 'AniDUB', 'voice') on conflict do nothing")
        for who in (*ROLES, "plain"):
            user_id, session_id = create_user(conn, f"{who}@episodes.test")
            if who in ROLES:
                conn.execute("insert into data.user_roles (user_id, role) values (%s, %s)", (user_id, who))
            people[who] = user_id
            tokens[who] = mint(user_id, session_id)
    return {"url": postgrest.url, "db": api_db, "people": people, "tokens": tokens}


def client(world, who: str | None = None) -> httpx.Client:
    headers = dict(HEADERS)
    if who:
        headers["Authorization"] = f"Bearer {world['tokens'][who]}"
    return httpx.Client(base_url=world["url"], headers=headers, timeout=10)


def rpc(world, who: str, name: str, **body: object) -> httpx.Response:
    with client(world, who) as c:
        return c.post(f"/rpc/{name}", json=body)


def query(world, sql: str, *params: object) -> list[dict]:
    with owner_connect(world["db"]) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(sql, params).fetchall()


def titled_episode(world, links: int = 2) -> tuple[str, str]:
    """A published title with episode 1 carrying `links` player links; (anime_id, episode_id)."""
    with owner_connect(world["db"]) as conn:
        anime_id = create_anime(conn, episodes=1)
        episode_id = conn.execute("select id from data.episodes where anime_id = %s", (anime_id,)).fetchone()[0]
        for translation in (610, 609)[:links]:
            conn.execute("insert into data.episode_sources (episode_id, translation_id, player_url, source) "
                         "values (%s, %s, %s, 'parser')", (episode_id, translation, f"https://kodik.test/{translation}"))
    return str(anime_id), str(episode_id)


def audit_count(world, entity_id: str) -> int:
    return query(world, "select count(*) as n from data.audit_log where entity_id = %s", entity_id)[0]["n"]


def test_the_list_shows_every_episode_with_its_links_per_translation(world):
    anime_id, episode_id = titled_episode(world)
    with client(world, "support") as c:  # support reads (episode.view), changes nothing
        rows = c.get("/admin_episodes", params={"anime_id": f"eq.{anime_id}"}).json()
    assert [r["id"] for r in rows] == [episode_id]
    links = [(s["translation_id"], s["translation_title"], s["player_url"], s["hidden"]) for s in rows[0]["sources"]]
    assert links == [(609, "AniDUB", "https://kodik.test/609", False),
                     (610, "AniLibria", "https://kodik.test/610", False)]
    assert rpc(world, "support", "admin_update_episode", id=episode_id, patch={"title": "x"}).status_code == 403
    with client(world, "plain") as c:
        assert c.get("/admin_episodes").status_code == 403


def test_create_edit_and_their_refusals_each_write_one_audit_row(world):
    anime_id, _ = titled_episode(world, links=0)
    created = rpc(world, "editor", "admin_create_episode", anime_id=anime_id, number=2, title="Second",
                  reason="missing")
    assert created.status_code == 200, created.text
    episode = created.json()["episode"]
    editor = str(world["people"]["editor"])
    assert (episode["source"], episode["created_by"], episode["number"]) == ("manual", editor, 2)
    assert audit_count(world, episode["id"]) == 1
    again = rpc(world, "editor", "admin_create_episode", anime_id=anime_id, number=2)
    assert (again.status_code, again.json()["code"]) == (409, "episode_exists")

    edited = rpc(world, "editor", "admin_update_episode", id=episode["id"], patch={"title": "Two"})
    assert (edited.json()["episode"]["title"], edited.json()["episode"]["updated_by"]) == ("Two", editor)
    row = query(world, "select action, before, after from data.audit_log where entity_id = %s order by id desc limit 1",
                episode["id"])[0]
    assert row == {"action": "episode.update", "before": {"title": "Second"}, "after": {"title": "Two"}}
    same = rpc(world, "editor", "admin_update_episode", id=episode["id"], patch={"title": "Two"}).json()
    assert same["warnings"] == ["no_changes"] and same["audit_log_id"] is None
    assert audit_count(world, episode["id"]) == 2
    bad = rpc(world, "editor", "admin_update_episode", id=episode["id"], patch={"player_url": "x"})
    assert (bad.status_code, bad.json()["code"]) == (400, "unknown_field")


def test_locked_fields_and_whole_row_locks_refuse_edits_with_423_and_change_nothing(world):
    _, episode_id = titled_episode(world)
    assert rpc(world, "editor", "admin_lock_episode", id=episode_id, fields=["title"]).status_code == 403
    locked = rpc(world, "moderator", "admin_lock_episode", id=episode_id, fields=["title"], reason="verified")
    assert locked.json()["episode"]["locked_fields"] == ["title"]
    refused = rpc(world, "editor", "admin_update_episode", id=episode_id, patch={"title": "Spoiler", "aired_at": None})
    assert (refused.status_code, refused.json()["code"], refused.json()["details"]) == (423, "field_locked", "title")
    assert query(world, "select title from data.episodes where id = %s", episode_id)[0]["title"] == "Episode 1"
    # whole row: the player links too
    rpc(world, "moderator", "admin_lock_episode", id=episode_id)
    fix = rpc(world, "editor", "admin_fix_player", episode_id=episode_id, translation_id=610, player_url="https://k.test/n")
    assert (fix.status_code, fix.json()["code"]) == (423, "field_locked")
    assert rpc(world, "moderator", "admin_unlock_episode", id=episode_id).status_code == 403  # needs episode.unlock
    unlocked = rpc(world, "admin", "admin_unlock_episode", id=episode_id, reason="done")
    assert unlocked.json()["episode"]["locked_fields"] == [] and unlocked.json()["episode"]["locked_by"] is None


def test_soft_delete_hides_the_episode_refuses_edits_with_410_and_restore_brings_it_back(world):
    _, episode_id = titled_episode(world)
    no_reason = rpc(world, "admin", "admin_delete_episode", id=episode_id, reason=" ")
    assert (no_reason.status_code, no_reason.json()["code"]) == (400, "reason_required")
    deleted = rpc(world, "admin", "admin_delete_episode", id=episode_id, reason="duplicate")
    assert deleted.json()["episode"]["is_deleted"]
    with client(world) as anon:
        assert anon.get("/episodes", params={"id": f"eq.{episode_id}"}).json() == []
    gone = rpc(world, "editor", "admin_update_episode", id=episode_id, patch={"title": "x"})
    assert (gone.status_code, gone.json()["code"]) == (410, "episode_deleted")
    hide = rpc(world, "editor", "admin_hide_player", episode_id=episode_id, translation_id=610)
    assert (hide.status_code, hide.json()["code"]) == (410, "episode_deleted")
    assert rpc(world, "admin", "admin_restore_episode", id=episode_id).json()["episode"]["is_deleted"] is False
    with client(world) as anon:
        assert len(anon.get("/episodes", params={"id": f"eq.{episode_id}"}).json()) == 1


def test_hiding_one_link_takes_it_out_of_the_public_catalog(world):
    anime_id, episode_id = titled_episode(world, links=1)
    hidden = rpc(world, "editor", "admin_hide_player", episode_id=episode_id, translation_id=610, reason="dead link")
    assert hidden.status_code == 200 and hidden.json()["episode"]["sources"][0]["hidden"] is True
    with client(world) as anon:
        assert anon.get("/episode_sources", params={"episode_id": f"eq.{episode_id}"}).json() == []
    with client(world, "admin") as c:
        admin_row = c.get("/admin_anime", params={"id": f"eq.{anime_id}"}).json()[0]
    assert admin_row["has_video"] is False and "no_video" in admin_row["errors"]
    assert query(world, "select action from data.audit_log where entity_id = %s", episode_id) == [
        {"action": "episode.player_hide"}]
    missing = rpc(world, "editor", "admin_hide_player", episode_id=episode_id, translation_id=609)
    assert (missing.status_code, missing.json()["code"]) == (404, "player_not_found")
    rpc(world, "editor", "admin_hide_player", episode_id=episode_id, translation_id=610, hidden=False)
    with client(world) as anon:
        assert len(anon.get("/episode_sources", params={"episode_id": f"eq.{episode_id}"}).json()) == 1


def test_fixing_and_locking_one_link(world):
    _, episode_id = titled_episode(world)
    fixed = rpc(world, "editor", "admin_fix_player", episode_id=episode_id, translation_id=610,
                player_url="https://kodik.test/fixed", reason="broken")
    assert fixed.status_code == 200, fixed.text
    link = next(s for s in fixed.json()["episode"]["sources"] if s["translation_id"] == 610)
    assert (link["player_url"], link["source"]) == ("https://kodik.test/fixed", "manual")
    not_https = rpc(world, "editor", "admin_fix_player", episode_id=episode_id, translation_id=610, player_url="http://x")
    assert not_https.status_code == 400
    assert rpc(world, "editor", "admin_lock_player", episode_id=episode_id, translation_id=609).status_code == 403
    assert rpc(world, "moderator", "admin_lock_player", episode_id=episode_id, translation_id=609).status_code == 200
    refused = rpc(world, "editor", "admin_fix_player", episode_id=episode_id, translation_id=609,
                  player_url="https://kodik.test/other")
    assert (refused.status_code, refused.json()["code"]) == (423, "player_locked")
    assert query(world, "select player_url from data.episode_sources where episode_id = %s and translation_id = 609",
                 episode_id)[0]["player_url"] == "https://kodik.test/609"


# --- end to end: a sync keeps a locked link ------------------------------------------------------

def serial_title(titles: list[dict]) -> dict:
    """A copy of the first TV title with players and at least two aired episodes."""
    return copy.deepcopy(next(t for t in titles if t["kind"] == "tv" and fixtures.kodik_results(t)
                              and int(t["episodesAired"] or 0) >= 2))


def sync(world, titles: list[dict], kodik: list[dict]) -> None:
    with owner_connect(world["db"]) as conn:
        sync_in_sql(conn, titles=titles, kodik=kodik)


def test_a_sync_keeps_a_locked_player_link_and_audits_its_other_changes_as_the_system(world):
    title = serial_title(fixtures.generate(40))
    kodik = fixtures.kodik_results(title)
    sync(world, [title], kodik)
    shikimori_id = int(title["id"])
    translation = kodik[0]["translation"]["id"]
    episodes = {r["number"]: r for r in query(
        world, "select e.number, e.id, s.player_url from data.episodes e join data.anime a on a.id = e.anime_id "
               "join data.episode_sources s on s.episode_id = e.id "
               "where a.shikimori_id = %s and s.translation_id = %s", shikimori_id, translation)}
    anime_id = query(world, "select id from data.anime where shikimori_id = %s", shikimori_id)[0]["id"]

    locked = rpc(world, "moderator", "admin_lock_player", episode_id=str(episodes[1]["id"]),
                 translation_id=translation, reason="the studio asked for this cut")
    assert locked.status_code == 200, locked.text
    since = query(world, "select max(id) as id from data.audit_log")[0]["id"]

    # upstream changes: a new score, and new links for episodes 1 and 2 of that translation
    title["score"] = 9.87
    serial = kodik[0]["seasons"]["1"]["episodes"]
    serial["1"], serial["2"] = "//kodik.info/seria/changed-1/720p", "//kodik.info/seria/changed-2/720p"
    sync(world, [title], kodik)

    links = {r["number"]: r["player_url"] for r in query(
        world, "select e.number, s.player_url from data.episodes e join data.episode_sources s on s.episode_id = e.id "
               "where e.anime_id = %s and s.translation_id = %s", anime_id, translation)}
    assert links[1] == episodes[1]["player_url"]  # locked: unchanged
    assert links[2] == "https://kodik.info/seria/changed-2/720p"
    rows = query(world, "select actor_type, actor_id, action, before, after from data.audit_log "
                        "where id > %s and entity_id = %s order by id", since, str(anime_id))
    assert [(r["actor_type"], r["actor_id"], r["action"]) for r in rows] == [
        ("system", None, "ingest.anime_update"), ("system", None, "ingest.players_update")]
    assert rows[0]["after"] == {"score": 9.87} and set(rows[0]["before"]) == {"score"}
    key = f"2/{translation}"
    assert rows[1]["after"] == {key: {"player_url": "https://kodik.info/seria/changed-2/720p",
                                      "quality": kodik[0]["quality"]}}
    assert rows[1]["before"][key]["player_url"] == episodes[2]["player_url"]


def test_the_conflict_queue_lists_kept_links_upstream_changed_and_accepting_hands_them_back(world):
    title = serial_title(fixtures.generate(60)[40:])
    kodik = fixtures.kodik_results(title)
    sync(world, [title], kodik)
    translation = kodik[0]["translation"]["id"]
    [episode] = query(world, "select e.id from data.episodes e join data.anime a on a.id = e.anime_id "
                             "where a.shikimori_id = %s and e.number = 1", int(title["id"]))
    episode_id = str(episode["id"])
    fixed = rpc(world, "editor", "admin_fix_player", episode_id=episode_id, translation_id=translation,
                player_url="https://kodik.test/by-hand")
    assert fixed.status_code == 200, fixed.text
    with client(world, "editor") as c:
        [conflict] = c.get("/admin_player_conflicts", params={"episode_id": f"eq.{episode_id}"}).json()
    assert (conflict["catalog_url"], conflict["kept_because"]) == ("https://kodik.test/by-hand", "fixed_by_hand")
    accepted = rpc(world, "editor", "admin_accept_upstream_player", episode_id=episode_id, translation_id=translation)
    link = next(s for s in accepted.json()["episode"]["sources"] if s["translation_id"] == translation)
    assert (link["player_url"], link["source"]) == (conflict["upstream_url"], "parser")
    with client(world, "editor") as c:
        assert c.get("/admin_player_conflicts", params={"episode_id": f"eq.{episode_id}"}).json() == []
    again = rpc(world, "editor", "admin_accept_upstream_player", episode_id=episode_id, translation_id=translation)
    assert (again.status_code, again.json()["code"]) == (404, "conflict_not_found")
