"""Rules that several components must each state, and the test that they agree (README, "Where each
rule lives"). Each comparison also sees a planted drift fail, so it cannot pass vacuously."""

from __future__ import annotations

import re
from collections.abc import Iterable

from auth_service.web import SECURITY_HEADERS
from gateway.config import TEMPLATE


def header_disagreements(database: dict[str, str], service: Iterable[tuple[bytes, bytes]],
                         where: str = "auth_service") -> list[str]:
    """Differences between private.security_headers() and another component's list (names
    compared case-insensitively, as HTTP does)."""
    ours = {name.lower(): value for name, value in database.items()}
    theirs = {name.decode().lower(): value.decode() for name, value in service}
    return sorted(
        f"{name}: {ours.get(name)!r} in SQL, {theirs.get(name)!r} in {where}"
        for name in ours.keys() | theirs.keys()
        if ours.get(name) != theirs.get(name)
    )


def database_headers(conn) -> dict[str, str]:
    return conn.execute("select private.security_headers()").fetchone()[0]


def test_postgrest_and_auth_service_send_the_same_security_headers(conn):
    assert header_disagreements(database_headers(conn), SECURITY_HEADERS) == []


def gateway_headers(template: str) -> list[tuple[bytes, bytes]]:
    """The constant headers the gateway adds to every response (its quoted add_header lines)."""
    return [(name.encode(), value.encode())
            for name, value in re.findall(r'^    add_header ([A-Za-z-]+) "([^"]*)" always;$', template, re.M)]


def test_the_gateway_sends_the_same_security_headers(conn):
    assert header_disagreements(database_headers(conn), gateway_headers(TEMPLATE.read_text())) == []


def test_a_gateway_header_that_drifted_is_reported(conn):
    drifted = TEMPLATE.read_text().replace('X-Frame-Options "DENY"', 'X-Frame-Options "SAMEORIGIN"')
    assert header_disagreements(database_headers(conn), gateway_headers(drifted), "the gateway") == [
        "x-frame-options: 'DENY' in SQL, 'SAMEORIGIN' in the gateway",
    ]


def test_a_header_missing_or_different_on_one_side_is_reported(conn):
    drifted = [(name, value) for name, value in SECURITY_HEADERS if name != b"referrer-policy"]
    drifted = [(name, b"SAMEORIGIN" if name == b"x-frame-options" else value) for name, value in drifted]
    assert header_disagreements(database_headers(conn), drifted) == [
        "referrer-policy: 'no-referrer' in SQL, None in auth_service",
        "x-frame-options: 'DENY' in SQL, 'SAMEORIGIN' in auth_service",
    ]
