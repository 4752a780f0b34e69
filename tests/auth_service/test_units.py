"""Pure functions of auth_service (no HTTP, no database) and the start-up checks of settings,
plus /health when the database is away."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError

from auth_service import errors, keys, passwords, web
from auth_service.process import check_settings
from auth_service.settings import Settings
from ops import services
from ops.launch import auth_process, public_jwks_json

ROOT = Path(__file__).resolve().parents[2]
TRUSTED = [ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("127.0.0.1/32")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.5", ["198.51.100.1"], "203.0.113.5"),  # untrusted peer: header ignored
        ("127.0.0.1", [], "127.0.0.1"),  # trusted peer, no header
        ("127.0.0.1", ["198.51.100.1"], "198.51.100.1"),
        ("127.0.0.1", ["6.6.6.6, 198.51.100.1, 10.1.1.1"], "198.51.100.1"),  # skip trusted hops only
        ("127.0.0.1", ["6.6.6.6", "198.51.100.1"], "198.51.100.1"),  # repeated headers
        ("127.0.0.1", ["10.2.2.2, 10.1.1.1"], "10.2.2.2"),  # all trusted: leftmost
        ("127.0.0.1", ["6.6.6.6, garbage, 198.51.100.1"], "198.51.100.1"),
        ("127.0.0.1", ["6.6.6.6, garbage"], "127.0.0.1"),  # malformed: trust nothing left of it
        ("127.0.0.1", ["2001:db8::1"], "2001:db8::1"),
    ],
)
def test_client_ip_honours_forwarded_for_only_from_trusted_proxies(peer, forwarded, expected):
    assert str(web.client_ip(peer, forwarded, TRUSTED)) == expected


def _settings(**overrides: object) -> Settings:
    base: dict[str, object] = {
        "database_url": "postgresql://x@localhost/x",
        "jwt_keys": json.dumps({"k": keys.generate_private_pem()}),
    }
    return Settings(**{**base, **overrides})  # type: ignore[arg-type]


def test_settings_refuse_argon2_parameters_below_owasp():
    assert _settings().argon2_memory_cost == 19456
    assert _settings(argon2_memory_cost=47104, argon2_time_cost=1)  # another OWASP equivalent
    for weak in (
        {"argon2_memory_cost": 8, "argon2_time_cost": 1},
        {"argon2_memory_cost": 19455},
        {"argon2_time_cost": 1},
    ):
        with pytest.raises(ValidationError, match="OWASP"):
            _settings(**weak)
    assert _settings(argon2_memory_cost=8, argon2_time_cost=1, argon2_allow_weak=True)


def test_log_format_is_the_shared_unprefixed_setting(monkeypatch):
    monkeypatch.delenv("LOG_FORMAT", raising=False)
    assert _settings().log_format == "text"
    monkeypatch.setenv("LOG_FORMAT", " JSON ")
    assert _settings().log_format == "json"
    monkeypatch.setenv("LOG_FORMAT", "")
    assert _settings().log_format == "text"
    # refused before uvicorn starts its workers
    env = {"AUTH_DATABASE_URL": "postgresql://x@localhost/x",
           "AUTH_JWT_KEYS": json.dumps({"k": keys.generate_private_pem()})}
    assert check_settings({**env, "LOG_FORMAT": "json"}).log_format == "json"
    with pytest.raises(ValidationError, match="log_format"):
        check_settings({**env, "LOG_FORMAT": "yaml"})


def test_settings_parse_durations_and_lists():
    settings = _settings(
        refresh_grace="2.5", trusted_proxies="10.0.0.0/8, 127.0.0.1", cors_origins="https://a.test/, https://b.test"
    )
    assert settings.refresh_grace.total_seconds() == 2.5
    assert [str(n) for n in settings.trusted_networks()] == ["10.0.0.0/8", "127.0.0.1/32"]
    assert settings.cors_origin_list() == ["https://a.test", "https://b.test"]
    with pytest.raises(ValidationError):
        _settings(trusted_proxies="not-an-address")
    with pytest.raises(ValidationError):
        _settings(login_ip_email_limit=0)
    assert _settings().hash_max_wait_seconds == 2.0
    with pytest.raises(ValidationError, match="AUTH_HASH_MAX_WAIT_SECONDS"):
        _settings(hash_max_wait_seconds=0)


def test_signing_keys_need_an_explicit_kid_when_several(tmp_path: Path):
    two = {"a": keys.generate_private_pem(), "b": keys.generate_private_pem()}
    with pytest.raises(ValidationError, match="AUTH_JWT_SIGNING_KID"):
        _settings(jwt_keys=json.dumps(two))
    assert _settings(jwt_keys=json.dumps(two), jwt_signing_kid="b").signing_keys()[1] == "b"
    with pytest.raises(ValidationError, match="names no loaded key"):
        _settings(jwt_keys=json.dumps(two), jwt_signing_kid="c")
    with pytest.raises(ValidationError, match="no signing key"):
        _settings(jwt_keys=None)
    keys.ensure_dev_key(tmp_path)
    (pem,) = tmp_path.glob("*.pem")
    assert pem.stat().st_mode & 0o777 == 0o600
    assert keys.ensure_dev_key(tmp_path) and len(list(tmp_path.glob("*.pem"))) == 1
    from_dir = _settings(jwt_keys=None, jwt_keys_dir=str(tmp_path))
    assert from_dir.signing_keys()[1] == pem.stem
    published = json.loads(public_jwks_json({"AUTH_JWT_KEYS_DIR": str(tmp_path)}))
    assert [k["kid"] for k in published["keys"]] == [pem.stem] and "d" not in published["keys"][0]


def test_hash_admission_is_by_expected_wait():
    """(queued + running) x average hash time / threads <= max wait (issue 9)."""
    assert passwords.admits(0, 10.0, 1, 0.5)  # an idle pool always admits
    assert passwords.admits(4, 0.25, 2, 0.5)  # 4 x 0.25 / 2 = 0.5: just fits
    assert not passwords.admits(5, 0.25, 2, 0.5)
    assert passwords.admits(40, 0.05, 1, 2.0) and not passwords.admits(41, 0.05, 1, 2.0)


def test_hash_pool_measures_hash_time_and_refuses_beyond_the_max_wait():
    async def scenario() -> tuple[float, bool, bool]:
        pool = passwords.HashPool(concurrency=1, queue=256, timeout=10, max_wait=0.5, seed_seconds=0.01)
        try:
            assert not pool.full()
            for _ in range(3):
                await pool.run("test", time.sleep, 0.2)
            average = pool.average  # moved from the 0.01 s seed towards 0.2 s
            slow = asyncio.ensure_future(pool.run("test", time.sleep, 0.2))
            await asyncio.sleep(0.05)
            busy_one = pool.full()  # 1 x ~0.1 / 1 <= 0.5: room
            more = [asyncio.ensure_future(pool.run("test", time.sleep, 0.2)) for _ in range(8)]
            await asyncio.sleep(0.05)
            refused = pool.full()
            results = await asyncio.gather(slow, *more, return_exceptions=True)
            assert any(isinstance(r, passwords.Overloaded) for r in results)
            return average, busy_one, refused
        finally:
            pool.close()

    average, busy_one, refused = asyncio.run(scenario())
    assert 0.05 < average < 0.25
    assert not busy_one and refused


def test_legacy_hashes_verify_and_upgrade():
    hasher = passwords.Passwords(time_cost=1, memory_cost=8, parallelism=1)
    legacy = passwords.legacy_hash("old password", rounds=4)
    assert legacy.startswith("$2b$04$")
    assert hasher.verify(legacy, "wrong").ok is False
    verdict = hasher.verify(legacy, "old password")
    assert verdict.ok and verdict.new_hash and verdict.new_hash.startswith("$argon2id$")
    assert hasher.verify(verdict.new_hash, "old password") == passwords.Verdict(True, None)
    assert hasher.verify(None, "anything") == passwords.Verdict(False)
    assert hasher.verify("$1$md5crypt", "anything") == passwords.Verdict(False)


def test_every_error_code_is_in_the_catalogue_document():
    catalogue = (ROOT / "docs" / "errors.md").read_text()
    for code, (status, _) in errors.CATALOGUE.items():
        assert f"| `{code}` | {status} |" in catalogue, code


def test_health_is_503_while_the_database_is_away(auth_env: dict[str, str]):
    service = auth_process(
        "kitsu_no_such_database", port=services.free_port(), workers=2, env={**auth_env, "AUTH_DB_TIMEOUT": "1"}
    )
    service.start()
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"{service.url}/health", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "database_unavailable"
        # readiness says the same; liveness does not depend on the database (contract §14)
        assert httpx.get(f"{service.url}/ready", timeout=5).status_code == 503
        assert httpx.get(f"{service.url}/live", timeout=5).json() == {"status": "ok"}
        login = httpx.post(f"{service.url}/auth/login", json={"email": "a@b.c", "password": "x"}, timeout=10)
        assert login.status_code == 503 and login.json()["error"]["code"] == "database_unavailable"
        assert login.headers["x-content-type-options"] == "nosniff"
    finally:
        service.stop()


def test_process_wipes_stale_metrics(tmp_path: Path, auth_env: dict[str, str]):
    (tmp_path / "counter_123.db").write_bytes(b"stale")
    (tmp_path / "keep.txt").write_text("not ours")
    auth_process("x", port=1, env={**auth_env, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_a_bad_configuration_fails_before_the_process_starts(auth_env: dict[str, str]):
    with pytest.raises(ValidationError, match="OWASP"):
        auth_process("x", port=1, env={**auth_env, "AUTH_ARGON2_ALLOW_WEAK": "false"})
    with pytest.raises(ValidationError, match="no signing key"):
        auth_process("x", port=1, env={**auth_env, "AUTH_JWT_KEYS": ""})
