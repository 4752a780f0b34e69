"""Contract §11 through a real PostgREST: per-role statement timeouts, NUL and invalid text in
every kind of input answered 4xx, hidden titles indistinguishable from unknown ones, and refused
admin calls audited cut to 1 KiB and coalesced per caller, action and minute."""

from __future__ import annotations

import concurrent.futures
import json
import time
import uuid
from datetime import UTC, datetime

import httpx
import psycopg
import pytest

from database import build as db
from tests.conftest import owner_connect
from tests.helpers import create_anime, create_user


@pytest.fixture(scope="module")
def world(api_db, start_postgrest, mint):
    """A test-only slow function (created before PostgREST loads its schema cache), people, and a
    published, a draft, a pending and a deleted title."""
    with psycopg.connect(db.role_url(api_db), autocommit=True) as admin:
        admin.execute("create function api.test_sleep(seconds double precision) returns boolean "
                      "language sql volatile as $$ select pg_sleep(seconds) is null $$")
        admin.execute("grant execute on function api.test_sleep(double precision) to anon, web_user")
    postgrest = start_postgrest(api_db)
    tokens: dict[str, str] = {}
    people: dict[str, uuid.UUID] = {}
    with owner_connect(api_db) as conn:
        for who in ("alice", "bob", "carol"):
            people[who], sid = create_user(conn, f"{who}@example.test")
            tokens[who] = mint(people[who], sid)
        titles = {
            "published": create_anime(conn, "Published", episodes=1, shikimori_id=101),
            "draft": create_anime(conn, "Draft", state="draft", shikimori_id=102),
            "pending": create_anime(conn, "Pending", state="pending", shikimori_id=103),
            "deleted": create_anime(conn, "Deleted", deleted=True, shikimori_id=104),
        }
    return {"url": postgrest.url, "db": api_db, "tokens": tokens, "people": people, "titles": titles}


def client(world, who: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {world['tokens'][who]}"} if who else {}
    return httpx.Client(base_url=world["url"], headers=headers, timeout=30)


def owner_value(world, query: str, params: tuple | None = None) -> object:
    with owner_connect(world["db"]) as conn:
        return conn.execute(query, params).fetchone()[0]


# --- statement timeouts ------------------------------------------------------------------------

@pytest.mark.parametrize("who, limit", [(None, 3.0), ("alice", 5.0)])
def test_a_statement_past_the_roles_timeout_is_cancelled_with_a_clear_error(world, who, limit):
    with client(world, who) as c:
        started = time.monotonic()
        response = c.post("/rpc/test_sleep", json={"seconds": 20})
        elapsed = time.monotonic() - started
    # PostgREST 12.0.2 maps SQLSTATE class 57 to 500; the body names the cancellation
    assert response.status_code == 500
    assert response.json()["code"] == "57014"
    assert response.json()["message"] == "canceling statement due to statement timeout"
    assert limit - 0.2 <= elapsed < limit + 1.5, elapsed
    still_running = owner_value(world, "select count(*) from pg_stat_activity "
                                       "where datname = current_database() and state = 'active' "
                                       "and query like '%test_sleep%' and pid <> pg_backend_pid()")
    assert still_running == 0
    with client(world, who) as c:  # the connection went back to the pool and serves again
        assert c.post("/rpc/test_sleep", json={"seconds": 0.1}).status_code == 200


def test_every_login_role_has_a_statement_timeout_and_the_owner_none(world):
    settings = dict(owner_value(world, """
        select coalesce(jsonb_object_agg(r.rolname, split_part(c, '=', 2)), '{}')
          from pg_db_role_setting s join pg_roles r on r.oid = s.setrole, unnest(s.setconfig) c
         where s.setdatabase = 0 and c like 'statement_timeout=%'"""))
    assert {k: settings.get(k) for k in ("anon", "web_user", "authenticator", "auth_service",
                                         "ingest_worker", "kitsu_owner")} == {
        "anon": "3s", "web_user": "5s", "authenticator": "10s", "auth_service": "10s",
        "ingest_worker": "10min", "kitsu_owner": None}


# --- NUL and invalid text ----------------------------------------------------------------------

def nul_cases(world) -> list[tuple[str, str, str, object]]:
    published = str(world["titles"]["published"])
    return [
        ("anon", "POST", "/rpc/search_anime", {"q": "ab\u0000c"}),
        ("anon", "GET", "/rpc/search_anime?q=%00ab", None),
        ("anon", "GET", "/anime?title=eq.%00", None),
        ("anon", "GET", "/anime?id=eq.%00", None),
        ("alice", "POST", "/favorites", {"anime_id": "ab\u0000c"}),
        ("alice", "POST", "/favorites", {"anime_id": published, "list_status": "planned\u0000"}),
        ("alice", "PATCH", f"/favorites?anime_id=eq.{published}", {"list_status": "x\u0000"}),
        ("alice", "GET", "/favorites?anime_id=eq.%00", None),
        ("alice", "PATCH", "/me", {"display_name": "x\u0000y"}),
        ("alice", "POST", "/rpc/save_progress", {"anime_id": published, "episode_number": 1,
                                                  "position_seconds": 1, "watched_at": "\u0000"}),
        ("alice", "POST", "/rpc/import_list", {"items": [{"title": "a\u0000b"}]}),
        ("alice", "POST", "/rpc/admin_set_ingest_mode", {"mode": "a\u0000b"}),
        ("alice", "POST", "/rpc/admin_update_anime", {"id": published, "patch": {"title": "a\u0000"}}),
        ("alice", "POST", "/rpc/search_anime", {"q": "\ud800ab"}),  # a lone surrogate
        ("alice", "POST", "/rpc/search_anime", b'{"q": "\xff\xfeab"}'),  # not UTF-8
    ]


def test_nul_or_invalid_text_in_any_input_is_a_4xx_with_a_message(world):
    published = world["titles"]["published"]
    with owner_connect(world["db"]) as conn:  # a favorite for the PATCH to find
        conn.execute("insert into data.favorites (user_id, anime_id) values (%s, %s)",
                     (world["people"]["alice"], published))
    for who, method, path, body in nul_cases(world):
        with client(world, None if who == "anon" else who) as c:
            content = body if isinstance(body, bytes) else None if body is None else json.dumps(body)
            response = c.request(method, path, content=content,
                                 headers={"Content-Type": "application/json"} if content else {})
        assert response.status_code < 500, (path, body, response.text)
        if response.status_code >= 400:
            assert response.json()["message"], (path, response.text)
        elif method != "GET":
            raise AssertionError(f"{method} {path} with NUL was accepted: {response.text}")
    assert owner_value(world, "select array_agg(list_status) from data.favorites") == ["planned"]
    assert owner_value(world, "select count(*) from data.audit_log") == 0
    assert owner_value(world, "select display_name from data.users where id = %s",
                       (world["people"]["alice"],)) != "x"


# --- hidden titles -----------------------------------------------------------------------------

def writes(anime_id: str, mal_id: int) -> list[tuple[str, dict, dict]]:
    return [
        ("/favorites", {}, {"anime_id": anime_id}),
        ("/favorites", {"Prefer": "resolution=merge-duplicates,return=representation"},
         {"anime_id": anime_id, "list_status": "watching"}),
        ("/rpc/save_progress", {}, {"anime_id": anime_id, "episode_number": 1, "position_seconds": 10}),
        ("/rpc/import_list", {}, {"items": [{"mal_id": mal_id, "status": "CURRENT"}]}),
    ]


@pytest.mark.parametrize("hidden", ["draft", "pending", "deleted"])
def test_a_hidden_title_answers_exactly_like_an_unknown_one_and_nothing_is_stored(world, hidden):
    hidden_id = str(world["titles"][hidden])
    hidden_mal = {"draft": 102, "pending": 103, "deleted": 104}[hidden]
    with client(world, "bob") as bob:
        for (path, headers, body), (_, _, unknown_body) in zip(
                writes(hidden_id, hidden_mal), writes(str(uuid.uuid4()), 999_999), strict=True):
            seen = bob.post(path, json=body, headers=headers)
            unknown = bob.post(path, json=unknown_body, headers=headers)
            assert (seen.status_code, seen.content) == (unknown.status_code, unknown.content), path
            assert {k: v for k, v in seen.headers.items() if k != "date"} == \
                {k: v for k, v in unknown.headers.items() if k != "date"}, path
            assert seen.status_code in (200, 404)
        published = bob.post("/favorites", json={"anime_id": str(world["titles"]["published"])},
                             headers={"Prefer": "resolution=ignore-duplicates"})
        assert published.status_code in (200, 201)  # the check refuses hidden titles only
    for table in ("favorites", "watch_progress", "watch_history"):
        assert owner_value(world, f"select count(*) from data.{table} where anime_id = %s", (hidden_id,)) == 0


# --- audit of refused admin calls --------------------------------------------------------------

def refusals(world, who: str) -> list[dict]:
    with owner_connect(world["db"]) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute("select * from data.audit_log where actor_id = %s and action like 'security.%%' "
                           "order by id", (world["people"][who],)).fetchall()


def clear_refusals(world) -> None:
    with owner_connect(world["db"]) as conn:
        conn.execute("delete from data.audit_log where action like 'security.%'")


def away_from_a_minute_boundary() -> None:
    if datetime.now(UTC).second >= 55:
        time.sleep(61 - datetime.now(UTC).second)


def test_a_refused_call_with_a_megabyte_argument_stores_at_most_one_kib(world):
    clear_refusals(world)
    with client(world, "carol") as carol:
        response = carol.post("/rpc/admin_set_ingest_mode",
                              json={"mode": "ö\"\\" * 350_000, "reason": "r" * 100_000})
    assert response.status_code == 403 and response.json()["code"] == "permission_denied"
    [row] = refusals(world, "carol")
    stored = json.dumps(row["after"], ensure_ascii=False, separators=(", ", ": "))
    assert len(stored.encode()) <= 1024 and row["reason"] is None  # this RPC's refusal keeps no reason
    with owner_connect(world["db"]) as conn:
        assert conn.execute("select octet_length(after::text) from data.audit_log "
                            "where id = %s", (row["id"],)).fetchone()[0] <= 1024
    assert row["after"]["resource"] == "rpc/admin_set_ingest_mode" and row["after"]["truncated"] is True
    assert row["after"]["bytes"] > 1_000_000 and row["after"]["excerpt"].startswith('{"target": "ö')


def test_small_arguments_are_stored_as_they_are(world):
    clear_refusals(world)
    with client(world, "carol") as carol:
        assert carol.post("/rpc/admin_set_ingest_mode", json={"mode": "manual"}).status_code == 403
    [row] = refusals(world, "carol")
    assert row["after"] == {"resource": "rpc/admin_set_ingest_mode", "target": "manual"} and row["count"] == 1


@pytest.mark.parametrize("at_once", [False, True])
def test_twenty_refusals_in_a_minute_are_one_row_with_a_count(world, at_once):
    clear_refusals(world)
    away_from_a_minute_boundary()

    def refuse(i: int) -> int:
        with client(world, "carol") as carol:
            return carol.post("/rpc/admin_set_ingest_mode", json={"mode": f"mode {i}"}).status_code

    if at_once:
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            statuses = list(pool.map(refuse, range(20)))
    else:
        statuses = [refuse(i) for i in range(20)]
    assert statuses == [403] * 20
    [row] = refusals(world, "carol")
    assert row["count"] == 20 and row["after"]["resource"] == "rpc/admin_set_ingest_mode"


def test_another_caller_another_action_or_a_later_minute_is_its_own_row(world):
    clear_refusals(world)
    away_from_a_minute_boundary()
    with client(world, "carol") as carol, client(world, "alice") as alice:
        for _ in range(3):
            assert carol.post("/rpc/admin_set_ingest_mode", json={"mode": "auto"}).status_code == 403
        assert carol.post("/rpc/admin_emergency_stop", json={"reason": "x"}).status_code == 403
        assert alice.post("/rpc/admin_set_ingest_mode", json={"mode": "auto"}).status_code == 403
        assert [(r["after"]["resource"], r["count"]) for r in refusals(world, "carol")] == [
            ("rpc/admin_set_ingest_mode", 3), ("rpc/admin_emergency_stop", 1)]
        assert [r["count"] for r in refusals(world, "alice")] == [1]
        # the first row's minute is over: move it back one minute, as if time had passed
        with owner_connect(world["db"]) as conn:
            conn.execute("update data.audit_log set created_at = created_at - interval '1 minute' "
                         "where actor_id = %s", (world["people"]["carol"],))
        assert carol.post("/rpc/admin_set_ingest_mode", json={"mode": "auto"}).status_code == 403
    assert [(r["after"]["resource"], r["count"]) for r in refusals(world, "carol")] == [
        ("rpc/admin_set_ingest_mode", 3), ("rpc/admin_emergency_stop", 1), ("rpc/admin_set_ingest_mode", 1)]


# --- search query length -----------------------------------------------------------------------

def test_a_megabyte_search_query_is_refused_before_any_work(world):
    with client(world) as anon:
        started = time.monotonic()
        response = anon.post("/rpc/search_anime", json={"q": "ab " * 350_000})
        elapsed = time.monotonic() - started
    assert response.status_code == 400 and response.json()["code"] == "query_too_long"
    assert response.json()["message"] == "Search takes at most 200 characters in q."
    with owner_connect(world["db"], autocommit=True) as conn:  # refused on its raw length, before normalising
        started = time.monotonic()
        conn.execute("select private.search_normalize(repeat('ab ', 350000))")
        normalising = time.monotonic() - started
        started = time.monotonic()
        with pytest.raises(psycopg.Error, match="query_too_long"):
            conn.execute("select private.search_terms(repeat('ab ', 350000))")
        assert time.monotonic() - started < normalising / 2
    assert elapsed < 2
