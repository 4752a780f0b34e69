"""Rate limits live in Postgres: shared by every worker process and replica, decided atomically,
surviving restarts, purged when old."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from database import build as db
from ops import services
from tests.auth_service.conftest import Api, new_email, new_ip
from tests.conftest import owner_connect

PASSWORD = "correct horse battery"


def worker_of(response: httpx.Response) -> str:
    return response.headers["x-auth-worker"]


def test_five_failures_over_three_workers_then_429_on_every_worker_and_after_a_restart(
    api: Api, auth_db: str, start_auth: Callable[..., services.Service]
):
    email = new_email()
    api.register(email, PASSWORD)
    ip = new_ip()
    failures = [api.login(email, "wrong password", ip=ip) for _ in range(5)]
    assert [r.status_code for r in failures] == [401] * 5
    workers = {worker_of(r) for r in failures}

    # the sixth attempt, right password included, is refused by whichever worker answers
    seen: set[str] = set()
    for attempt in range(150):
        password = PASSWORD if attempt % 2 else "wrong password"
        response = api.login(email, password, ip=ip)
        assert response.status_code == 429, response.text
        assert response.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(response.headers["retry-after"]) <= 60
        seen.add(worker_of(response))
        if len(seen) == 3 and attempt >= 5:
            break
    assert len(seen) == 3, f"only workers {seen} answered"
    assert len(workers | seen) == 3

    # a fresh auth_service (another replica, after a restart) sees the same count
    replica = start_auth(auth_db, workers=2)
    try:
        response = Api(replica.url).login(email, PASSWORD, ip=ip)
        assert response.status_code == 429
    finally:
        replica.stop()
    # another address may still sign in: the (ip, email) key is the one throttled
    assert api.login(email, PASSWORD, ip=new_ip()).status_code == 200


def test_per_email_limit_spans_addresses(api: Api):
    email = new_email()
    api.register(email, PASSWORD)
    statuses = [api.login(email, "wrong password", ip=new_ip()).status_code for _ in range(20)]
    assert statuses == [401] * 20
    response = api.login(email, PASSWORD, ip=new_ip())
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) > 60  # the hour-long window


def test_unknown_emails_are_throttled_like_known_ones(api: Api):
    ip, email = new_ip(), new_email()
    statuses = [api.login(email, "whatever pw", ip=ip).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]


def test_a_success_clears_the_failures_of_its_address(api: Api):
    email, ip = new_email(), new_ip()
    api.register(email, PASSWORD)
    for _ in range(4):
        assert api.login(email, "wrong password", ip=ip).status_code == 401
    assert api.login(email, PASSWORD, ip=ip).status_code == 200
    statuses = [api.login(email, "wrong password", ip=ip).status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]


def test_concurrent_failures_are_counted_exactly(api: Api):
    """The decision is atomic: 30 simultaneous wrong passwords on one key, 5 are checked."""
    email, ip = new_email(), new_ip()
    api.register(email, PASSWORD)

    async def flood() -> list[int]:
        async with httpx.AsyncClient(base_url=api.url, timeout=60) as client:
            responses = await asyncio.gather(
                *(
                    client.post(
                        "/auth/login",
                        json={"email": email, "password": "wrong password"},
                        headers={"X-Forwarded-For": ip},
                    )
                    for _ in range(30)
                )
            )
        return sorted(r.status_code for r in responses)

    assert asyncio.run(flood()) == [401] * 5 + [429] * 25


def test_refreshes_are_limited_per_address(api: Api):
    ip = new_ip()
    statuses = [
        api.post("/auth/refresh", {"refresh_token": f"bogus-{i}"}, ip=ip).status_code
        for i in range(61)
    ]
    assert statuses == [401] * 60 + [429]
    assert api.post("/auth/refresh", {"refresh_token": "bogus"}, ip=new_ip()).status_code == 401


def test_registrations_are_limited_per_address(api: Api):
    ip = new_ip()
    statuses = [
        api.post("/auth/register", {"email": new_email(), "password": PASSWORD}, ip=ip).status_code
        for _ in range(21)
    ]
    assert statuses == [201] * 20 + [429]


def _plant(dbname: str, bucket: str, subject: str, ages: list[int]) -> None:
    now = datetime.now(UTC)
    hits = [now - timedelta(seconds=age) for age in sorted(ages, reverse=True)]
    with owner_connect(dbname) as conn:
        conn.execute(
            "insert into data.rate_limits (bucket, subject, hits, expires_at)"
            " values (%s, %s, %s, %s)"
            " on conflict (bucket, subject) do update set hits = excluded.hits,"
            " expires_at = excluded.expires_at",
            (bucket, subject, hits, now + timedelta(hours=1)),
        )


def test_planted_failures_throttle_and_expired_ones_do_not(api: Api, auth_db: str):
    """The guard must bite: five recent failures written straight into the table refuse even
    the right password; the same five, older than the window, are ignored."""
    email, ip = new_email(), new_ip()
    api.register(email, PASSWORD)
    _plant(auth_db, "login_ip_email", f"{ip} {email}", [50, 40, 30, 20, 10])
    refused = api.login(email, PASSWORD, ip=ip)
    assert refused.status_code == 429
    assert 5 <= int(refused.headers["retry-after"]) <= 11  # the 50 s old hit leaves in ~10 s
    _plant(auth_db, "login_ip_email", f"{ip} {email}", [120, 110, 100, 90, 61])
    assert api.login(email, PASSWORD, ip=ip).status_code == 200


def test_the_database_refuses_malformed_counters(auth_db: str):
    with owner_connect(auth_db) as conn:
        with pytest.raises(psycopg.errors.CheckViolation):
            conn.execute("insert into data.rate_limits (bucket, subject) values ('bogus', 'x')")
        conn.rollback()
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            conn.execute(
                "select auth.take_slots(array['login_email'], array['x'], array[0],"
                " array[interval '1 minute'])"
            )


def test_x_forwarded_for_counts_only_from_trusted_proxies(api: Api, auth_db: str):
    """127.0.0.1 is trusted in these tests; a request from 127.0.0.2 is not a proxy, so its
    X-Forwarded-For is ignored and the session records the peer address."""
    email = new_email()
    api.register(email, PASSWORD)
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(transport=transport, base_url=api.url, timeout=30) as client:
        direct = client.post(
            "/auth/login",
            json={"email": email, "password": PASSWORD},
            headers={"X-Forwarded-For": "192.0.2.44"},
        )
    proxied = api.login(email, PASSWORD, ip="192.0.2.45, 192.0.2.46")
    assert direct.status_code == proxied.status_code == 200
    with owner_connect(auth_db) as conn:
        ips = conn.execute(
            "select host(s.ip) from data.sessions s join data.users u on"
            " u.id = s.user_id where u.email = %s order by s.created_at offset 1",
            (email,),
        ).fetchall()
    assert ips == [("127.0.0.2",), ("192.0.2.46",)]


def test_purge_deletes_only_what_no_longer_counts(api: Api, auth_db: str):
    pair = api.register()
    api.post("/auth/logout", {}, token=pair["access_token"])
    _plant(auth_db, "refresh_ip", "192.0.2.200", [10])
    with owner_connect(auth_db) as conn:
        conn.execute(
            "insert into data.rate_limits (bucket, subject, hits, expires_at)"
            " values ('refresh_ip', '192.0.2.201', '{}', now() - interval '1 second')"
        )
    with psycopg.connect(db.role_url(auth_db, "auth_service"), autocommit=True) as conn:
        purged = conn.execute("select * from auth.purge(interval '30 days')").fetchone()
    assert purged[0] >= 1 and purged[1] >= 1
    with owner_connect(auth_db) as conn:
        left = conn.execute(
            "select subject from data.rate_limits where subject like '192.0.2.20%' order by 1"
        ).fetchall()
    assert left == [("192.0.2.200",)]


def test_auth_service_role_can_only_call_its_functions(auth_db: str):
    with psycopg.connect(db.role_url(auth_db, "auth_service"), autocommit=True) as conn:
        for statement in (
            "select * from data.users",
            "select * from data.rate_limits",
            "select * from api.anime",
            "select auth.take_slots(array['login_email'], array['x'], array[1],"
            " array[interval '1 minute'])",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        granted = conn.execute(
            "select count(*) from information_schema.routine_privileges"
            " where grantee = 'auth_service' and routine_schema <> 'auth'"
        ).fetchone()
    assert granted == (0,)


def test_one_address_cycling_through_emails_is_refused_before_hashing(api: Api, auth_db: str):
    """30 failed sign-ins per address in 10 minutes (AUTH_LOGIN_IP_LIMIT): the 31st is 429 for
    any email, a real account with its right password included, and costs no hash."""
    email = new_email()
    api.register(email, PASSWORD)
    ip = new_ip()
    failures = [api.login(new_email(), "sprayed password", ip=ip) for _ in range(30)]
    assert [r.status_code for r in failures] == [401] * 30
    with owner_connect(auth_db) as conn:
        hits = conn.execute("select cardinality(hits) from data.rate_limits"
                            " where bucket = 'login_ip' and subject = %s", [ip]).fetchone()
    assert hits == (30,)
    for candidate, password in [(new_email(), "sprayed password"), (email, PASSWORD)]:
        response = api.login(candidate, password, ip=ip)
        assert response.status_code == 429, response.text
        assert response.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(response.headers["retry-after"]) <= 600
    # refused attempts are not recorded, and another address is unaffected
    assert api.login(email, PASSWORD, ip=new_ip()).status_code == 200


def test_ipv6_addresses_share_the_limit_of_their_64(api: Api, auth_db: str):
    prefix = f"2001:db8:{random_hex()}:{random_hex()}"
    for host in range(30):
        response = api.login(new_email(), "wrong password", ip=f"{prefix}::{host + 1:x}")
        assert response.status_code == 401, response.text
    assert api.login(new_email(), "wrong password", ip=f"{prefix}:ffff::1").status_code == 429
    other_64 = f"2001:db8:{random_hex()}:{random_hex()}::1"
    assert api.login(new_email(), "wrong password", ip=other_64).status_code == 401
    with owner_connect(auth_db) as conn:
        subject = conn.execute("select subject from data.rate_limits where bucket = 'login_ip'"
                               " and subject like %s", [f"{prefix}%"]).fetchone()
    assert subject == (f"{prefix}::/64",)


def test_a_successful_sign_in_gives_the_address_slot_back(api: Api, auth_db: str):
    email = new_email()
    api.register(email, PASSWORD)
    ip = new_ip()
    assert api.login(new_email(), "wrong password", ip=ip).status_code == 401
    assert api.login(email, PASSWORD, ip=ip).status_code == 200
    with owner_connect(auth_db) as conn:
        hits = conn.execute("select cardinality(hits) from data.rate_limits"
                            " where bucket = 'login_ip' and subject = %s", [ip]).fetchone()
    assert hits == (1,)


def random_hex() -> str:
    return f"{uuid.uuid4().int % 0xFFFF:x}"
