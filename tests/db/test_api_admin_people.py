"""People administration through a real PostgREST with real tokens (issue 13): deactivation
revokes every session at once (the person's tokens get 401 on their next request), reactivation,
display names, a person's sessions listed and revoked, roles and permissions readable; and the
last super_admin can never be removed, also not by two concurrent requests (two real
connections, the second blocked on the first's lock until it commits)."""

from __future__ import annotations

import threading
import uuid

import httpx
import psycopg
import pytest

from database import build as db
from tests.conftest import as_role, owner_connect
from tests.helpers import create_user

HEADERS = {"User-Agent": "people-admin-tests/1.0", "X-Forwarded-For": "203.0.113.40"}


@pytest.fixture(scope="module")
def world(api_db, postgrest, mint):
    return {"url": postgrest.url, "db": api_db, "mint": mint}


def person(world, *roles: str) -> dict:
    """A new person holding `roles`, with two live sessions; {id, sessions, token}."""
    with owner_connect(world["db"]) as conn:
        user_id, first = create_user(conn, f"{uuid.uuid4().hex[:10]}@people.test")
        second = conn.execute("insert into data.sessions (user_id, expires_at) values (%s, now() + interval '1 day') "
                              "returning id", (user_id,)).fetchone()[0]
        for role in roles:
            conn.execute("insert into data.user_roles (user_id, role) values (%s, %s)", (user_id, role))
    return {"id": str(user_id), "sessions": [first, second], "token": world["mint"](user_id, first),
            "second_token": world["mint"](user_id, second)}


def call(world, token: str, method: str, path: str, **body: object) -> httpx.Response:
    with httpx.Client(base_url=world["url"], timeout=10,
                      headers={**HEADERS, "Authorization": f"Bearer {token}"}) as c:
        return c.request(method, path, json=body or None)


def audit(world, user_id: str) -> list[str]:
    with owner_connect(world["db"]) as conn:
        return [r[0] for r in conn.execute("select action from data.audit_log where entity_type = 'user' "
                                           "and entity_id = %s order by id", (user_id,))]


def remove_other_super_admins(world, keep: list[str]) -> None:
    with owner_connect(world["db"]) as conn:
        conn.execute("delete from data.user_roles where role = 'super_admin' and not (user_id = any(%s::uuid[]))",
                     (keep,))


def test_deactivation_revokes_every_session_at_once_and_reactivation_restores_sign_in(world):
    boss, target = person(world, "super_admin"), person(world)
    assert call(world, target["token"], "GET", "/favorites").status_code == 200
    done = call(world, boss["token"], "POST", "/rpc/admin_set_user_active", user_id=target["id"], active=False,
                reason="spam")
    assert done.status_code == 200, done.text
    assert done.json()["sessions_revoked"] == 2 and done.json()["user"]["is_active"] is False
    for token in (target["token"], target["second_token"]):
        assert call(world, token, "GET", "/favorites").status_code == 401
    again = call(world, boss["token"], "POST", "/rpc/admin_set_user_active", user_id=target["id"], active=False)
    assert again.json()["warnings"] == ["no_changes"]
    back = call(world, boss["token"], "POST", "/rpc/admin_set_user_active", user_id=target["id"], active=True)
    assert back.json()["user"]["is_active"] is True
    assert audit(world, target["id"]) == ["user.deactivate", "user.reactivate"]
    self_ = call(world, boss["token"], "POST", "/rpc/admin_set_user_active", user_id=boss["id"], active=False)
    assert (self_.status_code, self_.json()["code"]) == (409, "cannot_deactivate_self")


def test_display_name_sessions_list_and_revoke(world):
    boss, target = person(world, "super_admin"), person(world)
    named = call(world, boss["token"], "POST", "/rpc/admin_update_user", user_id=target["id"], display_name=" Ann ")
    assert named.json()["user"]["display_name"] == "Ann"
    too_long = call(world, boss["token"], "POST", "/rpc/admin_update_user", user_id=target["id"], display_name="x" * 65)
    assert too_long.status_code == 400
    listed = call(world, boss["token"], "GET", f"/admin_user_sessions?user_id=eq.{target['id']}&live=is.true").json()
    assert {s["id"] for s in listed} == {str(s) for s in target["sessions"]}
    one = call(world, boss["token"], "POST", "/rpc/admin_revoke_sessions", user_id=target["id"],
               session_id=str(target["sessions"][1]))
    assert one.json()["revoked"] == [str(target["sessions"][1])]
    assert call(world, target["second_token"], "GET", "/favorites").status_code == 401
    assert call(world, target["token"], "GET", "/favorites").status_code == 200
    assert audit(world, target["id"]) == ["user.update", "user.sessions_revoke"]
    # admins read people (admin.users.view) but do not manage them
    admin = person(world, "admin")
    assert call(world, admin["token"], "GET", "/admin_user_sessions").status_code == 403
    assert call(world, admin["token"], "POST", "/rpc/admin_revoke_sessions", user_id=target["id"]).status_code == 403


def test_roles_and_permissions_are_readable_by_people_readers(world):
    support = person(world, "support")
    roles = {r["name"]: r for r in call(world, support["token"], "GET", "/admin_roles").json()}
    assert roles["support"]["permissions"] == ["admin.users.view", "anime.view", "audit.view", "episode.view"]
    assert roles["parser_bot"]["is_system"] is True and roles["user"]["permissions"] == []
    permissions = call(world, support["token"], "GET", "/admin_permissions").json()
    assert len(permissions) == 25
    assert next(p for p in permissions if p["name"] == "security.ban.ip")["roles"] == ["super_admin"]
    editor = person(world, "editor")
    assert call(world, editor["token"], "GET", "/admin_roles").status_code == 403


def test_the_last_super_admin_can_be_neither_deactivated_nor_stripped(world):
    last = person(world, "super_admin")
    manager = person(world, "admin")
    with owner_connect(world["db"]) as conn:
        conn.execute("insert into data.role_permissions (role, permission) values ('admin', 'admin.users.manage'), "
                     "('admin', 'admin.roles.manage') on conflict do nothing")
    try:
        remove_other_super_admins(world, [last["id"]])
        refused = call(world, manager["token"], "POST", "/rpc/admin_set_user_active", user_id=last["id"], active=False)
        assert (refused.status_code, refused.json()["code"]) == (409, "last_super_admin")
        stripped = call(world, manager["token"], "POST", "/rpc/admin_revoke_role", user_id=last["id"],
                        role="super_admin")
        assert (stripped.status_code, stripped.json()["code"]) == (409, "last_super_admin")
        assert call(world, last["token"], "GET", "/admin_users?limit=1").status_code == 200  # nothing changed
    finally:
        with owner_connect(world["db"]) as conn:
            conn.execute("delete from data.role_permissions where role = 'admin' "
                         "and permission in ('admin.users.manage', 'admin.roles.manage')")


@pytest.mark.parametrize("second_call", ["deactivate", "revoke"])
def test_two_concurrent_removals_of_the_last_two_super_admins_leave_one(world, second_call):
    """Connection A removes super_admin X and holds its transaction open; connection B then tries
    to remove super_admin Y (deactivating or revoking) and must wait for A's lock; once A commits,
    B sees no other active super_admin and is refused. Without the lock both would succeed."""
    x, y, boss = person(world, "super_admin"), person(world, "super_admin"), person(world, "super_admin")
    remove_other_super_admins(world, [x["id"], y["id"], boss["id"]])
    with owner_connect(world["db"]) as conn:  # boss acts but is not a super_admin any more
        conn.execute("delete from data.user_roles where user_id = %s and role = 'super_admin'", (boss["id"],))
        conn.execute("insert into data.user_roles (user_id, role) values (%s, 'admin')", (boss["id"],))
        conn.execute("insert into data.role_permissions (role, permission) values ('admin', 'admin.users.manage'), "
                     "('admin', 'admin.roles.manage') on conflict do nothing")
    url = db.role_url(world["db"], "authenticator")
    outcome: dict[str, object] = {}
    try:
        with psycopg.connect(url) as a, psycopg.connect(url) as b:
            as_role(a, "web_user", uuid.UUID(boss["id"]), boss["sessions"][0])
            assert a.execute("select api.admin_revoke_role(%s, 'super_admin')", (x["id"],)).fetchone()[0]["changed"]

            def run_b() -> None:
                try:
                    as_role(b, "web_user", uuid.UUID(boss["id"]), boss["sessions"][0])
                    if second_call == "deactivate":
                        b.execute("select api.admin_set_user_active(%s, false)", (y["id"],))
                    else:
                        b.execute("select api.admin_revoke_role(%s, 'super_admin')", (y["id"],))
                    b.commit()
                    outcome["b"] = "committed"
                except psycopg.Error as exc:
                    b.rollback()
                    outcome["b"] = exc.diag.message_primary

            worker = threading.Thread(target=run_b)
            worker.start()
            worker.join(timeout=1.5)
            assert worker.is_alive(), "B did not wait for A's lock"
            a.commit()
            worker.join(timeout=10)
        assert "last_super_admin" in str(outcome["b"])
        with owner_connect(world["db"]) as conn:
            holders = conn.execute("select count(*) from data.user_roles ur join data.users u on u.id = ur.user_id "
                                   "where ur.role = 'super_admin' and u.is_active").fetchone()[0]
        assert holders == 1
    finally:
        with owner_connect(world["db"]) as conn:
            conn.execute("delete from data.role_permissions where role = 'admin' "
                         "and permission in ('admin.users.manage', 'admin.roles.manage')")
