"""Contract §11 through a real PostgREST: per-role statement timeouts (the statement is cancelled
on the server, the client gets a clear error quickly), hidden titles answered exactly like unknown
ones, refused admin calls audited cut to 1 KiB and coalesced per caller, action and minute, and
NUL bytes or invalid text in any input answered 4xx."""

from __future__ import annotations

import concurrent.futures
import time
import uuid

import httpx
import pytest
from psycopg.rows import dict_row

from tests.conftest import owner_connect
from tests.helpers import create_anime, create_user

SLOW = "kitsu-limits-test-slow"  # what api.test_slow answers when it is let finish


@pytest.fixture(scope="module")
def world(api_db, start_postgrest, mint):
    with owner_connect(api_db) as conn:
        alice, alice_sid = create_user(conn, "alice@limits.test")
        mallory, mallory_sid = create_user(conn, "mallory@limits.test")
        published = create_anime(conn, "Limits published")
        draft = create_anime(conn, "Limits draft", state="draft")
        deleted = create_anime(conn, "Limits deleted", deleted=True)
        # a test-only slow function in this test database's api schema (not in sql/)
        conn.execute(f"""create function api.test_slow(seconds double precision) returns text
                         language sql volatile as $$ select '{SLOW}' from pg_sleep(seconds) $$""")
        conn.execute("grant execute on function api.test_slow(double precision) to anon, web_user")
    postgrest = start_postgrest(api_db)
    return {
        "url": postgrest.url, "db": api_db, "alice": alice, "mallory": mallory,
        "alice_token": mint(alice, alice_sid), "mallory_token": mint(mallory, mallory_sid),
        "published": published, "draft": draft, "deleted": deleted,
    }


def client(world, who: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {world[who + '_token']}"} if who else {}
    return httpx.Client(base_url=world["url"], headers=headers, timeout=30)


def still_running(world) -> list[str]:
    with owner_connect(world["db"]) as conn:
        rows = conn.execute("select query from pg_stat_activity where state = 'active' and query like %s"
                            " and pid <> pg_backend_pid()", ("%test_slow%",)).fetchall()
    return [r[0] for r in rows]


@pytest.mark.parametrize("who, limit", [(None, 3.0), ("alice", 5.0)])
def test_a_statement_past_the_role_timeout_is_cancelled(world, who, limit):
    with client(world, who) as c:
        started = time.monotonic()
        response = c.post("/rpc/test_slow", json={"seconds": 20})
        elapsed = time.monotonic() - started
    assert response.status_code == 500  # PostgREST 12 maps 57014 (operator intervention) to 500
    body = response.json()
    assert body["code"] == "57014" and "statement timeout" in body["message"]
    assert limit - 0.5 < elapsed < limit + 2.0
    assert still_running(world) == []  # cancelled on the server, not left behind


def test_a_statement_within_the_timeout_finishes(world):
    with client(world) as c:
        assert c.post("/rpc/test_slow", json={"seconds": 0.2}).json() == SLOW


def test_a_hidden_title_is_refused_like_an_unknown_one_and_nothing_is_stored(world):
    unknown = str(uuid.uuid4())
    answers = {}
    with client(world, "alice") as alice:
        for name in ("draft", "deleted"):
            answers[name] = [
                alice.post("/favorites", json={"anime_id": str(world[name])}),
                alice.post("/favorites", json={"anime_id": str(world[name])},
                           headers={"Prefer": "resolution=merge-duplicates"}),
                alice.post("/rpc/save_progress", json={"anime_id": str(world[name]), "episode_number": 1,
                                                       "position_seconds": 5}),
            ]
        answers["unknown"] = [
            alice.post("/favorites", json={"anime_id": unknown}),
            alice.post("/favorites", json={"anime_id": unknown}, headers={"Prefer": "resolution=merge-duplicates"}),
            alice.post("/rpc/save_progress", json={"anime_id": unknown, "episode_number": 1, "position_seconds": 5}),
        ]
        assert alice.post("/favorites", json={"anime_id": str(world["published"])}).status_code == 201
    for name in ("draft", "deleted"):
        for hidden, random in zip(answers[name], answers["unknown"], strict=True):
            assert (hidden.status_code, hidden.content) == (random.status_code, random.content)
    assert {r.status_code for r in answers["unknown"]} == {404}
    assert answers["unknown"][0].json()["code"] == "anime_not_found"
    with owner_connect(world["db"]) as conn:
        stored = conn.execute(
            "select (select count(*) from data.favorites where user_id = %(u)s and anime_id <> %(p)s)"
            " + (select count(*) from data.watch_progress where user_id = %(u)s)"
            " + (select count(*) from data.watch_history where user_id = %(u)s)",
            {"u": world["alice"], "p": world["published"]}).fetchone()[0]
    assert stored == 0


def test_list_import_treats_a_hidden_title_like_an_unknown_one(world):
    with owner_connect(world["db"]) as conn:
        conn.execute("update data.anime set shikimori_id = 990001 where id = %s", (world["draft"],))
    with client(world, "alice") as alice:
        hidden = alice.post("/rpc/import_list", json={"items": [{"mal_id": 990001, "status": "planned"}]})
        unknown = alice.post("/rpc/import_list", json={"items": [{"mal_id": 990002, "status": "planned"}]})
    assert hidden.status_code == unknown.status_code == 200
    assert hidden.json() == unknown.json() and hidden.json()[0]["anime_id"] is None


def refusals(world) -> list[dict]:
    with owner_connect(world["db"]) as conn:
        conn.row_factory = dict_row  # type: ignore[assignment]
        return conn.execute("select actor_id, entity_id, after, refusals, octet_length(after::text) as bytes"
                            " from data.audit_log where action = 'security.permission_denied'"
                            " order by id").fetchall()


def test_refused_admin_calls_are_cut_to_1_kib_and_coalesced_per_minute(world):
    with owner_connect(world["db"]) as conn:
        conn.execute("delete from data.audit_log")
    huge = "x" * 1_000_000
    with client(world, "mallory") as mallory:
        first = mallory.post("/rpc/admin_set_ingest_mode", json={"mode": huge})
        assert first.status_code == 403 and first.json()["code"] == "permission_denied"
        # 19 more refusals of the same action at once: one row, counted, under concurrency
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(lambda _: client(world, "mallory").post(
                "/rpc/admin_set_ingest_mode", json={"mode": "auto"}).status_code, range(19)))
        assert statuses == [403] * 19
        # another action (another permission) is a row of its own
        assert mallory.post("/rpc/admin_emergency_stop", json={"reason": "no"}).status_code == 403
    with client(world, "alice") as alice:  # another caller: a row of its own
        assert alice.post("/rpc/admin_set_ingest_mode", json={"mode": "auto"}).status_code == 403
    rows = refusals(world)
    by = {(str(r["actor_id"]), r["entity_id"]): r for r in rows}
    assert len(rows) == 3, rows
    mine = by[(str(world["mallory"]), "admin.parser.settings")]
    assert mine["refusals"] == 20 and mine["bytes"] <= 1024
    assert mine["after"]["target"]["cut_from_bytes"] > 1_000_000 and mine["after"]["resource"] == "rpc/admin_set_ingest_mode"
    assert mine["after"]["target"]["start"].startswith('"xxx')
    assert by[(str(world["mallory"]), "admin.parser.emergency")]["refusals"] == 1
    assert by[(str(world["alice"]), "admin.parser.settings")]["refusals"] == 1


def test_a_refusal_in_a_later_minute_is_a_new_row(world):
    with owner_connect(world["db"]) as conn:
        conn.execute("delete from data.audit_log")
        # the earlier refusal happened two minutes ago
        conn.execute("insert into data.audit_log (actor_id, actor_type, action, entity_type, entity_id,"
                     " refusals, refused_minute) values (%s, 'user', 'security.permission_denied', 'permission',"
                     " 'admin.parser.settings', 4, date_bin('1 minute', now() - interval '2 minutes',"
                     " timestamptz '2000-01-01 00:00:00+00'))", (world["mallory"],))
    with client(world, "mallory") as mallory:
        assert mallory.post("/rpc/admin_set_ingest_mode", json={"mode": "auto"}).status_code == 403
    assert [r["refusals"] for r in refusals(world)] == [4, 1]


NUL_INPUTS = [
    ("POST", "/favorites", {"anime_id": "0000\u0000"}),
    ("POST", "/favorites", {"anime_id": None, "list_status": "planned\u0000"}),
    ("POST", "/rpc/save_progress", {"anime_id": "x\u0000", "episode_number": 1, "position_seconds": 1}),
    ("POST", "/rpc/import_list", {"items": [{"title": "Naru\u0000to", "status": "planned"}]}),
    ("POST", "/rpc/search_anime", {"q": "na\u0000ru"}),
    ("PATCH", "/me", {"display_name": "Al\u0000ice"}),
    ("POST", "/rpc/admin_set_ingest_mode", {"mode": "au\u0000to"}),
    ("POST", "/rpc/admin_update_anime", {"id": "x", "patch": {"title": "a\u0000b"}}),
    ("POST", "/rpc/search_anime", b'{"q": "na\\udcffru"}'),  # a lone surrogate: not valid text
    ("POST", "/rpc/search_anime", b'{"q": "na\xff\xferu"}'),  # bytes that are not UTF-8
]
# Query strings are the gateway's to check: PostgREST 12.0.2 answers 500 to one that is not
# UTF-8 before any SQL runs, so nginx answers 400 first (tests/gateway/test_gateway.py).


@pytest.mark.parametrize("method, path, body", NUL_INPUTS)
def test_a_nul_byte_or_invalid_text_is_a_4xx_with_a_message(world, method, path, body):
    with client(world, "alice") as alice:
        if isinstance(body, bytes):
            response = alice.request(method, path, content=body, headers={"Content-Type": "application/json"})
        else:
            response = alice.request(method, path, json=body)
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    assert response.json().get("message")
