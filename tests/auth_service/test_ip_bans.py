"""IP bans (issue 13) through real auth_service and PostgREST processes: a super_admin bans an
address or a network through rpc/admin_ban_ip, and the banned address's very next request is
refused — sign-in, registration and refresh at auth_service (403 ip_banned, nothing written) and
every PostgREST request, signed in or anonymous (db-pre-request, 403 ip_banned) — with the client
address as the gateway would pass it (right-most X-Forwarded-For). Other addresses are untouched;
lifting the ban, or its expiry, ends it; bans are listed and audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tests.auth_service.conftest import Api, new_email, new_ip
from tests.conftest import owner_connect
from tests.helpers import create_user

ADMIN_IP = "192.0.2.1"


@pytest.fixture(scope="module")
def banner(auth_db, mint) -> str:
    """A super_admin's access token (calling from ADMIN_IP)."""
    with owner_connect(auth_db) as conn:
        user_id, session_id = create_user(conn, "banner@bans.test")
        conn.execute("insert into data.user_roles (user_id, role) values (%s, 'super_admin')", (user_id,))
    return mint(user_id, session_id)


def ban(rest: Api, token: str, network: str, **body: object):
    return rest.post("/rpc/admin_ban_ip", {"network": network, "reason": "abuse", **body}, token=token, ip=ADMIN_IP)


def outcomes(api: Api, rest: Api, ip: str, pair: dict) -> dict[str, int]:
    """What each kind of request from `ip` answers (the pair was issued before)."""
    return {
        "login": api.login(pair["user"]["email"], "correct horse battery", ip=ip).status_code,
        "register": api.post("/auth/register", {"email": new_email(), "password": "correct horse battery"},
                             ip=ip).status_code,
        "refresh": api.post("/auth/refresh", {"refresh_token": pair["refresh_token"]}, ip=ip).status_code,
        "rest_signed_in": rest.get("/favorites", token=pair["access_token"], ip=ip).status_code,
        "rest_anonymous": rest.get("/anime?limit=1", ip=ip).status_code,
    }


def test_a_ban_refuses_the_banned_address_on_its_next_request_everywhere(api: Api, rest: Api, banner, auth_db):
    banned, other = new_ip(), new_ip()
    pair = api.register(ip=banned)
    assert rest.get("/favorites", token=pair["access_token"], ip=banned).status_code == 200

    created = ban(rest, banner, banned, reason="credential stuffing")
    assert created.status_code == 200, created.text
    ban_id = created.json()["ban"]["id"]
    with owner_connect(auth_db) as conn:
        users_before = conn.execute("select count(*) from data.users").fetchone()[0]

    login = api.login(pair["user"]["email"], "correct horse battery", ip=banned)
    assert login.status_code == 403 and login.json()["error"]["code"] == "ip_banned"
    refused = rest.get("/favorites", token=pair["access_token"], ip=banned)
    assert refused.status_code == 403 and refused.json()["code"] == "ip_banned"
    assert set(outcomes(api, rest, banned, pair).values()) == {403}
    with owner_connect(auth_db) as conn:  # refusals write nothing: no account, no session rotated
        assert conn.execute("select count(*) from data.users").fetchone()[0] == users_before
    # the same person from another address is fine, and the refresh token was not consumed
    assert api.login(pair["user"]["email"], "correct horse battery", ip=other).status_code == 200
    assert api.post("/auth/refresh", {"refresh_token": pair["refresh_token"]}, ip=other).status_code == 200

    lifted = rest.post("/rpc/admin_unban_ip", {"id": ban_id, "reason": "false positive"}, token=banner, ip=ADMIN_IP)
    assert lifted.status_code == 200 and lifted.json()["ban"]["active"] is False
    assert api.login(pair["user"]["email"], "correct horse battery", ip=banned).status_code == 200
    assert rest.get("/anime?limit=1", ip=banned).status_code == 200

    with owner_connect(auth_db) as conn:
        actions = [r[0] for r in conn.execute(
            "select action from data.audit_log where entity_type = 'ip_ban' and entity_id = %s order by id",
            (str(ban_id),))]
    assert actions == ["security.ip_ban", "security.ip_unban"]


def test_a_network_ban_covers_every_address_in_it_and_the_gateways_address_is_what_counts(api: Api, rest: Api, banner):
    first, second, third, _ = new_ip().split(".")
    network = f"{first}.{second}.{third}.0/24"
    inside, outside = f"{first}.{second}.{third}.77", f"{first}.{second}.{(int(third) + 1) % 256}.77"
    pair = api.register(ip=outside)
    assert ban(rest, banner, network).status_code == 200
    assert rest.get("/anime?limit=1", ip=inside).status_code == 403
    assert rest.get("/anime?limit=1", ip=outside).status_code == 200
    # what the client wrote to the left of the gateway's entry does not count
    assert rest.get("/anime?limit=1", ip=f"{outside}, {inside}").status_code == 403
    assert rest.get("/anime?limit=1", ip=f"{inside}, {outside}").status_code == 200
    assert api.login(pair["user"]["email"], "correct horse battery", ip=inside).status_code == 403
    listed = rest.get("/admin_ip_bans", params={"network": f"eq.{network}"}, token=banner, ip=ADMIN_IP).json()
    assert [(b["network"], b["active"], b["reason"]) for b in listed] == [(network, True, "abuse")]


def test_an_expired_ban_refuses_nothing_and_invalid_bans_are_refused_with_their_own_codes(api: Api, rest: Api,
                                                                                         banner, auth_db):
    address = new_ip()
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert ban(rest, banner, address, expires_at=soon).status_code == 200
    assert rest.get("/anime?limit=1", ip=address).status_code == 403
    with owner_connect(auth_db) as conn:  # time passes
        conn.execute("update data.ip_bans set expires_at = now() - interval '1 second' where network = %s", (address,))
    assert rest.get("/anime?limit=1", ip=address).status_code == 200

    def code(response):
        return response.status_code, response.json()["code"]

    assert code(ban(rest, banner, "not-an-address")) == (400, "invalid_network")
    assert code(ban(rest, banner, "10.1.2.3/8")) == (400, "invalid_network")  # host bits set
    assert code(ban(rest, banner, new_ip(), reason=" ")) == (400, "reason_required")
    assert code(ban(rest, banner, new_ip(), expires_at="2000-01-01T00:00:00Z")) == (400, "invalid_expiry")
    assert code(ban(rest, banner, "192.0.2.0/24")) == (409, "ban_includes_caller")
    with owner_connect(auth_db) as conn:
        assert conn.execute("select count(*) from data.ip_bans where network <<= '192.0.2.0/24' "
                            "or network = '10.1.2.3/32'").fetchone()[0] == 0
