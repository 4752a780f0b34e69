"""Rules that two languages must both state, and the test that they agree (README, "Where each
rule lives"). Each comparison also sees a planted drift fail, so it cannot pass vacuously."""

from __future__ import annotations

from collections.abc import Iterable

from auth_service.web import SECURITY_HEADERS


def header_disagreements(database: dict[str, str], service: Iterable[tuple[bytes, bytes]]) -> list[str]:
    """Differences between private.security_headers() and auth_service's list (names compared
    case-insensitively, as HTTP does)."""
    ours = {name.lower(): value for name, value in database.items()}
    theirs = {name.decode().lower(): value.decode() for name, value in service}
    return sorted(
        f"{name}: {ours.get(name)!r} in SQL, {theirs.get(name)!r} in auth_service"
        for name in ours.keys() | theirs.keys()
        if ours.get(name) != theirs.get(name)
    )


def database_headers(conn) -> dict[str, str]:
    return conn.execute("select private.security_headers()").fetchone()[0]


def test_postgrest_and_auth_service_send_the_same_security_headers(conn):
    assert header_disagreements(database_headers(conn), SECURITY_HEADERS) == []


def test_a_header_missing_or_different_on_one_side_is_reported(conn):
    drifted = [(name, value) for name, value in SECURITY_HEADERS if name != b"referrer-policy"]
    drifted = [(name, b"SAMEORIGIN" if name == b"x-frame-options" else value) for name, value in drifted]
    assert header_disagreements(database_headers(conn), drifted) == [
        "referrer-policy: 'no-referrer' in SQL, None in auth_service",
        "x-frame-options: 'DENY' in SQL, 'SAMEORIGIN' in auth_service",
    ]
