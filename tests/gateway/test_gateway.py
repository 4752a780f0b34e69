"""Contract §10 through the real nginx: one origin, headers on every response (errors too), CORS
decided once, request ids, bad input stopped at the edge, caching that never mixes callers, and
the client address that auth_service and the audit log see."""

from __future__ import annotations

import re
import socket
import time
import uuid
from pathlib import Path

import httpx
import pytest

from ops import services
from tests.conftest import owner_connect
from tests.gateway.conftest import ALLOWED_ORIGIN, OTHER_ORIGIN, Edge
from tests.helpers import create_anime

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
}
PASSWORD = "correct horse battery staple"
ROOT = Path(__file__).resolve().parents[2]


def assert_edge_headers(response: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert response.headers.get_list(name) == [value], (name, response.status_code, response.url)
    assert response.headers.get("x-request-id"), response.url
    assert "access-control-allow-origin" not in response.headers or \
        response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN


def sign_up(edge: Edge, client: httpx.Client) -> tuple[str, str]:
    email = f"edge-{uuid.uuid4().hex[:10]}@example.test"
    assert client.post("/auth/register", json={"email": email, "password": PASSWORD}).status_code == 201
    login = client.post("/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return email, login.json()["access_token"]


def raw_request(edge: Edge, head: bytes) -> bytes:
    """Bytes on the wire, for what httpx refuses to send (invalid UTF-8 in a header, NUL)."""
    host, port = edge.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(head)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


# --- routes ---------------------------------------------------------------------------------

def test_one_origin_routes_the_api_auth_and_health(edge: Edge):
    with edge.client() as client:
        anime = client.get("/rest/anime", params={"select": "id,title", "order": "title"})
        assert anime.status_code == 200 and len(anime.json()) == 5
        assert client.get("/rest/").json()["info"]  # PostgREST's OpenAPI
        assert client.get("/.well-known/jwks.json").json()["keys"]
        assert client.get("/health").status_code == 200
        _, token = sign_up(edge, client)
        me = client.get("/rest/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 200, me.text


@pytest.mark.parametrize("path", ["/metrics", "/ready", "/live", "/config", "/anything", "/rest_anime"])
def test_metrics_admin_and_unknown_paths_are_not_routed(edge: Edge, path: str):
    with edge.client() as client:
        response = client.get(path)
    assert response.status_code == 404 and response.json()["code"] == "not_found"
    assert_edge_headers(response)


def test_health_is_503_when_postgrest_is_not_ready(edge: Edge, start_gateway):
    dead = services.Service("dead", [], {}, url=f"http://127.0.0.1:{services.free_port()}")
    gateway = start_gateway(dead, f"127.0.0.1:{services.free_port()}", edge.auth, wait=False)
    deadline = time.monotonic() + 10
    while True:
        try:
            response = httpx.get(f"{gateway.url}/health", timeout=2)
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    assert response.status_code == 503 and response.json()["code"] == "unavailable"
    assert_edge_headers(response)
    api = httpx.get(f"{gateway.url}/rest/anime", timeout=5)
    assert api.status_code == 503 and api.json()["code"] == "unavailable"
    assert_edge_headers(api)


# --- headers on every response --------------------------------------------------------------

def test_security_headers_on_success_and_on_every_kind_of_error(edge: Edge):
    with edge.client() as client:
        _, token = sign_up(edge, client)
        signed_in = {"Authorization": f"Bearer {token}"}
        favorite = {"anime_id": str(edge.published[0])}
        assert client.post("/rest/favorites", json=favorite, headers=signed_in).status_code == 201
        responses = {
            200: client.get("/rest/anime", params={"limit": 1}),
            401: client.get("/rest/favorites", headers={"Authorization": "Bearer not.a.jwt"}),
            404: client.get("/rest/no_such_resource"),
            409: client.post("/rest/favorites", json=favorite, headers=signed_in),
            413: client.post("/auth/login", content=b"x" * (70 * 1024), headers={"Content-Type": "application/json"}),
            400: client.get("/rest/anime", params={"title": "eq.a\x00b"}),
        }
    for status, response in responses.items():
        assert response.status_code == status, (status, response.text)
        assert_edge_headers(response)
    assert responses[413].json()["code"] == "payload_too_large"
    assert responses[400].json()["code"] == "bad_request"


def test_hsts_only_when_asked(edge: Edge, start_gateway):
    with edge.client() as client:
        assert "strict-transport-security" not in client.get("/health").headers
    hsts = start_gateway(edge.postgrest, edge.postgrest.env["PGRST_ADMIN_SERVER_PORT"].join(["127.0.0.1:", ""]),
                         edge.auth, GATEWAY_HSTS="1")
    assert httpx.get(f"{hsts.url}/health").headers["strict-transport-security"].startswith("max-age=")


# --- bad input stops at the edge ------------------------------------------------------------

@pytest.mark.parametrize("query", [b"title=eq.%FF", b"title=eq.%C3%28", b"q=%00x", b"q=%ED%A0%80"])
def test_query_strings_that_are_not_utf8_or_hold_nul_get_400(edge: Edge, query: bytes):
    response = raw_request(edge, b"GET /rest/anime?" + query + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 400"), response[:200]
    assert b"nosniff" in response and b'"bad_request"' in response


def test_valid_utf8_in_the_query_passes(edge: Edge):
    with edge.client() as client:
        response = client.get("/rest/anime", params={"title": "eq.Тетрадь смерти — 東京"})
    assert response.status_code == 200 and response.json() == []


@pytest.mark.parametrize("header", [b"Prefer: count=\xff\xfe", b"User-Agent: caf\xe9", b"Authorization: Bearer \xc3"])
def test_header_values_that_are_not_utf8_get_400(edge: Edge, header: bytes):
    response = raw_request(edge, b"GET /rest/anime HTTP/1.1\r\nHost: x\r\n" + header + b"\r\nConnection: close\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 400"), response[:200]
    assert b"nosniff" in response


def test_a_nul_byte_in_a_header_never_reaches_upstream(edge: Edge):
    response = raw_request(
        edge, b"GET /rest/anime HTTP/1.1\r\nHost: x\r\nUser-Agent: a\x00b\r\nConnection: close\r\n\r\n")
    assert response.startswith(b"HTTP/1.1 400"), response[:200]


# --- CORS -----------------------------------------------------------------------------------

def test_preflight_from_an_allowed_origin_is_answered_at_the_edge(edge: Edge):
    with edge.client() as client:
        response = client.options("/rest/favorites", headers={
            "Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, prefer"})
    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"].lower()
    assert_edge_headers(response)


def test_another_origin_gets_no_cors_headers_even_where_postgrest_would_say_star(edge: Edge):
    with edge.client() as client:
        preflight = client.options("/auth/login", headers={
            "Origin": OTHER_ORIGIN, "Access-Control-Request-Method": "POST"})
        simple = client.get("/rest/anime", params={"limit": 1}, headers={"Origin": OTHER_ORIGIN})
        allowed = client.get("/rest/anime", params={"limit": 1}, headers={"Origin": ALLOWED_ORIGIN})
    assert preflight.status_code == 204
    for response in (preflight, simple):
        assert not [h for h in response.headers if h.startswith("access-control-")], response.headers
    assert allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    assert "x-request-id" in allowed.headers["access-control-expose-headers"].lower()
    # PostgREST alone answers any origin with `*`; the gateway hides that
    direct = httpx.get(f"{edge.postgrest.url}/anime", params={"limit": 1}, headers={"Origin": OTHER_ORIGIN})
    assert direct.headers.get("access-control-allow-origin") == "*"


# --- request ids ----------------------------------------------------------------------------

def test_a_well_formed_request_id_is_kept_and_a_bad_one_replaced(edge: Edge):
    with edge.client() as client:
        kept = client.post("/auth/login", json={"email": "nobody@example.test", "password": "x" * 12},
                           headers={"X-Request-Id": "req-keep.me_1"})
        replaced = client.get("/rest/anime", params={"limit": 1}, headers={"X-Request-Id": "bad id with spaces"})
        generated = client.get("/rest/anime", params={"limit": 1})
    assert kept.headers["x-request-id"] == "req-keep.me_1"
    assert replaced.headers["x-request-id"] != "bad id with spaces"
    assert len(generated.headers["x-request-id"]) == 32
    ids = {entry["request_id"] for entry in edge.access_log()}
    assert {"req-keep.me_1", replaced.headers["x-request-id"], generated.headers["x-request-id"]} <= ids


# --- caching --------------------------------------------------------------------------------

def test_catalog_etag_answers_304_until_the_catalog_changes(edge: Edge):
    path = "/rest/anime?select=id,title&order=title&limit=2&title=neq.etag"
    with edge.client() as client:
        first = client.get(path)
        etag = first.headers["etag"]
        assert first.headers["cache-control"].startswith("public")
        again = client.get(path, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b""
        assert_edge_headers(again)
        with owner_connect(edge.db) as conn:
            create_anime(conn, "AAA new title")
        time.sleep(6.5)  # the micro-cache's lifetime (5 s, counted by nginx in whole seconds)
        # the first request after that may still get the previous copy while it is refreshed
        deadline = time.monotonic() + 3
        while (changed := client.get(path, headers={"If-None-Match": etag})).status_code == 304:
            assert time.monotonic() < deadline, "the expired entry was never refreshed"
            time.sleep(0.1)
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert changed.json()[0]["title"] == "AAA new title"


def test_the_micro_cache_serves_anonymous_reads_and_never_signed_in_ones(edge: Edge):
    path = "/rest/anime?select=id,title&order=title&limit=1&title=neq.cache"
    with edge.client() as client:
        _, alice = sign_up(edge, client)
        _, bob = sign_up(edge, client)
        before = client.get(path).json()
        with owner_connect(edge.db) as conn:
            create_anime(conn, "AA first now")
        cached = client.get(path).json()
        fresh = client.get(path, headers={"Authorization": f"Bearer {alice}"}).json()
        # two people's own rows through the cacheable gateway: each sees only their own
        for token, anime_id in ((alice, edge.published[1]), (bob, edge.published[2])):
            assert client.post("/rest/favorites", json={"anime_id": str(anime_id)},
                               headers={"Authorization": f"Bearer {token}"}).status_code == 201
        alice_favorites = client.get("/rest/favorites?select=anime_id", headers={"Authorization": f"Bearer {alice}"})
        bob_favorites = client.get("/rest/favorites?select=anime_id", headers={"Authorization": f"Bearer {bob}"})
    assert cached == before, "an anonymous read within the cache lifetime comes from the cache"
    assert fresh[0]["title"] == "AA first now", "a signed-in read never comes from the cache"
    assert alice_favorites.json() == [{"anime_id": str(edge.published[1])}]
    assert bob_favorites.json() == [{"anime_id": str(edge.published[2])}]
    assert "public" not in alice_favorites.headers.get("cache-control", "")
    statuses = [(e["path"], e["cache"]) for e in edge.access_log() if e["path"] == "/anime"]
    assert ("/anime", "HIT") in statuses


def cacheable_paths() -> list[str]:
    """The resources whose anonymous GETs the database gives caching headers
    (private.cacheable_path, sql/private/catalog_cache.sql)."""
    source = (ROOT / "sql" / "private" / "catalog_cache.sql").read_text()
    body = re.search(r"function private\.cacheable_path.*?select path in \(([^)]*)\)", source, re.S)
    assert body, "private.cacheable_path's list was not found"
    return re.findall(r"'([^']+)'", body.group(1))


def test_the_gateway_caches_every_resource_the_database_marks_cacheable():
    template = (ROOT / "gateway" / "kitsu.conf.template").read_text()
    location = re.search(r"location ~ \^/rest/\(([^)]*)\)\$", template)
    assert location, "the micro-cache location was not found"
    assert sorted("/" + p for p in location.group(1).split("|")) == sorted(cacheable_paths())


CATALOG_READS = {  # a read of each cacheable resource (the titles are edge.published[0] and [1])
    "/anime": "select=id,title&title=like.Gateway*&order=title",
    "/episodes": "select=id,number&order=id&limit=3",
    "/episode_sources": "select=episode_id,player_url&limit=3",
    "/schedule": "select=anime_id&limit=3",
    "/genres": "select=id,name",
    "/related": "select=anime_id,relation,related_id,title",
    "/rpc/search_anime": "q=gateway&select=id,title",
}


@pytest.mark.parametrize("resource", sorted(CATALOG_READS))
def test_each_catalog_resource_is_micro_cached_and_answers_304(edge: Edge, resource: str):
    assert sorted(CATALOG_READS) == sorted(cacheable_paths())
    if resource == "/related":
        with owner_connect(edge.db) as conn:
            for number, anime_id in enumerate(edge.published[:2], start=990_001):
                conn.execute("update data.anime set shikimori_id = coalesce(shikimori_id, %s) where id = %s",
                             (number, anime_id))
            conn.execute("insert into data.anime_relations (anime_id, related_shikimori_id, relation) "
                         "select %s, shikimori_id, 'sequel' from data.anime where id = %s on conflict do nothing",
                         (edge.published[0], edge.published[1]))
    path = f"/rest{resource}?{CATALOG_READS[resource]}"
    with edge.client() as client:
        first = client.get(path)
        assert first.status_code == 200, first.text
        assert first.headers["cache-control"].startswith("public") and first.headers["etag"]
        again = client.get(path, headers={"If-None-Match": first.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
        assert client.get(path).json() == first.json()
    if resource == "/related":
        assert first.json() and first.json()[0]["relation"] == "sequel"
    statuses = [e["cache"] for e in edge.access_log() if e["path"] == resource]
    assert "HIT" in statuses, statuses


# --- the client address ---------------------------------------------------------------------

def test_a_forged_x_forwarded_for_reaches_neither_the_session_nor_the_audit_log(edge: Edge):
    forged = {"X-Forwarded-For": "203.0.113.66"}
    with edge.client() as client:
        email, token = sign_up(edge, client)
        login = client.post("/auth/login", json={"email": email, "password": PASSWORD}, headers=forged)
        assert login.status_code == 200
        refused = client.post("/rest/rpc/admin_update_anime", headers={**forged, "Authorization": f"Bearer {token}"},
                              json={"id": str(edge.published[0]), "patch": {"title": "x"}, "reason": "edge"})
        assert refused.status_code == 403, refused.text
    with owner_connect(edge.db) as conn:
        ips = {str(ip) for (ip,) in conn.execute(
            "select s.ip from data.sessions s join data.users u on u.id = s.user_id where u.email = %s", (email,))}
        audit_ips = {str(ip) for (ip,) in conn.execute(
            "select ip from data.audit_log where actor_id = (select id from data.users where email = %s)", (email,))}
    assert ips == {"127.0.0.1"}
    assert audit_ips == {"127.0.0.1"}
