"""Register, sign in, refresh with rotation and reuse detection, logout scopes, password change,
and the api.sessions resource — through auth_service and PostgREST over HTTP."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from tests.auth_service.conftest import Api, claims, new_email, new_ip
from tests.conftest import owner_connect

ME = {"Accept": "application/vnd.pgrst.object+json"}


def me(rest: Api, pair: dict[str, Any]):
    return rest.get("/me", token=pair["access_token"], headers=ME)


def test_token_pair_has_the_contract_shape_and_claims(api: Api):
    email = new_email()
    pair = api.register(email.upper())
    assert set(pair) == {"access_token", "token_type", "expires_in", "refresh_token", "user"}
    assert pair["token_type"] == "bearer" and pair["expires_in"] == 900
    assert pair["user"]["email"] == email  # normalised
    assert len(pair["refresh_token"]) >= 43  # 256 bits, url-safe base64
    token = claims(pair["access_token"])
    assert token["role"] == "web_user" and token["aud"] == "kitsu" and token["iss"] == "kitsu-auth"
    assert (
        token["sub"] == pair["user"]["id"] and token["exp"] - token["iat"] == 900 and token["sid"]
    )


def test_register_login_and_the_token_works_at_postgrest(api: Api, rest: Api):
    email = new_email()
    api.register(email, "correct horse battery")
    response = api.login(
        email.title(), "correct horse battery"
    )  # emails compare case-insensitively
    assert response.status_code == 200, response.text
    pair = response.json()
    profile = me(rest, pair)
    assert profile.status_code == 200, profile.text
    assert profile.json()["email"] == email


def test_registering_a_taken_email_is_409_whatever_its_case(api: Api):
    email = new_email()
    api.register(email)
    response = api.post(
        "/auth/register", {"email": f"  {email.upper()} ", "password": "x" * 12}, ip=new_ip()
    )
    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "email_taken",
            "message": response.json()["error"]["message"],
            "details": None,
        }
    }


def test_invalid_registrations_are_422_without_echoing_the_password(api: Api):
    for body in (
        {"email": "not-an-email", "password": "long enough pw"},
        {"email": new_email(), "password": "short"},
        {"email": new_email(), "password": "p" * 1025},
        {"email": new_email()},
        {"password": "long enough pw"},
        [1, 2],
    ):
        response = api.post("/auth/register", body, ip=new_ip())
        assert response.status_code == 422, (body, response.text)
        assert response.json()["error"]["code"] == "invalid_request"
        assert "long enough pw" not in response.text and "short" not in response.text
    assert (
        api.post(
            "/auth/register", {"email": new_email(), "password": "p" * 1024}, ip=new_ip()
        ).status_code
        == 201
    )


def test_refresh_rotates_and_reuse_revokes_the_session_at_postgrest(api: Api, rest: Api):
    pair = api.register()
    first = pair["refresh_token"]
    refreshed = api.post("/auth/refresh", {"refresh_token": first}, ip=new_ip())
    assert refreshed.status_code == 200, refreshed.text
    second = refreshed.json()
    assert second["refresh_token"] != first
    assert claims(second["access_token"])["sid"] == claims(pair["access_token"])["sid"]
    assert me(rest, second).status_code == 200

    third = api.post("/auth/refresh", {"refresh_token": second["refresh_token"]}, ip=new_ip())
    assert third.status_code == 200
    # `first` is now two rotations old: no grace, the whole session is revoked
    reuse = api.post("/auth/refresh", {"refresh_token": first}, ip=new_ip())
    assert reuse.status_code == 401
    assert reuse.json()["error"]["code"] == "invalid_refresh_token"
    # every token of the session dies: the access tokens at PostgREST, the current refresh token
    refused = me(rest, third.json())
    assert refused.status_code == 401 and refused.json()["code"] == "session_expired"
    assert me(rest, pair).status_code == 401
    assert (
        api.post(
            "/auth/refresh", {"refresh_token": third.json()["refresh_token"]}, ip=new_ip()
        ).status_code
        == 401
    )


def test_the_token_just_rotated_away_gets_a_fresh_pair_within_the_grace_window(api: Api, rest: Api):
    pair = api.register()
    old = pair["refresh_token"]
    tab_one = api.post("/auth/refresh", {"refresh_token": old}, ip=new_ip()).json()
    tab_two = api.post("/auth/refresh", {"refresh_token": old}, ip=new_ip())
    assert tab_two.status_code == 200, tab_two.text
    tab_two = tab_two.json()
    assert claims(tab_two["access_token"])["sid"] == claims(pair["access_token"])["sid"]
    assert tab_two["refresh_token"] not in (old, tab_one["refresh_token"])
    # the fresh pair superseded the current one; the session lives on with the newest token
    assert me(rest, tab_two).status_code == 200
    assert (
        api.post(
            "/auth/refresh", {"refresh_token": tab_two["refresh_token"]}, ip=new_ip()
        ).status_code
        == 200
    )


def test_the_token_just_rotated_away_revokes_the_session_after_the_grace_window(
    api: Api, rest: Api, auth_db: str
):
    pair = api.register()
    sid = claims(pair["access_token"])["sid"]
    newer = api.post("/auth/refresh", {"refresh_token": pair["refresh_token"]}, ip=new_ip()).json()
    with owner_connect(auth_db) as conn:  # let the grace window (10 s) pass
        conn.execute(
            "update data.refresh_tokens set created_at = created_at - interval '1 minute',"
            " rotated_at = rotated_at - interval '30 seconds' where session_id = %s",
            (sid,),
        )
    late = api.post("/auth/refresh", {"refresh_token": pair["refresh_token"]}, ip=new_ip())
    assert late.status_code == 401
    assert me(rest, newer).status_code == 401
    with owner_connect(auth_db) as conn:
        reason = conn.execute(
            "select revoked_reason from data.sessions where id = %s", (sid,)
        ).fetchone()
    assert reason == ("refresh_token_reused",)


def test_unknown_and_malformed_refresh_tokens_are_401(api: Api):
    for token in ("nope", "x" * 43):
        response = api.post("/auth/refresh", {"refresh_token": token}, ip=new_ip())
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_refresh_token"


def _sessions(api: Api, email: str, password: str, count: int) -> list[dict[str, Any]]:
    return [api.login(email, password, user_agent=f"device-{i}").json() for i in range(count)]


def test_logout_local_ends_only_the_bearer_session(api: Api, rest: Api):
    email = new_email()
    api.register(email, "correct horse battery")
    one, two = _sessions(api, email, "correct horse battery", 2)
    assert api.post("/auth/logout", {}, token=one["access_token"]).status_code == 204
    assert me(rest, one).status_code == 401
    assert me(rest, two).status_code == 200
    assert (
        api.post("/auth/refresh", {"refresh_token": one["refresh_token"]}, ip=new_ip()).status_code
        == 401
    )
    # idempotent
    assert api.post("/auth/logout", {}, token=one["access_token"]).status_code == 204


def test_logout_others_and_global(api: Api, rest: Api):
    email = new_email()
    api.register(email, "correct horse battery")
    one, two, three = _sessions(api, email, "correct horse battery", 3)
    response = api.post("/auth/logout", {"scope": "others"}, token=two["access_token"])
    assert response.status_code == 204
    assert [me(rest, s).status_code for s in (one, two, three)] == [401, 200, 401]
    four = api.login(email, "correct horse battery").json()
    assert (
        api.post("/auth/logout", {"scope": "global"}, token=four["access_token"]).status_code == 204
    )
    assert [me(rest, s).status_code for s in (two, four)] == [401, 401]


def test_logout_with_only_the_refresh_token(api: Api, rest: Api):
    email = new_email()
    api.register(email, "correct horse battery")
    one, two = _sessions(api, email, "correct horse battery", 2)
    assert api.post("/auth/logout", {"refresh_token": one["refresh_token"]}).status_code == 204
    assert [me(rest, s).status_code for s in (one, two)] == [401, 200]


def test_logout_answers_204_whatever_it_is_given(api: Api):
    for body, token in (
        ({}, None),
        ({"refresh_token": "garbage"}, None),
        ({}, "not.a.jwt"),
        ({"scope": "global", "refresh_token": "x"}, "x.y.z"),
    ):
        assert api.post("/auth/logout", body, token=token).status_code == 204
    assert api.post("/auth/logout").status_code == 204  # no body at all


def test_password_change_revokes_the_other_sessions(api: Api, rest: Api):
    email = new_email()
    api.register(email, "correct horse battery")
    one, two = _sessions(api, email, "correct horse battery", 2)
    wrong = api.post(
        "/auth/password",
        {"current_password": "nope nope", "new_password": "new password 1"},
        token=one["access_token"],
        ip=new_ip(),
    )
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "invalid_credentials"
    too_short = api.post(
        "/auth/password",
        {"current_password": "correct horse battery", "new_password": "short"},
        token=one["access_token"],
    )
    assert too_short.status_code == 422
    changed = api.post(
        "/auth/password",
        {"current_password": "correct horse battery", "new_password": "new password 1"},
        token=one["access_token"],
    )
    assert changed.status_code == 204, changed.text
    assert [me(rest, s).status_code for s in (one, two)] == [200, 401]
    assert api.login(email, "correct horse battery").status_code == 401
    assert api.login(email, "new password 1").status_code == 200


def test_password_change_needs_a_valid_bearer_of_a_live_session(api: Api):
    email = new_email()
    pair = api.register(email, "correct horse battery")
    body = {"current_password": "correct horse battery", "new_password": "new password 1"}
    missing = api.post("/auth/password", body)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "invalid_token"
    assert missing.headers["www-authenticate"].startswith("Bearer")
    assert api.post("/auth/password", body, token="a.b.c").status_code == 401
    api.post("/auth/logout", {}, token=pair["access_token"])
    assert api.post("/auth/password", body, token=pair["access_token"]).status_code == 401
    assert api.login(email, "correct horse battery").status_code == 200  # unchanged


def test_sessions_resource_lists_and_revokes_the_callers_devices(api: Api, rest: Api):
    email = new_email()
    api.register(email, "correct horse battery", ip="198.51.100.7")
    laptop = api.login(
        email, "correct horse battery", ip="198.51.100.8", user_agent="laptop"
    ).json()
    phone = api.login(email, "correct horse battery", ip="198.51.100.9", user_agent="phone").json()
    someone_else = api.register()

    listed = rest.get("/sessions?order=created_at", token=laptop["access_token"])
    assert listed.status_code == 200, listed.text
    rows = listed.json()
    assert [(r["user_agent"], r["ip"], r["current"]) for r in rows] == [
        ("python-httpx/0.28.1", "198.51.100.7", False),
        ("laptop", "198.51.100.8", True),
        ("phone", "198.51.100.9", False),
    ]
    assert claims(someone_else["access_token"])["sid"] not in {r["id"] for r in rows}

    phone_sid = claims(phone["access_token"])["sid"]
    revoked = rest.request("DELETE", f"/sessions?id=eq.{phone_sid}", token=laptop["access_token"])
    assert revoked.status_code == 204
    assert me(rest, phone).status_code == 401
    assert (
        api.post(
            "/auth/refresh", {"refresh_token": phone["refresh_token"]}, ip=new_ip()
        ).status_code
        == 401
    )
    assert phone_sid not in {
        r["id"] for r in rest.get("/sessions", token=laptop["access_token"]).json()
    }
    # someone else's session cannot be revoked (RLS): still alive
    other_sid = claims(someone_else["access_token"])["sid"]
    rest.request("DELETE", f"/sessions?id=eq.{other_sid}", token=laptop["access_token"])
    assert me(rest, someone_else).status_code == 200


def test_refresh_updates_last_used_and_ip_but_keeps_the_session(api: Api, auth_db: str):
    pair = api.register(ip="203.0.113.1")
    sid = claims(pair["access_token"])["sid"]
    api.post("/auth/refresh", {"refresh_token": pair["refresh_token"]}, ip="203.0.113.2")
    with owner_connect(auth_db) as conn:
        row = conn.execute(
            "select host(ip), last_used_at > created_at, revoked_at from data.sessions"
            " where id = %s",
            (sid,),
        ).fetchone()
        stored = conn.execute(
            "select count(*), count(*) filter (where rotated_at is null)"
            " from data.refresh_tokens where session_id = %s",
            (sid,),
        ).fetchone()
    assert row == ("203.0.113.2", True, None)
    assert stored == (2, 1)


def test_the_database_allows_one_current_refresh_token_per_session(api: Api, auth_db: str):
    """The invariant the rotation relies on, planted directly: a second current token fails."""
    pair = api.register()
    sid = claims(pair["access_token"])["sid"]
    with owner_connect(auth_db) as conn, pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "insert into data.refresh_tokens (session_id, token_hash) values (%s, %s)", (sid, b"\x01" * 32)
        )
    with owner_connect(auth_db) as conn, pytest.raises(psycopg.errors.CheckViolation):
        conn.execute(
            "insert into data.refresh_tokens (session_id, token_hash, rotated_at) values (%s, %s, now())",
            (sid, b"\x02" * 31),
        )
