"""Auth events in the audit log (issue 11): each one written by its auth.* function in the
transaction of the change, with address, user agent and session, readable with audit.view
through PostgREST (/admin_audit_log), and never holding a secret."""

from __future__ import annotations

from typing import Any

import pytest

from tests.auth_service.conftest import Api, claims, new_email, new_ip
from tests.conftest import owner_connect

PASSWORD = "correct horse battery"
AGENT = "events-test/1.0"
SECRETS: list[str] = []  # every password and token these tests used: none may reach a row


@pytest.fixture(scope="module")
def auditor(api: Api, auth_db: str) -> str:
    """An access token of a person holding `support` (which grants audit.view)."""
    email = new_email()
    pair = api.register(email, PASSWORD)
    with owner_connect(auth_db) as conn:
        conn.execute("insert into data.user_roles (user_id, role) values (%s, 'support')", (pair["user"]["id"],))
    return pair["access_token"]


def events(rest: Api, auditor: str, user_id: str, action: str) -> list[dict[str, Any]]:
    response = rest.get(f"/admin_audit_log?entity_id=eq.{user_id}&action=eq.{action}&order=id", token=auditor)
    assert response.status_code == 200, response.text
    return response.json()


def account(api: Api) -> tuple[str, dict[str, Any]]:
    email = new_email()
    pair = api.register(email, PASSWORD)
    SECRETS.extend([pair["access_token"], pair["refresh_token"]])
    return email, pair


def sign_in(api: Api, email: str, ip: str, password: str = PASSWORD) -> Any:
    response = api.login(email, password, ip=ip, user_agent=AGENT)
    if response.status_code == 200:
        SECRETS.extend([response.json()["access_token"], response.json()["refresh_token"]])
    return response


def test_sign_in_succeeded_failed_and_throttled(api: Api, rest: Api, auditor: str, auth_db: str):
    email, pair = account(api)
    user_id, ip = pair["user"]["id"], new_ip()
    signed_in = sign_in(api, email, ip)
    [event] = events(rest, auditor, user_id, "auth.sign_in")
    assert event["actor_id"] == user_id and event["actor_type"] == "user"
    assert event["session_id"] == claims(signed_in.json()["access_token"])["sid"]
    assert event["ip"] == ip and event["user_agent"] == AGENT

    for _ in range(5):  # AUTH_LOGIN_IP_EMAIL_LIMIT: the default 5 per minute
        assert sign_in(api, email, ip, "wrong password").status_code == 401
    failed = events(rest, auditor, user_id, "auth.sign_in_failed")
    assert len(failed) == 5
    who = {(e["actor_type"], e["actor_id"], e["ip"], e["user_agent"]) for e in failed}
    assert who == {("anonymous", None, ip, AGENT)}
    assert failed[0]["after"] == {"email": email}

    for _ in range(3):
        assert sign_in(api, email, ip, "wrong password").status_code == 429
    [throttled] = events(rest, auditor, user_id, "auth.sign_in_throttled")
    assert throttled["count"] == 3 and throttled["ip"] == ip  # one row per address, email and minute

    unknown = new_email()
    assert sign_in(api, unknown, new_ip(), "whatever pw").status_code == 401
    with owner_connect(auth_db) as conn:
        row = conn.execute("select actor_type, entity_id, after from data.audit_log"
                           " where action = 'auth.sign_in_failed' and after ->> 'email' = %s", (unknown,)).fetchone()
    assert row == ("anonymous", None, {"email": unknown})


def test_refresh_reuse_that_revokes_a_session(api: Api, rest: Api, auditor: str):
    _, pair = account(api)
    token = pair["refresh_token"]
    for _ in range(2):  # the first token is now older than the current one's parent: past any grace
        rotated = api.post("/auth/refresh", {"refresh_token": token}, ip=new_ip())
        assert rotated.status_code == 200
        token = rotated.json()["refresh_token"]
        SECRETS.extend([rotated.json()["access_token"], token])
    ip = new_ip()
    reused = api.post("/auth/refresh", {"refresh_token": pair["refresh_token"]}, ip=ip, headers={"User-Agent": AGENT})
    assert reused.status_code == 401
    [event] = events(rest, auditor, pair["user"]["id"], "auth.refresh_token_reused")
    assert event["session_id"] == claims(pair["access_token"])["sid"]
    assert (event["ip"], event["user_agent"], event["actor_type"]) == (ip, AGENT, "anonymous")


def test_logout_of_others_and_of_all(api: Api, rest: Api, auditor: str):
    email, pair = account(api)
    ip = new_ip()
    second = sign_in(api, email, ip).json()
    sign_in(api, email, ip)
    headers = {"User-Agent": AGENT}
    assert api.post("/auth/logout", {"scope": "others"}, token=second["access_token"], ip=ip,
                    headers=headers).status_code == 204
    [others] = events(rest, auditor, pair["user"]["id"], "auth.logout_others")
    assert others["session_id"] == claims(second["access_token"])["sid"]
    assert others["after"] == {"sessions_revoked": 2} and others["ip"] == ip and others["user_agent"] == AGENT
    assert api.post("/auth/logout", {"scope": "global"}, token=second["access_token"], ip=ip).status_code == 204
    [every] = events(rest, auditor, pair["user"]["id"], "auth.logout_all")
    assert every["after"] == {"sessions_revoked": 1}
    assert api.post("/auth/logout", {"scope": "local"}, token=pair["access_token"]).status_code == 204
    assert events(rest, auditor, pair["user"]["id"], "auth.logout_local") == []  # not an event


def test_password_changed(api: Api, rest: Api, auditor: str):
    _, pair = account(api)
    ip = new_ip()
    response = api.post("/auth/password", {"current_password": PASSWORD, "new_password": "another password"},
                        token=pair["access_token"], ip=ip, headers={"User-Agent": AGENT})
    assert response.status_code == 204, response.text
    SECRETS.append("another password")
    [event] = events(rest, auditor, pair["user"]["id"], "auth.password_changed")
    assert event["session_id"] == claims(pair["access_token"])["sid"] and event["ip"] == ip
    assert event["after"] == {"sessions_revoked": 0}


def _mailed_token(auth_db: str, email: str, kind: str) -> str:
    # no worker runs in this module: the undelivered outbox row still holds the link's token
    with owner_connect(auth_db) as conn:
        (token,) = conn.execute("select token from data.mail_outbox where recipient = %s and kind = %s"
                                " order by id desc limit 1", (email, kind)).fetchone()
    SECRETS.append(token)
    return token


def test_password_reset_and_email_verified(api: Api, rest: Api, auditor: str, auth_db: str):
    email, pair = account(api)
    ip = new_ip()
    token = _mailed_token(auth_db, email, "email_verification")
    assert api.post("/auth/email/verify", {"token": token}, ip=ip, headers={"User-Agent": AGENT}).status_code == 204
    [verified] = events(rest, auditor, pair["user"]["id"], "auth.email_verified")
    assert (verified["actor_id"], verified["ip"], verified["user_agent"]) == (pair["user"]["id"], ip, AGENT)

    assert api.post("/auth/password/forgot", {"email": email}, ip=ip).status_code == 202
    token = _mailed_token(auth_db, email, "password_reset")
    response = api.post("/auth/password/reset", {"token": token, "new_password": "reset password"}, ip=ip,
                        headers={"User-Agent": AGENT})
    assert response.status_code == 204
    SECRETS.append("reset password")
    [reset] = events(rest, auditor, pair["user"]["id"], "auth.password_reset")
    assert reset["after"] == {"sessions_revoked": 1} and reset["ip"] == ip and reset["user_agent"] == AGENT


@pytest.mark.processes  # reads what the process tests above wrote: `make test-fast` skips it with them
def test_no_secret_is_ever_stored_in_an_audit_row(auth_db: str):
    """Runs after the tests above: every password and token they used, against every row."""
    assert len(SECRETS) > 10
    with owner_connect(auth_db) as conn:
        rows = [text for (text,) in conn.execute("select l::text from data.audit_log l").fetchall()]
        hashes = [h for (h,) in conn.execute("select password_hash from data.users").fetchall()]
    assert len(rows) > 10
    for secret in [PASSWORD, *SECRETS, *hashes]:
        assert not any(secret in row for row in rows)


def test_audit_log_needs_audit_view(api: Api, rest: Api):
    _, pair = account(api)
    assert rest.get("/admin_audit_log", token=pair["access_token"]).status_code == 403
