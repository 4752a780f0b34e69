"""End to end with real processes (issue 13): a moderator locks one player link through
PostgREST, a real Procrastinate worker syncs from the local upstream, and the locked link is
unchanged while the unlocked links and the title's fields follow upstream — and the audit log
shows those changes as the system actor's, one row per title and kind of change."""

from __future__ import annotations

import httpx
import pytest

from tests.conftest import owner_connect
from tests.helpers import create_user
from tests.ingest.support import control, execute, query, sync

ALL = ("sync_catalog", "sync_episodes")


@pytest.fixture(scope="module")
def world(module_db, start_upstream, start_worker, start_postgrest, mint):
    upstream = start_upstream(titles=40)
    start_worker(module_db, upstream, name="admin-e2e")
    runs = sync(module_db, *ALL)
    assert {t: r["status"] for t, r in runs.items()} == dict.fromkeys(ALL, "succeeded"), runs
    with owner_connect(module_db) as conn:
        user_id, session_id = create_user(conn, "moderator@e2e.test")
        conn.execute("insert into data.user_roles (user_id, role) values (%s, 'moderator')", (user_id,))
    return {"db": module_db, "upstream": upstream, "rest": start_postgrest(module_db).url,
            "token": mint(user_id, session_id)}


def links(dbname: str, anime_id: str, translation: int) -> dict[int, str]:
    return {r["number"]: r["player_url"] for r in query(
        dbname, "select e.number, s.player_url from data.episodes e join data.episode_sources s on s.episode_id = e.id"
                " where e.anime_id = %s and s.translation_id = %s", (anime_id, translation))}


def test_a_real_sync_keeps_the_locked_link_and_audits_the_rest_as_the_system(world):
    db = world["db"]
    [target] = query(db, """
        select a.id::text as anime_id, a.shikimori_id, a.episodes_aired, s.translation_id
          from data.anime a join data.episodes e on e.anime_id = a.id and e.number = 2
          join data.episode_sources s on s.episode_id = e.id
         where a.kind = 'tv' and a.status = 'ongoing' and a.episodes_total is distinct from a.episodes_aired
         order by a.shikimori_id, s.translation_id limit 1""")
    anime_id, translation = target["anime_id"], target["translation_id"]
    upstream_links = links(db, anime_id, translation)
    # drift in the catalog that the next publish of this translation would repair: episodes 1 and 2
    execute(db, "update data.episode_sources s set player_url = 'https://kodik.test/drift-' || e.number"
                " from data.episodes e where e.id = s.episode_id and e.anime_id = %s and e.number in (1, 2)"
                " and s.translation_id = %s", (anime_id, translation))
    [episode_1] = query(db, "select id::text from data.episodes where anime_id = %s and number = 1", (anime_id,))
    locked = httpx.post(f"{world['rest']}/rpc/admin_lock_player", timeout=10,
                        headers={"Authorization": f"Bearer {world['token']}"},
                        json={"episode_id": episode_1["id"], "translation_id": translation, "reason": "studio cut"})
    assert locked.status_code == 200, locked.text
    since = query(db, "select max(id) as id from data.audit_log")[0]["id"]

    # upstream moves on: a new score and one more aired episode (Kodik's results follow)
    aired = target["episodes_aired"] + 1
    control(world["upstream"], "animes", [{"id": str(target["shikimori_id"]), "score": 9.87, "episodesAired": aired}])
    runs = sync(db, *ALL)
    assert {t: r["status"] for t, r in runs.items()} == dict.fromkeys(ALL, "succeeded"), runs

    now = links(db, anime_id, translation)
    assert now[1] == "https://kodik.test/drift-1"  # locked: ingest left it alone
    assert now[2] == upstream_links[2]  # not locked: repaired from upstream
    assert aired in now  # the new episode arrived
    rows = query(db, "select actor_type, actor_id, action, before, after, reason from data.audit_log"
                     " where id > %s and entity_type = 'anime' and entity_id = %s order by id", (since, anime_id))
    assert [(r["actor_type"], r["actor_id"], r["action"]) for r in rows] == [
        ("system", None, "ingest.anime_update"), ("system", None, "ingest.players_update")]
    assert rows[0]["after"]["score"] == 9.87 and rows[0]["after"]["episodes_aired"] == aired
    written = rows[1]["after"]
    assert f"1/{translation}" not in written
    assert written[f"2/{translation}"]["player_url"] == upstream_links[2]
    assert rows[1]["before"][f"2/{translation}"]["player_url"] == "https://kodik.test/drift-2"
    assert written[f"{aired}/{translation}"] and rows[1]["before"][f"{aired}/{translation}"] is None
    assert all(r["reason"].startswith("sync run ") for r in rows)
