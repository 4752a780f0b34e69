"""The admin part of the API through a real PostgREST with real tokens: RBAC on every admin
resource, the anime state machine, field locks, soft delete, role grants and the audit log,
including audit rows of refused attempts that must survive the failed request."""

from __future__ import annotations

import uuid

import httpx
import psycopg
import pytest

from tests.conftest import owner_connect
from tests.helpers import create_anime, create_user

ROLES = ("super_admin", "admin", "moderator", "editor", "support")
HEADERS = {"User-Agent": "admin-tests/1.0", "X-Forwarded-For": "198.51.100.7, 203.0.113.9"}


def add_video(conn: psycopg.Connection, anime_id: uuid.UUID) -> None:
    """Give a title one episode with one player (has_video)."""
    conn.execute(
        "insert into data.translations (id, title, type) values (610, 'AniLibria', 'voice') "
        "on conflict do nothing"
    )
    episode_id = conn.execute(
        "insert into data.episodes (anime_id, number) "
        "select %s, coalesce(max(number), 0) + 1 from data.episodes where anime_id = %s "
        "returning id",
        (anime_id, anime_id),
    ).fetchone()[0]
    conn.execute(
        "insert into data.episode_sources (episode_id, translation_id, player_url) "
        "values (%s, 610, 'https://kodik.test/e')",
        (episode_id,),
    )


def grant(conn: psycopg.Connection, user_id: uuid.UUID, role: str) -> None:
    conn.execute("insert into data.user_roles (user_id, role) values (%s, %s)", (user_id, role))


def anime(world, state: str = "draft", *, video: bool = False, **columns: object) -> str:
    """A new title in ``state`` (complete unless columns say otherwise)."""
    columns = {"description": "Synopsis", "poster_url": "https://img.test/p.jpg", **columns}
    with owner_connect(world["db"]) as conn:
        anime_id = create_anime(conn, state=state, **columns)
        if video:
            add_video(conn, anime_id)
    return str(anime_id)


def audit_rows(world, **where: object) -> list[dict]:
    clauses = " and ".join(f"{column} = %s" for column in where) or "true"
    with owner_connect(world["db"]) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute(
            f"select * from data.audit_log where {clauses} order by id",
            [str(v) for v in where.values()],
        ).fetchall()


def anime_row(world, anime_id: str) -> dict:
    with owner_connect(world["db"]) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        return cur.execute("select * from data.anime where id = %s", (anime_id,)).fetchone()


@pytest.fixture(scope="module")
def world(api_db, postgrest, mint):
    """One person per staff role, a plain user, and a few titles."""
    people: dict[str, uuid.UUID] = {}
    tokens: dict[str, str] = {}
    with owner_connect(api_db) as conn:
        for who in (*ROLES, "plain", "spare"):
            user_id, session_id = create_user(conn, f"{who}@example.test")
            if who in ROLES:
                grant(conn, user_id, who)
            people[who] = user_id
            tokens[who] = mint(user_id, session_id)
    return {"url": postgrest.url, "db": api_db, "people": people, "tokens": tokens}


def client(world, who: str | None = None) -> httpx.Client:
    headers = dict(HEADERS)
    if who:
        headers["Authorization"] = f"Bearer {world['tokens'][who]}"
    return httpx.Client(base_url=world["url"], headers=headers, timeout=10)


def rpc(world, who: str | None, name: str, **body: object) -> httpx.Response:
    with client(world, who) as c:
        return c.post(f"/rpc/{name}", json=body)


# --- who may do what ---------------------------------------------------------------------------

ADMIN_CALLS = [
    ("GET", "/admin_anime", None),
    ("GET", "/admin_users", None),
    ("GET", "/admin_audit_log", None),
    ("POST", "/rpc/admin_update_anime", {"id": str(uuid.uuid4()), "patch": {"title": "x"}}),
    ("POST", "/rpc/admin_create_anime", {"fields": {"title": "x"}}),
    ("POST", "/rpc/admin_lock_anime", {"id": str(uuid.uuid4())}),
    ("POST", "/rpc/admin_unlock_anime", {"id": str(uuid.uuid4())}),
    ("POST", "/rpc/admin_delete_anime", {"id": str(uuid.uuid4()), "reason": "x"}),
    ("POST", "/rpc/admin_restore_anime", {"id": str(uuid.uuid4())}),
    ("POST", "/rpc/admin_grant_role", {"user_id": str(uuid.uuid4()), "role": "admin"}),
    ("POST", "/rpc/admin_revoke_role", {"user_id": str(uuid.uuid4()), "role": "admin"}),
]


@pytest.mark.parametrize("method, path, body", ADMIN_CALLS)
def test_anonymous_callers_get_401_on_every_admin_resource(world, method, path, body):
    with client(world) as anon:
        response = anon.request(method, path, json=body)
    assert response.status_code == 401, response.text


@pytest.mark.parametrize("method, path, body", ADMIN_CALLS)
def test_plain_users_get_403_on_every_admin_resource(world, method, path, body):
    with client(world, "plain") as plain:
        response = plain.request(method, path, json=body)
    assert response.status_code == 403, response.text
    assert response.json()["code"] == "permission_denied"
    assert response.headers["x-content-type-options"] == "nosniff"


def forget_refusals(world) -> None:
    """Refusals of one caller and action within a minute are one row (private.admin_refuse):
    start from none, so the next refusal is a row of its own."""
    with owner_connect(world["db"]) as conn:
        conn.execute("delete from data.audit_log where action like 'security.%'")


def test_a_refused_write_is_audited_although_the_request_failed(world):
    anime_id = anime(world)
    forget_refusals(world)
    response = rpc(world, "plain", "admin_update_anime", id=anime_id, patch={"title": "Hijacked"})
    assert response.status_code == 403
    assert "anime.edit" in response.json()["message"]
    assert anime_row(world, anime_id)["title"] != "Hijacked"
    [row] = [
        r
        for r in audit_rows(
            world,
            action="security.permission_denied",
            entity_id="anime.edit",
            actor_id=world["people"]["plain"],
        )
        if r["after"]["target"] == anime_id
    ]
    assert row["actor_type"] == "user" and row["entity_type"] == "permission"
    assert row["after"] == {"resource": "rpc/admin_update_anime", "target": anime_id}
    assert str(row["ip"]) == "203.0.113.9" and row["user_agent"] == "admin-tests/1.0"


def test_a_moderator_edits_but_cannot_grant_roles_or_delete(world):
    anime_id = anime(world)
    edited = rpc(world, "moderator", "admin_update_anime", id=anime_id, patch={"title": "Renamed"})
    assert edited.status_code == 200, edited.text
    for name, body, permission in [
        (
            "admin_grant_role",
            {"user_id": str(world["people"]["spare"]), "role": "admin"},
            "admin.roles.manage",
        ),
        ("admin_delete_anime", {"id": anime_id, "reason": "spam"}, "anime.delete"),
        ("admin_unlock_anime", {"id": anime_id}, "anime.unlock"),
        ("admin_create_anime", {"fields": {"title": "New"}}, "anime.create"),
    ]:
        refused = rpc(world, "moderator", name, **body)
        assert refused.status_code == 403, (name, refused.text)
        assert audit_rows(world, actor_id=world["people"]["moderator"], entity_id=permission)
    with owner_connect(world["db"]) as conn:
        roles = conn.execute(
            "select array_agg(role) from data.user_roles where user_id = %s",
            (world["people"]["spare"],),
        ).fetchone()[0]
    assert roles == ["user"]


def test_read_permissions_gate_each_admin_view(world):
    expectations = {  # who -> (admin_anime, admin_users, admin_audit_log)
        "super_admin": (200, 200, 200),
        "admin": (200, 200, 200),
        "moderator": (200, 403, 200),
        "editor": (200, 403, 403),
        "support": (200, 200, 200),  # anime.view reads the admin catalog (issue 13)
        "plain": (403, 403, 403),
    }
    for who, expected in expectations.items():
        with client(world, who) as c:
            got = tuple(
                c.get(path, params={"limit": 1}).status_code
                for path in ("/admin_anime", "/admin_users", "/admin_audit_log")
            )
        assert got == expected, who


# --- admin catalog -----------------------------------------------------------------------------


def test_admin_catalog_lists_every_state_with_video_and_errors(world):
    ids = {
        "draft_bare": anime(world, "draft", description=None, poster_url=None),
        "pending_video": anime(world, "pending", video=True),
        "published_no_video": anime(world, "published"),
        "deleted": anime(world, "published", video=True, deleted=True),
    }
    with client(world, "editor") as editor:
        response = editor.get("/admin_anime", params={"id": f"in.({','.join(ids.values())})"})
    assert response.status_code == 200, response.text
    rows = {row["id"]: row for row in response.json()}
    assert set(rows) == set(ids.values())
    bare = rows[ids["draft_bare"]]
    assert bare["has_video"] is False and bare["has_errors"] is True
    assert bare["errors"] == ["missing_description", "missing_poster", "no_video"]
    assert bare["next_states"] == ["pending", "broken", "archived"]
    assert (
        rows[ids["pending_video"]]["has_video"] is True
        and rows[ids["pending_video"]]["errors"] == []
    )
    assert rows[ids["pending_video"]]["episodes_count"] == 1
    assert rows[ids["published_no_video"]]["errors"] == ["no_video", "published_without_video"]
    assert rows[ids["deleted"]]["is_deleted"] is True


def test_admin_catalog_filters_orders_and_counts(world):
    for i in range(3):
        anime(world, "archived", title=f"Archived {i}")
    with client(world, "admin") as admin:
        response = admin.get(
            "/admin_anime",
            params={
                "state": "eq.archived",
                "has_errors": "is.true",
                "order": "title.desc",
                "limit": 2,
                "select": "id,title,state",
            },
            headers={"Prefer": "count=exact"},
        )
    assert response.status_code in (200, 206), response.text
    rows = response.json()
    assert [row["title"] for row in rows] == sorted((row["title"] for row in rows), reverse=True)
    assert len(rows) == 2 and all(row["state"] == "archived" for row in rows)
    total = int(response.headers["content-range"].split("/")[1])
    assert total >= 3


# --- edits and the state machine -----------------------------------------------------------------


def test_an_edit_is_manual_records_edited_fields_and_is_audited(world):
    anime_id = anime(world, "draft", source="parser", edited_fields=["year"])
    response = rpc(
        world,
        "editor",
        "admin_update_anime",
        id=anime_id,
        patch={"title": "Edited", "synonyms": ["Alt"], "year": 2001},
        reason="typo",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["anime"]["title"] == "Edited" and body["anime"]["source"] == "manual"
    assert body["anime"]["updated_by"] == str(world["people"]["editor"])
    assert body["anime"]["edited_fields"] == ["synonyms", "title", "year"]
    assert body["warnings"] == ["no_video"]
    [row] = audit_rows(world, id=body["audit_log_id"])
    assert (
        row["action"] == "anime.update" and row["entity_id"] == anime_id and row["reason"] == "typo"
    )
    assert row["actor_id"] == world["people"]["editor"]
    assert row["before"]["source"] == "parser" and row["after"]["source"] == "manual"
    assert row["after"]["title"] == "Edited" and row["before"]["title"] != "Edited"
    assert row["after"]["synonyms"] == ["Alt"] and row["after"]["year"] == 2001
    assert str(row["ip"]) == "203.0.113.9" and row["user_agent"] == "admin-tests/1.0"


def test_an_edit_that_changes_nothing_writes_nothing(world):
    anime_id = anime(world, "draft", title="Same")
    response = rpc(world, "editor", "admin_update_anime", id=anime_id, patch={"title": "Same"})
    assert response.status_code == 200
    assert response.json()["audit_log_id"] is None and "no_changes" in response.json()["warnings"]
    assert anime_row(world, anime_id)["edited_fields"] == []


ALLOWED = {
    "draft": {"pending", "broken", "archived"},
    "pending": {"published", "draft", "broken", "archived"},
    "published": {"archived", "broken"},
    "broken": {"draft", "pending", "archived"},
    "archived": {"draft"},
}
STATES = list(ALLOWED)
FORBIDDEN = [(a, b) for a in STATES for b in STATES if a != b and b not in ALLOWED[a]]


@pytest.mark.parametrize("start, goal", FORBIDDEN)
def test_each_forbidden_transition_is_refused(world, start, goal):
    anime_id = anime(world, start, video=True)
    response = rpc(world, "super_admin", "admin_update_anime", id=anime_id, patch={"state": goal})
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "invalid_transition"
    assert anime_row(world, anime_id)["state"] == start


@pytest.mark.parametrize("start, goal", [(a, b) for a in STATES for b in sorted(ALLOWED[a] | {a})])
def test_each_allowed_transition_succeeds(world, start, goal):
    anime_id = anime(world, start, video=True)
    response = rpc(world, "admin", "admin_update_anime", id=anime_id, patch={"state": goal})
    assert response.status_code == 200, response.text
    assert anime_row(world, anime_id)["state"] == goal


def test_publishing_needs_video_and_the_publish_permission(world):
    bare = anime(world, "pending")
    refused = rpc(world, "admin", "admin_update_anime", id=bare, patch={"state": "published"})
    assert refused.status_code == 409 and refused.json()["code"] == "publish_needs_video"
    with_video = anime(world, "pending", video=True)
    # a moderator may edit but not publish (anime.publish): audited 403
    denied = rpc(
        world, "moderator", "admin_update_anime", id=with_video, patch={"state": "published"}
    )
    assert denied.status_code == 403 and "anime.publish" in denied.json()["message"]
    assert audit_rows(world, actor_id=world["people"]["moderator"], entity_id="anime.publish")
    with client(world) as anon:
        assert anon.get("/anime", params={"id": f"eq.{with_video}"}).json() == []
        published = rpc(
            world, "admin", "admin_update_anime", id=with_video, patch={"state": "published"}
        )
        assert published.status_code == 200, published.text
        assert published.json()["warnings"] == []
        assert len(anon.get("/anime", params={"id": f"eq.{with_video}"}).json()) == 1


@pytest.mark.parametrize(
    "patch, status, code",
    [
        ({}, 400, "empty_patch"),
        ({"title": "x", "content_hash": "y"}, 400, "unknown_field"),
        ({"state": "gone"}, 400, "invalid_state"),
        ({"year": 1500}, 400, "23514"),
        ({"year": "soon"}, 400, "22P02"),
    ],
)
def test_invalid_patches_are_400_and_change_nothing(world, patch, status, code):
    anime_id = anime(world, "draft", title="Untouched")
    response = rpc(world, "admin", "admin_update_anime", id=anime_id, patch=patch)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    assert anime_row(world, anime_id)["title"] == "Untouched"


def test_unknown_title_is_404(world):
    response = rpc(world, "admin", "admin_update_anime", id=str(uuid.uuid4()), patch={"title": "x"})
    assert response.status_code == 404 and response.json()["code"] == "anime_not_found"


# --- locks ---------------------------------------------------------------------------------------


def test_locked_fields_refuse_edits_with_423_until_unlocked(world):
    anime_id = anime(world, "draft")
    locked = rpc(
        world,
        "moderator",
        "admin_lock_anime",
        id=anime_id,
        fields=["description"],
        reason="curated",
    )
    assert locked.status_code == 200, locked.text
    assert locked.json()["anime"]["locked_fields"] == ["description"]
    assert locked.json()["anime"]["locked_by"] == str(world["people"]["moderator"])

    refused = rpc(
        world,
        "editor",
        "admin_update_anime",
        id=anime_id,
        patch={"title": "New title", "description": "Rewritten"},
    )
    assert refused.status_code == 423, refused.text
    assert refused.json()["code"] == "field_locked" and refused.json()["details"] == "description"
    assert anime_row(world, anime_id)["title"] != "New title"
    # other fields stay editable; re-sending the locked value unchanged is not an edit
    same = anime_row(world, anime_id)["description"]
    ok = rpc(
        world,
        "editor",
        "admin_update_anime",
        id=anime_id,
        patch={"title": "New title", "description": same},
    )
    assert ok.status_code == 200, ok.text

    # parser.override_lock (super_admin) may edit a locked field, with a warning
    overridden = rpc(
        world, "super_admin", "admin_update_anime", id=anime_id, patch={"description": "Forced"}
    )
    assert overridden.status_code == 200 and "lock_overridden" in overridden.json()["warnings"]

    unlocked = rpc(world, "admin", "admin_unlock_anime", id=anime_id, reason="done")
    assert unlocked.status_code == 200
    assert (
        unlocked.json()["anime"]["locked_fields"] == []
        and unlocked.json()["anime"]["locked_at"] is None
    )
    assert (
        rpc(
            world, "editor", "admin_update_anime", id=anime_id, patch={"description": "Free"}
        ).status_code
        == 200
    )
    actions = [row["action"] for row in audit_rows(world, entity_type="anime", entity_id=anime_id)]
    assert actions == ["anime.lock", "anime.update", "anime.update", "anime.unlock", "anime.update"]


def test_locking_everything_locks_state_too(world):
    anime_id = anime(world, "draft")
    assert rpc(world, "admin", "admin_lock_anime", id=anime_id).status_code == 200
    refused = rpc(world, "admin", "admin_update_anime", id=anime_id, patch={"state": "pending"})
    assert refused.status_code == 423
    bad = rpc(world, "admin", "admin_lock_anime", id=anime_id, fields=["password"])
    assert bad.status_code == 400 and bad.json()["code"] == "unknown_field"


# --- soft delete, create --------------------------------------------------------------------------


def test_soft_delete_hides_a_title_from_the_public_catalog_and_restore_brings_it_back(world):
    anime_id = anime(world, "published", video=True)
    with client(world) as anon:
        assert len(anon.get("/anime", params={"id": f"eq.{anime_id}"}).json()) == 1
        no_reason = rpc(world, "admin", "admin_delete_anime", id=anime_id, reason=" ")
        assert no_reason.status_code == 400 and no_reason.json()["code"] == "reason_required"
        deleted = rpc(world, "admin", "admin_delete_anime", id=anime_id, reason="duplicate")
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["anime"]["is_deleted"] is True
        assert anon.get("/anime", params={"id": f"eq.{anime_id}"}).json() == []
        gone = rpc(world, "admin", "admin_update_anime", id=anime_id, patch={"title": "x"})
        assert gone.status_code == 410 and gone.json()["code"] == "anime_deleted"
        with client(world, "admin") as admin:
            [row] = admin.get("/admin_anime", params={"id": f"eq.{anime_id}"}).json()
        assert row["delete_reason"] == "duplicate" and row["deleted_by"] == str(
            world["people"]["admin"]
        )
        restored = rpc(world, "admin", "admin_restore_anime", id=anime_id, reason="not a duplicate")
        assert restored.status_code == 200 and restored.json()["anime"]["is_deleted"] is False
        assert len(anon.get("/anime", params={"id": f"eq.{anime_id}"}).json()) == 1
    actions = [
        (r["action"], r["reason"])
        for r in audit_rows(world, entity_type="anime", entity_id=anime_id)
    ]
    assert actions == [("anime.delete", "duplicate"), ("anime.restore", "not a duplicate")]


def test_an_editor_creates_a_draft_title(world):
    response = rpc(
        world,
        "editor",
        "admin_create_anime",
        fields={"title": "Brand new", "year": 2024, "kind": "tv"},
        reason="requested",
    )
    assert response.status_code == 200, response.text
    created = response.json()["anime"]
    assert created["state"] == "draft" and created["source"] == "manual"
    assert created["created_by"] == str(world["people"]["editor"])
    assert created["edited_fields"] == ["kind", "title", "year"]
    assert set(response.json()["warnings"]) == {"missing_description", "missing_poster", "no_video"}
    [row] = audit_rows(world, id=response.json()["audit_log_id"])
    assert (
        row["action"] == "anime.create"
        and row["before"] is None
        and row["after"]["title"] == "Brand new"
    )
    for fields, code in [
        ({"title": " "}, "missing_title"),
        ({"title": "x", "state": "published"}, "invalid_transition"),
    ]:
        refused = rpc(world, "editor", "admin_create_anime", fields=fields)
        assert refused.json()["code"] == code


# --- roles and users ---------------------------------------------------------------------------


def test_role_grants_take_effect_on_the_next_request_and_are_audited(world, mint):
    with owner_connect(world["db"]) as conn:
        user_id, session_id = create_user(conn)
    token = mint(user_id, session_id)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=world["url"], headers=headers, timeout=10) as person:
        assert person.get("/admin_anime", params={"limit": 1}).status_code == 403
        granted = rpc(
            world,
            "super_admin",
            "admin_grant_role",
            user_id=str(user_id),
            role="moderator",
            reason="new staff",
        )
        assert granted.status_code == 200, granted.text
        assert granted.json()["changed"] is True and granted.json()["roles"] == [
            "moderator",
            "user",
        ]
        assert person.get("/admin_anime", params={"limit": 1}).status_code == 200
        again = rpc(
            world, "super_admin", "admin_grant_role", user_id=str(user_id), role="moderator"
        )
        assert again.json()["changed"] is False and again.json()["audit_log_id"] is None
        revoked = rpc(
            world, "super_admin", "admin_revoke_role", user_id=str(user_id), role="moderator"
        )
        assert revoked.status_code == 200 and revoked.json()["roles"] == ["user"]
        assert person.get("/admin_anime", params={"limit": 1}).status_code == 403
    rows = audit_rows(world, entity_type="user", entity_id=user_id)
    assert [(r["action"], r["before"], r["after"]) for r in rows] == [
        ("user_role.grant", {"roles": ["user"]}, {"roles": ["moderator", "user"]}),
        ("user_role.revoke", {"roles": ["moderator", "user"]}, {"roles": ["user"]}),
    ]
    with owner_connect(world["db"]) as conn:
        granted_by = conn.execute(
            "select granted_by from data.user_roles where user_id = %s and role = 'user'",
            (user_id,),
        ).fetchone()[0]
    assert granted_by is None  # the default role, not the revoked grant


@pytest.mark.parametrize("role", ["parser_bot", "worker_bot"])
def test_a_system_role_is_never_granted_to_a_person(world, role):
    target = world["people"]["spare"]
    forget_refusals(world)
    response = rpc(world, "super_admin", "admin_grant_role", user_id=str(target), role=role)
    assert response.status_code == 409, response.text
    assert response.json()["code"] == "system_role"
    [row] = [
        r
        for r in audit_rows(world, action="security.escalation_attempt", entity_id=target)
        if r["after"] == {"role": role}
    ]
    assert row["actor_id"] == world["people"]["super_admin"]
    with owner_connect(world["db"]) as conn:
        assert (
            conn.execute(
                "select count(*) from data.user_roles where user_id = %s and role = %s",
                (target, role),
            ).fetchone()[0]
            == 0
        )


def test_role_grant_errors(world):
    spare = str(world["people"]["spare"])
    unknown_role = rpc(world, "super_admin", "admin_grant_role", user_id=spare, role="wizard")
    assert unknown_role.status_code == 404 and unknown_role.json()["code"] == "role_not_found"
    unknown_user = rpc(
        world, "super_admin", "admin_grant_role", user_id=str(uuid.uuid4()), role="editor"
    )
    assert unknown_user.status_code == 404 and unknown_user.json()["code"] == "user_not_found"
    last = rpc(
        world,
        "super_admin",
        "admin_revoke_role",
        user_id=str(world["people"]["super_admin"]),
        role="super_admin",
    )
    assert last.status_code == 409 and last.json()["code"] == "last_super_admin"
    assert (
        rpc(world, "super_admin", "admin_revoke_role", user_id=spare, role="editor").json()[
            "changed"
        ]
        is False
    )


def test_admin_users_lists_people_with_roles_for_support(world):
    with client(world, "support") as support:
        response = support.get("/admin_users", params={"email": "eq.moderator@example.test"})
    assert response.status_code == 200, response.text
    [row] = response.json()
    assert row["roles"] == ["moderator", "user"] and "anime.lock" in row["permissions"]
    assert row["live_sessions"] == 1 and "password_hash" not in row


def test_audit_log_is_readable_with_audit_view_and_filterable(world):
    anime_id = anime(world)
    rpc(
        world, "editor", "admin_update_anime", id=anime_id, patch={"title": "Audited"}, reason="why"
    )
    with client(world, "moderator") as moderator:
        response = moderator.get(
            "/admin_audit_log",
            params={"entity_type": "eq.anime", "entity_id": f"eq.{anime_id}", "order": "id.desc"},
        )
    assert response.status_code == 200, response.text
    [row] = response.json()
    assert (
        row["action"] == "anime.update"
        and row["after"]["title"] == "Audited"
        and row["reason"] == "why"
    )
    assert row["ip"] == "203.0.113.9"


def test_an_editor_written_russian_title_is_no_longer_marked_generated(world):
    anime_id = anime(world, title_ru="Сингэки", title_ru_generated=True)
    other = rpc(world, "moderator", "admin_update_anime", id=anime_id, patch={"title": "Renamed"})
    assert other.status_code == 200, other.text
    assert anime_row(world, anime_id)["title_ru_generated"] is True  # another field: still generated
    with client(world, "moderator") as c:
        listed = c.get("/admin_anime", params={"id": f"eq.{anime_id}", "select": "title_ru_generated"})
    assert listed.json() == [{"title_ru_generated": True}], listed.text
    edited = rpc(world, "moderator", "admin_update_anime", id=anime_id, patch={"title_ru": "Атака титанов"})
    assert edited.status_code == 200, edited.text
    assert edited.json()["anime"]["title_ru_generated"] is False
    assert anime_row(world, anime_id)["title_ru_generated"] is False


def test_lowering_episodes_total_clamps_what_people_watched_and_is_never_refused(world):
    """An editor corrects a title from 24 to 10 episodes: someone who watched 20 now has watched
    all 10 (not "20 / 10", and the edit is not refused); someone at 5 keeps 5; list statuses stay."""
    anime_id = anime(world, "published", video=True, episodes_total=24)
    with owner_connect(world["db"]) as conn:
        far, near = (create_user(conn, f"{who}-{uuid.uuid4().hex[:8]}@example.test")[0] for who in ("far", "near"))
        conn.execute("insert into data.favorites (user_id, anime_id, list_status, episodes_watched) "
                     "values (%s, %s, 'watching', 20), (%s, %s, 'on_hold', 5)", (far, anime_id, near, anime_id))
    edited = rpc(world, "moderator", "admin_update_anime", id=anime_id, patch={"episodes_total": 10})
    assert edited.status_code == 200, edited.text
    with owner_connect(world["db"]) as conn:
        rows = dict(conn.execute("select user_id, (list_status, episodes_watched)::text from data.favorites "
                                 "where anime_id = %s", (anime_id,)))
        assert rows == {far: "(watching,10)", near: "(on_hold,5)"}
        # a raise does not bring the old count back; unknown (null) clamps nothing
        conn.execute("update data.anime set episodes_total = null where id = %s", (anime_id,))
        conn.execute("update data.anime set episodes_total = 3 where id = %s", (anime_id,))  # known again: 3
        assert sorted(w for (w,) in conn.execute(
            "select episodes_watched from data.favorites where anime_id = %s", (anime_id,))) == [3, 3]
