"""Account enumeration, forged tokens at PostgREST, hashes (legacy and outdated), headers, CORS,
JWKS, health and metrics, and a login flood."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import hmac
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import argon2
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from auth_service import keys, passwords
from ops import services
from tests.auth_service.conftest import CORS_ORIGIN, OWASP_HASHING, Api, claims, new_email, new_ip
from tests.conftest import TEST_KID, owner_connect

PASSWORD = "correct horse battery"


# --- unknown email and wrong password answer alike ------------------------------------------


def test_unknown_email_and_wrong_password_get_the_same_answer(api: Api):
    email = new_email()
    api.register(email, PASSWORD)
    unknown = api.login(new_email(), PASSWORD)
    wrong = api.login(email, "wrong password")
    assert unknown.status_code == wrong.status_code == 401
    assert unknown.content == wrong.content
    assert unknown.json()["error"]["code"] == "invalid_credentials"


@pytest.fixture(scope="module")
def owasp_api(auth_db: str, start_auth: Callable[..., services.Service]) -> Api:
    """auth_service with the production hashing cost, limits out of the way."""
    service = start_auth(
        auth_db,
        workers=2,
        **OWASP_HASHING,
        AUTH_ARGON2_ALLOW_WEAK="false",
        AUTH_LOGIN_IP_EMAIL_LIMIT="10000",
        AUTH_LOGIN_EMAIL_LIMIT="10000",
    )
    return Api(service.url)


def test_unknown_email_and_wrong_password_take_the_same_time(owasp_api: Api):
    """Contract §4: over >= 50 trials the medians differ by less than 10 % of one hash."""
    email = new_email()
    owasp_api.register(email, PASSWORD)
    hasher = argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
    stored = hasher.hash(PASSWORD)
    hash_times = []
    for _ in range(10):
        started = time.perf_counter()
        hasher.verify(stored, PASSWORD)
        hash_times.append(time.perf_counter() - started)
    one_hash = statistics.median(hash_times)

    def round_of_trials(client: httpx.Client, trials: int = 120) -> tuple[float, float]:
        timings: dict[str, list[float]] = {"unknown": [], "wrong": []}
        for trial in range(trials):
            # interleaved, so machine load drifts affect both alike
            kind = ("unknown", "wrong")[trial % 2]
            body = {"email": new_email() if kind == "unknown" else email, "password": "wrong password"}
            started = time.perf_counter()
            response = client.post("/auth/login", json=body, headers={"X-Forwarded-For": new_ip()})
            timings[kind].append(time.perf_counter() - started)
            assert response.status_code == 401
        return statistics.median(timings["unknown"]), statistics.median(timings["wrong"])

    # a systematic difference fails every round; a burst of load from elsewhere may spoil one
    rounds = []
    with httpx.Client(base_url=owasp_api.url, timeout=30) as client:
        for _ in range(3):
            unknown, wrong = round_of_trials(client)
            rounds.append(f"unknown {unknown * 1000:.2f} ms / wrong {wrong * 1000:.2f} ms")
            if abs(unknown - wrong) < 0.1 * one_hash:
                break
        else:
            pytest.fail(f"medians differ by >= 10 % of one hash ({one_hash * 1000:.1f} ms): {rounds}")
    print(f"one hash {one_hash * 1000:.1f} ms; medians {rounds}")


# --- PostgREST refuses forged tokens -------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], payload: dict[str, Any]) -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"


def _hs256(payload: dict[str, Any], secret: bytes) -> str:
    signing_input = _unsigned({"alg": "HS256", "typ": "JWT", "kid": TEST_KID}, payload)
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def _forgeries(good: dict[str, Any], signing_key: str, jwks_json: str) -> dict[str, str]:
    now = int(time.time())
    public_pem = (
        serialization.load_pem_private_key(signing_key.encode(), None)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    es256 = lambda claims, key=signing_key, kid=TEST_KID: jwt.encode(  # noqa: E731
        claims, key, algorithm="ES256", headers={"kid": kid}
    )
    return {
        "alg none": _unsigned({"alg": "none", "typ": "JWT"}, good) + ".",
        "HS256 with the JWKS as secret": _hs256(good, jwks_json.encode()),
        "HS256 with the public PEM as secret": _hs256(good, public_pem),
        "unknown key": es256(good, keys.generate_private_pem(), "other-key"),
        "unknown key claiming our kid": es256(good, keys.generate_private_pem()),
        "expired": es256({**good, "iat": now - 3600, "exp": now - 120}),
        "wrong aud": es256({**good, "aud": "someone-else"}),
        "role authenticator": es256({**good, "role": "authenticator"}),
        "role auth_service": es256({**good, "role": "auth_service"}),
        "role postgres": es256({**good, "role": "postgres"}),
        "role kitsu_owner": es256({**good, "role": "kitsu_owner"}),
    }


def test_postgrest_refuses_forged_tokens(api: Api, rest: Api, signing_key: str, jwks_json: str):
    pair = api.register()
    good = claims(pair["access_token"])
    ok = rest.get("/me", token=pair["access_token"])
    assert ok.status_code == 200 and ok.json()[0]["id"] == good["sub"]
    for name, token in _forgeries(good, signing_key, jwks_json).items():
        for path in ("/me", "/favorites", "/anime"):
            response = rest.get(path, token=token)
            assert response.status_code in (401, 403), (
                name,
                path,
                response.status_code,
                response.text,
            )
            assert good["sub"] not in response.text


def test_auth_service_refuses_the_same_forgeries_as_bearer(
    api: Api, signing_key: str, jwks_json: str
):
    pair = api.register(password=PASSWORD)
    good = claims(pair["access_token"])
    body = {"current_password": PASSWORD, "new_password": "another password"}
    for name, token in _forgeries(good, signing_key, jwks_json).items():
        response = api.post("/auth/password", body, token=token)
        assert response.status_code == 401, (name, response.text)


# --- hashes ------------------------------------------------------------------------------


def test_a_legacy_bcrypt_user_signs_in_and_gets_an_argon2id_hash(api: Api, rest: Api, auth_db: str):
    email = new_email()
    with owner_connect(auth_db) as conn:
        conn.execute(
            "insert into data.users (email, password_hash) values (%s, %s)",
            (email, passwords.legacy_hash("old system password", rounds=4)),
        )
    assert api.login(email, "wrong password").status_code == 401
    response = api.login(email, "old system password")
    assert response.status_code == 200, response.text
    assert rest.get("/me", token=response.json()["access_token"]).status_code == 200
    with owner_connect(auth_db) as conn:
        (stored,) = conn.execute(
            "select password_hash from data.users where email = %s", (email,)
        ).fetchone()
    assert stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")
    assert api.login(email, "old system password").status_code == 200


def test_an_outdated_argon2_hash_is_upgraded_at_sign_in(api: Api, auth_db: str):
    email = new_email()
    outdated = argon2.PasswordHasher(time_cost=1, memory_cost=16, parallelism=2).hash(PASSWORD)
    with owner_connect(auth_db) as conn:
        conn.execute(
            "insert into data.users (email, password_hash) values (%s, %s)", (email, outdated)
        )
    assert api.login(email, PASSWORD).status_code == 200
    with owner_connect(auth_db) as conn:
        (stored,) = conn.execute(
            "select password_hash from data.users where email = %s", (email,)
        ).fetchone()
    assert stored != outdated and stored.startswith("$argon2id$v=19$m=8,t=1,p=1$")


def test_new_hashes_are_argon2id_and_never_the_password(api: Api, auth_db: str):
    email = new_email()
    api.register(email, PASSWORD)
    with owner_connect(auth_db) as conn:
        (stored,) = conn.execute(
            "select password_hash from data.users where email = %s", (email,)
        ).fetchone()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


# --- headers, CORS, JWKS, health, metrics ---------------------------------------------------

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
}


def test_every_response_carries_the_security_headers(api: Api):
    responses = [
        api.get("/health"),
        api.get("/.well-known/jwks.json"),
        api.get("/metrics"),
        api.get("/nowhere"),
        api.request("DELETE", "/auth/login"),
        api.post("/auth/login", {"email": "x"}),
        api.post("/auth/login", {"email": "a@b.c", "password": "x"}),
        api.post("/auth/password", {}),
        api.post("/auth/refresh", {"refresh_token": "x"}),
        api.post("/auth/logout"),
        api.request(
            "POST",
            "/auth/login",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
        ),
    ]
    for response in responses:
        for name, value in SECURITY_HEADERS.items():
            assert response.headers.get(name) == value, (response.request.url, response.status_code)
        if response.status_code >= 400:
            body = response.json()
            assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "details"}
            assert "Traceback" not in response.text and "select" not in response.text.lower()
    assert responses[3].status_code == 404 and responses[3].json()["error"]["code"] == "not_found"
    assert responses[4].status_code == 405


def test_cors_allows_only_configured_origins(api: Api):
    allowed = api.get("/health", headers={"Origin": CORS_ORIGIN})
    assert allowed.headers["access-control-allow-origin"] == CORS_ORIGIN
    other = api.post(
        "/auth/login",
        {"email": "a@b.c", "password": "xxxxxxxx"},
        headers={"Origin": "https://evil.test"},
    )
    assert other.status_code == 401  # processed as usual...
    assert not any(
        h.startswith("access-control-") for h in other.headers
    )  # ...without CORS headers
    preflight = api.request(
        "OPTIONS",
        "/auth/login",
        headers={
            "Origin": CORS_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == CORS_ORIGIN


def test_jwks_publishes_only_public_keys(api: Api, signing_key: str):
    body = api.get("/.well-known/jwks.json").json()
    assert body == keys.jwks({TEST_KID: signing_key})
    assert all(set(key) == {"kty", "crv", "x", "y", "kid", "alg", "use"} for key in body["keys"])


def test_health_answers_ok_while_the_database_does(api: Api):
    for path in ("/health", "/ready", "/live"):  # readiness (also at /health) and liveness
        response = api.get(path)
        assert response.status_code == 200 and response.json() == {"status": "ok"}, path


def test_metrics_aggregate_every_worker(api: Api):
    email = new_email()
    api.register(email, PASSWORD)
    # sequential requests may all land on one uvicorn worker; a few at once (fewer than the 5
    # simultaneous attempts an account allows) reach several, until two have answered
    workers: set[str] = set()
    logins = 0
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        while len(workers) < 2 and logins < 60:
            batch = list(pool.map(lambda _: api.login(email, PASSWORD, ip=new_ip()), range(4)))
            assert all(r.status_code == 200 for r in batch), [r.text for r in batch]
            workers |= {r.headers["x-auth-worker"] for r in batch}
            logins += len(batch)
    text = api.get("/metrics").text
    assert len(workers) >= 2
    for name in (
        "auth_logins_total",
        "auth_registrations_total",
        "auth_password_hash_seconds_bucket",
        "auth_http_request_duration_seconds_bucket",
        "auth_hash_overload_total",
    ):
        assert name in text
    successes = [
        line
        for line in text.splitlines()
        if line.startswith('auth_logins_total{outcome="success"}')
    ]
    assert successes and float(successes[0].split()[-1]) >= logins


# --- overload ----------------------------------------------------------------------------


def test_a_login_flood_is_queued_or_refused_never_crashes(
    auth_db: str, start_auth: Callable[..., services.Service]
):
    """300 simultaneous logins (distinct unknown emails: every one costs a hash) against 2
    workers with 1 hashing thread and a queue of 8 each: the excess is refused with 503 +
    Retry-After, the rest is answered, and the service stays healthy."""
    service = start_auth(
        auth_db,
        workers=2,
        **OWASP_HASHING,
        AUTH_ARGON2_ALLOW_WEAK="false",
        AUTH_HASH_CONCURRENCY="1",
        AUTH_HASH_QUEUE="8",
        AUTH_HASH_QUEUE_TIMEOUT="5",
    )
    api = Api(service.url)
    email = new_email()
    api.register(email, PASSWORD)

    async def flood() -> list[httpx.Response]:
        limits = httpx.Limits(max_connections=300, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=service.url, timeout=60, limits=limits) as client:
            return await asyncio.gather(
                *(
                    client.post(
                        "/auth/login",
                        json={"email": new_email(), "password": PASSWORD},
                        headers={"X-Forwarded-For": new_ip()},
                    )
                    for _ in range(300)
                )
            )

    responses = asyncio.run(flood())
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {401, 503}, sorted(set(statuses))
    assert statuses.count(401) >= 16 and statuses.count(503) > 0
    refused = next(r for r in responses if r.status_code == 503)
    assert refused.json()["error"]["code"] == "overloaded" and refused.headers["retry-after"] == "1"
    assert api.get("/health").status_code == 200
    assert api.login(email, PASSWORD).status_code == 200


def test_a_login_storm_is_admitted_by_expected_wait(
    auth_db: str, start_auth: Callable[..., services.Service]
):
    """Issue 9: 150 simultaneous logins against 1 worker with AUTH_HASH_MAX_WAIT_SECONDS=0.5 and
    a queue count far too large to matter: the excess is refused at once with 503 + Retry-After
    (no refusal waits anywhere near the queue timeout), every admitted login is answered (401 for
    unknown emails, 200 for the real account), none times out. Bounds are generous (loaded CI)."""
    max_wait = 0.5
    service = start_auth(
        auth_db,
        workers=1,
        **OWASP_HASHING,
        AUTH_ARGON2_ALLOW_WEAK="false",
        AUTH_HASH_CONCURRENCY="1",
        AUTH_HASH_QUEUE="256",
        AUTH_HASH_QUEUE_TIMEOUT="30",
        AUTH_HASH_MAX_WAIT_SECONDS=str(max_wait),
        AUTH_LOGIN_IP_EMAIL_LIMIT="10000",
        AUTH_LOGIN_EMAIL_LIMIT="10000",
    )
    api = Api(service.url)
    email = new_email()
    api.register(email, PASSWORD)

    async def login(client: httpx.AsyncClient, body: dict[str, str]) -> tuple[int, float, str | None]:
        started = time.perf_counter()
        response = await client.post("/auth/login", json=body, headers={"X-Forwarded-For": new_ip()})
        return response.status_code, time.perf_counter() - started, response.headers.get("retry-after")

    async def storm() -> list[tuple[int, float, str | None]]:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
        async with httpx.AsyncClient(base_url=service.url, timeout=60, limits=limits) as client:
            bodies = [{"email": new_email(), "password": PASSWORD} for _ in range(149)]
            bodies.insert(75, {"email": email, "password": PASSWORD})
            return await asyncio.gather(*(login(client, body) for body in bodies))

    results = asyncio.run(storm())
    statuses = [status for status, _, _ in results]
    assert set(statuses) <= {200, 401, 503}, sorted(set(statuses))
    refusals = [(seconds, retry) for status, seconds, retry in results if status == 503]
    assert refusals and statuses.count(401) >= 1, statuses
    assert all(retry for _, retry in refusals)
    # refused at admission, not after waiting: far under the queue timeout (30 s). The wall time
    # also covers connecting while 150 requests arrive at once on a loaded 2-core CI machine
    # (a median of 1.5 s was seen there), hence a bound that only excludes waiting in the queue.
    slowest_refusal = max(seconds for seconds, _ in refusals)
    assert slowest_refusal < 10, slowest_refusal
    print(
        f"{statuses.count(503)} refused (slowest {slowest_refusal:.2f} s), "
        f"{len(statuses) - statuses.count(503)} answered"
    )
    assert api.get("/health").status_code == 200
    assert api.login(email, PASSWORD).status_code == 200


# --- NUL and invalid text in any input field --------------------------------------------------


@pytest.mark.parametrize(
    ("path", "field", "body"),
    [
        ("/auth/login", "email", '{"email": "a\\u0000b@x.com", "password": "x"}'),
        ("/auth/login", "password", '{"email": "a@x.com", "password": "p\\u0000w"}'),
        ("/auth/register", "email", '{"email": "a\\ud800@x.com", "password": "long enough pw"}'),
        ("/auth/refresh", "refresh_token", '{"refresh_token": "t\\u0000k"}'),
    ],
)
def test_nul_or_invalid_text_is_a_422_naming_the_field(api: Api, path: str, field: str, body: str):
    response = api.post(path, content=body, ip=new_ip(), headers={"Content-Type": "application/json"})
    assert response.status_code == 422, response.text
    assert [d["field"] for d in response.json()["error"]["details"]] == [field]
