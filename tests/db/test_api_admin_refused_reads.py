"""Refused admin reads are counted (issue 13): a GET of an admin view without the permission is
answered 403 permission_denied and rolled back (PostgREST runs GETs read-only), yet one audit
row per caller, resource and minute counts the refusals, because the count is written on a
second connection (sql/autonomous.sql). Through a real PostgREST."""

from __future__ import annotations

import httpx
import psycopg
import pytest
from psycopg import sql

from database import build as db
from tests.conftest import owner_connect
from tests.helpers import create_user


@pytest.fixture(scope="module")
def people(api_db, postgrest, mint):
    with owner_connect(api_db) as conn:
        nobody, nobody_session = create_user(conn, "nobody@refused.test")
        other, other_session = create_user(conn, "other@refused.test")
    return {"nobody": (nobody, mint(nobody, nobody_session)), "other": (other, mint(other, other_session))}


def get(postgrest, token: str, path: str):
    return httpx.get(postgrest.url + path, timeout=10,
                     headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": "192.0.2.77",
                              "User-Agent": "refusal-test"})


def read_denials(dbname: str, user_id) -> list[tuple]:
    with owner_connect(dbname) as conn:
        return conn.execute(
            "select entity_id, after ->> 'resource', count, host(ip), user_agent, actor_type from data.audit_log "
            "where action = 'security.read_denied' and actor_id = %s order by id", (user_id,)).fetchall()


def test_three_refused_reads_in_a_minute_are_one_row_with_count_3(api_db, postgrest, people):
    user_id, token = people["nobody"]
    with owner_connect(api_db) as conn:
        before = conn.execute("select count(*) from data.audit_log").fetchone()[0]
    for _ in range(3):
        answer = get(postgrest, token, "/admin_audit_log?limit=1")
        assert answer.status_code == 403, answer.text
        assert answer.json()["code"] == "permission_denied"
    assert read_denials(api_db, user_id) == [
        ("audit.view", "/admin_audit_log", 3, "192.0.2.77", "refusal-test", "user")]
    # the loopback connection is kept for the next refusal (one per PostgREST backend), not
    # opened and dropped each time
    with owner_connect(api_db) as conn:
        loopbacks = conn.execute("select count(*) from pg_stat_activity "
                                 "where datname = %s and application_name = 'kitsu_refusals'", (api_db,)).fetchone()[0]
    assert 1 <= loopbacks <= 3
    # another resource is its own row; the refusal writes nothing else
    assert get(postgrest, token, "/admin_anime?limit=1").status_code == 403
    assert [(r[0], r[1], r[2]) for r in read_denials(api_db, user_id)] == [
        ("audit.view", "/admin_audit_log", 3), ("anime.view", "/admin_anime", 1)]
    with owner_connect(api_db) as conn:
        assert conn.execute("select count(*) from data.audit_log").fetchone()[0] == before + 2


def test_each_caller_and_each_minute_is_its_own_row(api_db, postgrest, people):
    user_id, token = people["other"]
    assert get(postgrest, token, "/admin_users?limit=1").status_code == 403
    with owner_connect(api_db) as conn:  # that refusal happened a minute ago
        conn.execute("update data.audit_log set created_at = created_at - interval '1 minute' "
                     "where action = 'security.read_denied' and actor_id = %s", (user_id,))
    assert get(postgrest, token, "/admin_users?limit=1").status_code == 403
    assert get(postgrest, token, "/admin_users?limit=1").status_code == 403
    assert [r[2] for r in read_denials(api_db, user_id)] == [1, 2]


def test_an_allowed_read_is_not_counted(api_db, postgrest, people):
    user_id, token = people["other"]
    with owner_connect(api_db) as conn:
        conn.execute("insert into data.user_roles (user_id, role) values (%s, 'support') on conflict do nothing",
                     (user_id,))
    try:
        counted = read_denials(api_db, user_id)
        assert get(postgrest, token, "/admin_anime?limit=1").status_code == 200
        assert read_denials(api_db, user_id) == counted
    finally:
        with owner_connect(api_db) as conn:
            conn.execute("delete from data.user_roles where user_id = %s and role = 'support'", (user_id,))


def test_without_the_counter_a_read_is_still_refused_uncounted(make_db, start_postgrest, mint):
    """The planted fault: the superuser's counter is gone (a database set up without one)."""
    dbname = make_db()
    params = psycopg.conninfo.conninfo_to_dict(db.admin_url()) | {"dbname": dbname}
    with psycopg.connect(**params, autocommit=True) as conn:
        conn.execute(sql.SQL("drop schema autonomous cascade"))
    with owner_connect(dbname) as conn:
        user_id, session_id = create_user(conn, "plain@refused.test")
    service = start_postgrest(dbname)
    answer = get(service, mint(user_id, session_id), "/admin_audit_log?limit=1")
    assert answer.status_code == 403 and answer.json()["code"] == "permission_denied"
    assert read_denials(dbname, user_id) == []


def test_a_loopback_the_server_closed_is_opened_again_and_the_refusal_still_counted(api_db, postgrest, people):
    """As after 10 s without refusals (idle_session_timeout): the kept connection is gone."""
    user_id, token = people["nobody"]
    assert get(postgrest, token, "/admin_ip_bans").status_code == 403
    with owner_connect(api_db) as conn:
        closed = conn.execute("select count(pg_terminate_backend(pid)) from pg_stat_activity "
                              "where datname = %s and application_name = 'kitsu_refusals'", (api_db,)).fetchone()[0]
    assert closed >= 1
    for _ in range(4):  # whichever PostgREST backend answers, its loopback was closed
        assert get(postgrest, token, "/admin_ip_bans").status_code == 403
    counts = [r[2] for r in read_denials(api_db, user_id) if r[1] == "/admin_ip_bans"]
    assert sum(counts) == 5
