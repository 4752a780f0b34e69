"""Ingest review tools through a real PostgREST (issue 13): the publish preview shows, field by
field, what the next publish would write and what it keeps (edited or locked by hand), writing
nothing; genre editing makes the genres hand-edited, so a later sync keeps them."""

from __future__ import annotations

import copy
import uuid

import httpx
import psycopg
import pytest

from fake_upstream import fixtures
from tests.conftest import owner_connect
from tests.helpers import create_user, sync_in_sql


@pytest.fixture(scope="module")
def world(api_db, postgrest, mint):
    tokens = {}
    with owner_connect(api_db) as conn:
        for role in ("admin", "editor"):
            user_id, session_id = create_user(conn, f"{role}@review.test")
            conn.execute("insert into data.user_roles (user_id, role) values (%s, %s)", (user_id, role))
            tokens[role] = mint(user_id, session_id)
    return {"url": postgrest.url, "db": api_db, "tokens": tokens}


def call(world, who: str, method: str, path: str, **body: object) -> httpx.Response:
    with httpx.Client(base_url=world["url"], timeout=10,
                      headers={"Authorization": f"Bearer {world['tokens'][who]}"}) as c:
        return c.request(method, path, json=body or None)


def stage(world, items: list[dict], publish: bool, args: dict | None = None) -> None:
    with owner_connect(world["db"]) as conn:
        sync_in_sql(conn, titles=items, publish=publish, args=args)


def catalog_row(world, shikimori_id: int) -> dict:
    with owner_connect(world["db"]) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute("select * from data.anime where shikimori_id = %s", (shikimori_id,)).fetchone()


def test_the_preview_diffs_staging_against_the_catalog_and_writes_nothing(world):
    title = copy.deepcopy(fixtures.generate(5)[1])
    shikimori_id = int(title["id"])
    stage(world, [title], publish=False)
    [new] = call(world, "admin", "GET", f"/admin_publish_preview?shikimori_id=eq.{shikimori_id}").json()
    assert new["action"] == "insert" and new["anime_id"] is None and new["changes"]["title"]["from"] is None
    stage(world, [title], publish=True)
    anime_id = str(catalog_row(world, shikimori_id)["id"])
    assert call(world, "admin", "GET", f"/admin_publish_preview?shikimori_id=eq.{shikimori_id}").json() == []

    edited = call(world, "editor", "POST", "/rpc/admin_update_anime", id=anime_id, patch={"title": "By hand"})
    assert edited.status_code == 200, edited.text
    title["name"], title["score"] = "Upstream rename", 1.25
    stage(world, [title], publish=False)
    [row] = call(world, "admin", "GET", f"/admin_publish_preview?shikimori_id=eq.{shikimori_id}").json()
    assert row["action"] == "update" and row["anime_id"] == anime_id
    assert row["changes"] == {"score": {"from": float(catalog_row(world, shikimori_id)["score"]), "to": 1.25}}
    assert row["kept_fields"] == ["title"]
    assert float(catalog_row(world, shikimori_id)["score"]) != 1.25  # nothing written
    assert call(world, "editor", "GET", "/admin_publish_preview").status_code == 403


def test_hand_edited_genres_survive_a_sync(world):
    title = copy.deepcopy(fixtures.generate(5)[2])
    stage(world, [title], publish=True)
    anime_id = str(catalog_row(world, int(title["id"]))["id"])
    genres = call(world, "editor", "GET", "/admin_genres?order=id").json()
    chosen = [g["id"] for g in genres[:1]]
    done = call(world, "editor", "POST", "/rpc/admin_set_anime_genres", id=anime_id, genre_ids=chosen, reason="fix")
    assert done.status_code == 200, done.text
    shown = [genres[0]["name_ru"] or genres[0]["name"]]  # stored genres prefer the Russian name
    assert done.json()["anime"]["genres"] == shown
    unknown = call(world, "editor", "POST", "/rpc/admin_set_anime_genres", id=anime_id, genre_ids=[999999])
    assert (unknown.status_code, unknown.json()["code"]) == (404, "genre_not_found")
    title["score"] = 2.5  # a new upstream version; its genres differ from the hand-picked ones
    stage(world, [title], publish=True)
    row = catalog_row(world, int(title["id"]))
    assert row["genres"] == shown and float(row["score"]) == 2.5
    missing = call(world, "editor", "POST", "/rpc/admin_set_anime_genres", id=str(uuid.uuid4()), genre_ids=[])
    assert missing.status_code == 404


def test_a_dry_run_stages_and_publishes_nothing(world):
    title = copy.deepcopy(fixtures.generate(5)[3])
    stage(world, [title], publish=True, args={"dry_run": True})  # the worker finishes it as usual
    assert catalog_row(world, int(title["id"])) is None
    [row] = call(world, "admin", "GET", f"/admin_publish_preview?shikimori_id=eq.{title['id']}").json()
    assert row["action"] == "insert"
    published = call(world, "admin", "POST", "/rpc/admin_publish", shikimori_ids=[int(title["id"])])
    assert published.json()["published"]["anime_inserted"] == 1
    refused = call(world, "admin", "POST", "/rpc/admin_trigger_sync", task="sync_catalog", args={"dry_run": "yes"})
    assert (refused.status_code, refused.json()["code"]) == (400, "invalid_args")
    queued = call(world, "admin", "POST", "/rpc/admin_trigger_sync", task="sync_catalog", args={"dry_run": True})
    assert queued.status_code == 200, queued.text
    with owner_connect(world["db"]) as conn:
        args = conn.execute("select args from procrastinate.procrastinate_jobs where id = %s",
                            (queued.json()["job_id"],)).fetchone()[0]
        conn.execute("delete from procrastinate.procrastinate_jobs")
    assert args["dry_run"] is True


def test_the_sync_tasks_accept_dry_run():
    import inspect

    from ingest import tasks

    for task in (tasks.sync_catalog, tasks.sync_schedule, tasks.sync_episodes):
        assert "dry_run" in inspect.signature(task.func).parameters


def test_upstream_limits_and_the_enable_switch(world):
    def limits(**patch):
        return call(world, "admin", "POST", "/rpc/admin_set_upstream_limits", upstream="shikimori", patch=patch)

    try:
        assert limits(per_minute=60).json()["limits"]["per_minute"] == 60
        too_fast = limits(per_second=50)
        assert (too_fast.status_code, too_fast.json()["code"]) == (400, "limit_above_upstream")
        assert limits(enabled=False).json()["limits"]["enabled"] is False
        with owner_connect(world["db"]) as conn:  # what every worker's limiter asks
            with pytest.raises(psycopg.Error) as refused:
                conn.execute("select ingest.acquire_slot('shikimori')")
        assert refused.value.sqlstate == "KI007"
        [row] = call(world, "admin", "GET", "/admin_upstream_limits?upstream=eq.shikimori").json()
        assert (row["enabled"], row["per_minute"]) == (False, 60)
        assert call(world, "editor", "GET", "/admin_upstream_limits").status_code == 403
    finally:
        limits(enabled=True, per_minute=90)


def test_genre_changes_by_ingest_are_audited_as_the_system(world):
    title = copy.deepcopy(next(t for t in fixtures.generate(30)[5:] if len(t["genres"]) >= 2))
    stage(world, [title], publish=True)
    row = catalog_row(world, int(title["id"]))
    with owner_connect(world["db"]) as conn:
        created = conn.execute("select after from data.audit_log where action = 'ingest.anime_create' "
                               "and entity_id = %s", (str(row["id"]),)).fetchone()[0]
        assert created["genres"] == row["genres"] and created["title"] == row["title"]
        since = conn.execute("select max(id) from data.audit_log").fetchone()[0]
    title["genres"] = title["genres"][:1]
    stage(world, [title], publish=True)
    with owner_connect(world["db"]) as conn:
        rows = conn.execute("select actor_type, action, before, after from data.audit_log where id > %s "
                            "and entity_id = %s order by id", (since, str(row["id"]))).fetchall()
    after = catalog_row(world, int(title["id"]))["genres"]
    assert len(after) == 1 < len(row["genres"])
    assert rows == [("system", "ingest.genres_update", {"genres": row["genres"]}, {"genres": after})]
