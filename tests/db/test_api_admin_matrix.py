"""The permission matrix of the admin API (contract §6, issue 13) through a real PostgREST:
every one of the 25 permissions, held alone by a person, opens exactly the admin resources
mapped to it below and no other (403 everywhere else); every seeded person role gets exactly
the resources its permissions open; and revoking a permission closes the resource on the very
next request.

ADMIN_RESOURCES is the mapping as documented in docs/admin-api.md ("Permission matrix"). Each
call's body is harmless for a caller who passes the permission check (a random id → 404, an
invalid value → 400, a no-op), so the matrix changes nothing but refusal audit rows."""

from __future__ import annotations

import uuid

import httpx
import pytest

from tests.conftest import owner_connect
from tests.helpers import create_user

PERMISSIONS = (
    "anime.view", "anime.create", "anime.edit", "anime.delete", "anime.publish", "anime.lock",
    "anime.unlock", "episode.view", "episode.create", "episode.edit", "episode.delete",
    "episode.lock", "episode.unlock", "parser.run", "parser.configure", "parser.override_lock",
    "admin.parser.settings", "admin.parser.emergency", "admin.parser.logs", "admin.roles.manage",
    "admin.users.manage", "admin.users.view", "audit.view", "security.ban.ip", "security.unban.ip",
)

# what the seed gives each person role (sql/data/rbac.sql); the test checks the seed against it
PERSON_ROLES = {
    "super_admin": set(PERMISSIONS) - {"parser.run"},
    "admin": {p for p in PERMISSIONS if p.startswith(("anime.", "episode."))}
    | {"parser.configure", "admin.parser.settings", "admin.parser.logs", "admin.users.view", "audit.view"},
    "moderator": {"anime.view", "anime.edit", "anime.lock", "episode.view", "episode.edit",
                  "episode.lock", "audit.view"},
    "editor": {"anime.view", "anime.create", "anime.edit", "episode.view", "episode.create", "episode.edit"},
    "support": {"anime.view", "episode.view", "admin.users.view", "audit.view"},
    "user": set(),  # the public catalog needs no permission (migration 0030)
}
SYSTEM_ROLES = ("parser_bot", "worker_bot")

NOBODY = str(uuid.uuid4())
# (method, path, body, permissions: any one of them opens it)
ADMIN_RESOURCES: list[tuple[str, str, dict | None, frozenset[str]]] = [
    ("GET", "/admin_anime?limit=1", None, frozenset({"anime.view"})),
    ("POST", "/rpc/admin_update_anime", {"id": NOBODY, "patch": {"title": "x"}}, frozenset({"anime.edit"})),
    ("POST", "/rpc/admin_create_anime", {"fields": {"title": " "}}, frozenset({"anime.create"})),
    ("POST", "/rpc/admin_lock_anime", {"id": NOBODY}, frozenset({"anime.lock"})),
    ("POST", "/rpc/admin_unlock_anime", {"id": NOBODY}, frozenset({"anime.unlock"})),
    ("POST", "/rpc/admin_delete_anime", {"id": NOBODY, "reason": " "}, frozenset({"anime.delete"})),
    ("POST", "/rpc/admin_restore_anime", {"id": NOBODY}, frozenset({"anime.delete"})),
    ("POST", "/rpc/admin_merge_anime", {"duplicate_id": NOBODY, "target_id": NOBODY}, frozenset({"anime.delete"})),
    ("GET", "/admin_episodes?limit=1", None, frozenset({"episode.view"})),
    ("POST", "/rpc/admin_create_episode", {"anime_id": NOBODY, "number": 1}, frozenset({"episode.create"})),
    ("POST", "/rpc/admin_update_episode", {"id": NOBODY, "patch": {"title": "x"}}, frozenset({"episode.edit"})),
    ("POST", "/rpc/admin_lock_episode", {"id": NOBODY}, frozenset({"episode.lock"})),
    ("POST", "/rpc/admin_unlock_episode", {"id": NOBODY}, frozenset({"episode.unlock"})),
    ("POST", "/rpc/admin_delete_episode", {"id": NOBODY, "reason": " "}, frozenset({"episode.delete"})),
    ("POST", "/rpc/admin_restore_episode", {"id": NOBODY}, frozenset({"episode.delete"})),
    ("POST", "/rpc/admin_fix_player", {"episode_id": NOBODY, "translation_id": 1, "player_url": "https://k.test/x"},
     frozenset({"episode.edit"})),
    ("POST", "/rpc/admin_hide_player", {"episode_id": NOBODY, "translation_id": 1}, frozenset({"episode.edit"})),
    ("POST", "/rpc/admin_lock_player", {"episode_id": NOBODY, "translation_id": 1}, frozenset({"episode.lock"})),
    ("POST", "/rpc/admin_lock_player", {"episode_id": NOBODY, "translation_id": 1, "locked": False},
     frozenset({"episode.unlock"})),
    ("GET", "/admin_player_conflicts?limit=1", None, frozenset({"episode.view"})),
    ("POST", "/rpc/admin_accept_upstream_player", {"episode_id": NOBODY, "translation_id": 1},
     frozenset({"episode.edit"})),
    ("GET", "/admin_ip_bans?limit=1", None, frozenset({"security.ban.ip"})),
    ("POST", "/rpc/admin_ban_ip", {"network": "not-an-address", "reason": "x"}, frozenset({"security.ban.ip"})),
    ("POST", "/rpc/admin_unban_ip", {"id": -1}, frozenset({"security.unban.ip"})),
    ("GET", "/admin_genres?limit=1", None, frozenset({"anime.view"})),
    ("POST", "/rpc/admin_set_anime_genres", {"id": NOBODY, "genre_ids": []}, frozenset({"anime.edit"})),
    ("GET", "/admin_publish_preview?limit=1", None, frozenset({"admin.parser.settings"})),
    ("GET", "/admin_upstream_limits", None, frozenset({"admin.parser.settings"})),
    ("GET", "/admin_player_priorities", None, frozenset({"admin.parser.settings"})),
    ("POST", "/rpc/admin_set_player_priorities", {}, frozenset({"admin.parser.settings"})),
    ("POST", "/rpc/admin_set_upstream_limits", {"upstream": "nowhere", "patch": {"enabled": True}},
     frozenset({"admin.parser.settings"})),
    ("GET", "/admin_users?limit=1", None, frozenset({"admin.users.view"})),
    ("GET", "/admin_user_sessions?limit=1", None, frozenset({"admin.users.manage"})),
    ("POST", "/rpc/admin_set_user_active", {"user_id": NOBODY, "active": True}, frozenset({"admin.users.manage"})),
    ("POST", "/rpc/admin_update_user", {"user_id": NOBODY, "display_name": "x"}, frozenset({"admin.users.manage"})),
    ("POST", "/rpc/admin_revoke_sessions", {"user_id": NOBODY}, frozenset({"admin.users.manage"})),
    ("GET", "/admin_roles", None, frozenset({"admin.users.view", "admin.roles.manage"})),
    ("GET", "/admin_permissions", None, frozenset({"admin.users.view", "admin.roles.manage"})),
    ("POST", "/rpc/admin_grant_role", {"user_id": NOBODY, "role": "no_such_role"}, frozenset({"admin.roles.manage"})),
    ("POST", "/rpc/admin_revoke_role", {"user_id": NOBODY, "role": "admin"}, frozenset({"admin.roles.manage"})),
    ("GET", "/admin_audit_log?limit=1", None, frozenset({"audit.view"})),
    ("GET", "/admin_ingest_settings", None, frozenset({"admin.parser.settings"})),
    ("POST", "/rpc/admin_update_ingest_settings", {"patch": {}}, frozenset({"admin.parser.settings"})),
    ("POST", "/rpc/admin_set_ingest_mode", {"mode": "sideways"}, frozenset({"admin.parser.settings"})),
    ("POST", "/rpc/admin_emergency_stop", {"reason": " "}, frozenset({"admin.parser.emergency"})),
    ("POST", "/rpc/admin_resume_ingest", {"mode": "sideways"}, frozenset({"admin.parser.emergency"})),
    ("GET", "/admin_sync_runs?limit=1", None, frozenset({"admin.parser.logs"})),
    ("GET", "/admin_sync_jobs?limit=1", None, frozenset({"admin.parser.logs"})),
    ("POST", "/rpc/admin_trigger_sync", {"task": "no_such_task"}, frozenset({"admin.parser.settings", "parser.run"})),
    ("GET", "/admin_staging_anime?limit=1", None, frozenset({"admin.parser.settings"})),
    ("POST", "/rpc/admin_match", {"shikimori_id": -1, "anime_id": NOBODY}, frozenset({"admin.parser.settings"})),
    ("POST", "/rpc/admin_unmatch", {"shikimori_id": -1}, frozenset({"admin.parser.settings"})),
    ("POST", "/rpc/admin_publish", {"shikimori_ids": [-1]}, frozenset({"admin.parser.settings"})),
]


def only_role(permission: str) -> str:
    """The test role holding just this permission, e.g. only_anime_edit."""
    return "only_" + permission.replace(".", "_")


@pytest.fixture(scope="module")
def matrix(api_db, postgrest, mint):
    """One person per single-permission role, one per seeded person role, one with none."""
    tokens: dict[str, str] = {}
    people: dict[str, uuid.UUID] = {}
    with owner_connect(api_db) as conn:
        for permission in PERMISSIONS:
            conn.execute("insert into data.roles (name, description) values (%s, 'matrix test')",
                         (only_role(permission),))
            conn.execute("insert into data.role_permissions (role, permission) values (%s, %s)",
                         (only_role(permission), permission))
        for role in (*(only_role(p) for p in PERMISSIONS), *PERSON_ROLES, None):
            who = role or "nobody"
            user_id, session_id = create_user(conn, f"{who}@matrix.test")
            # every account starts with `user`; the matrix needs people holding exactly one right
            conn.execute("delete from data.user_roles where user_id = %s", (user_id,))
            if role:
                conn.execute("insert into data.user_roles (user_id, role) values (%s, %s) on conflict do nothing",
                             (user_id, role))
            people[who] = user_id
            tokens[who] = mint(user_id, session_id)
    return {"url": postgrest.url, "db": api_db, "tokens": tokens, "people": people}


def client(matrix, who: str) -> httpx.Client:
    return httpx.Client(base_url=matrix["url"], timeout=10,
                        headers={"Authorization": f"Bearer {matrix['tokens'][who]}",
                                 "X-Forwarded-For": "192.0.2.44"})


def outcomes(matrix, who: str) -> dict[str, int]:
    """The status of every admin resource for this person."""
    with client(matrix, who) as c:
        return {f"{method} {path}": c.request(method, path, json=body).status_code
                for method, path, body, _ in ADMIN_RESOURCES}


def expected(held: set[str]) -> dict[str, bool]:
    """Which admin resources a holder of these permissions may use."""
    return {f"{method} {path}": bool(opened & held) for method, path, _, opened in ADMIN_RESOURCES}


def check(matrix, who: str, held: set[str]) -> None:
    got = outcomes(matrix, who)
    # allowed: anything but 403 (the harmless bodies answer 200, 400 or 404); never 401 or 5xx
    wrong = {resource: status for resource, status in got.items()
             if (status == 403) == expected(held)[resource] or status == 401 or status >= 500}
    assert not wrong, f"{who} holding {sorted(held)}: {wrong}"


def test_the_seed_matches_the_contract_permissions_and_roles(matrix):
    with owner_connect(matrix["db"]) as conn:
        permissions = {r[0] for r in conn.execute("select name from data.permissions")}
        grants = conn.execute("select role, array_agg(permission) from data.role_permissions "
                              "where role not like 'only\\_%' group by role").fetchall()
    assert permissions == set(PERMISSIONS) and len(PERMISSIONS) == 25
    seeded = {role: set(held) for role, held in grants if role not in SYSTEM_ROLES}
    assert seeded == {role: held for role, held in PERSON_ROLES.items() if held}


def test_every_resource_is_opened_by_a_real_permission():
    # a mapping naming a permission that does not exist would let the matrix pass vacuously
    named = set().union(*(opened for *_, opened in ADMIN_RESOURCES))
    assert named <= set(PERMISSIONS)


@pytest.mark.parametrize("permission", PERMISSIONS)
def test_each_permission_alone_opens_exactly_its_resources(matrix, permission):
    check(matrix, only_role(permission), {permission})


@pytest.mark.parametrize("role", PERSON_ROLES)
def test_each_person_role_opens_exactly_what_its_permissions_map_to(matrix, role):
    check(matrix, role, PERSON_ROLES[role])


def test_without_any_permission_every_admin_resource_answers_403(matrix):
    assert set(outcomes(matrix, "nobody").values()) == {403}


def test_revoking_a_permission_closes_its_resources_on_the_next_request(matrix):
    role = only_role("audit.view")
    with client(matrix, role) as c:
        assert c.get("/admin_audit_log?limit=1").status_code == 200
        with owner_connect(matrix["db"]) as conn:
            conn.execute("delete from data.role_permissions where role = %s", (role,))
        try:
            assert c.get("/admin_audit_log?limit=1").status_code == 403
        finally:
            with owner_connect(matrix["db"]) as conn:
                conn.execute("insert into data.role_permissions (role, permission) values (%s, 'audit.view')",
                             (role,))
        assert c.get("/admin_audit_log?limit=1").status_code == 200
        # taking the role away from the person works the same way
        with owner_connect(matrix["db"]) as conn:
            conn.execute("delete from data.user_roles where user_id = %s", (matrix["people"][role],))
        assert c.get("/admin_audit_log?limit=1").status_code == 403
