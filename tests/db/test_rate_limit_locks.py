"""One lock order for the rate-limit rows: a sign-in (auth.take_slots) and a refund
(auth.refund_login) of the same email, arriving together, never deadlock.

The interleaving that deadlocked under a 500-client login storm is forced here, not hoped for: a
third transaction holds the per-email row, the sign-in queues for it first, the refund second.
With the refund in the reverse order (planted) it takes the (ip, email) row before queueing, so
once the blocker ends each of the two holds what the other waits for."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable

import psycopg
import pytest

from tests.conftest import owner_connect

# auth.refund_login as it was before the fix: (ip, email) row first, then the per-email row
PLANTED_REVERSE_ORDER = """
create schema planted;
create function planted.refund_login(p_ip inet, p_email text, p_success boolean) returns void
language plpgsql as $$
begin
  delete from data.rate_limits
   where bucket = 'login_ip_email' and subject = auth.login_subject(p_ip, p_email);
  update data.rate_limits set hits = hits[1:cardinality(hits) - 1]
   where bucket = 'login_email' and subject = p_email and cardinality(hits) > 0;
end $$;
"""

TAKE = """select auth.take_slots(array['login_ip_email', 'login_email'],
                                 array[auth.login_subject(%(ip)s, %(email)s), %(email)s],
                                 array[5, 10], array[interval '1 minute', interval '1 minute'])"""


def wait_until_blocked(dbname: str, pid: int) -> None:
    with owner_connect(dbname, autocommit=True) as watcher:
        for _ in range(200):
            row = watcher.execute("select wait_event_type from pg_stat_activity where pid = %s", [pid]).fetchone()
            if row and row[0] == "Lock":
                return
            time.sleep(0.02)
    raise AssertionError(f"backend {pid} never waited for a lock")


def race(dbname: str, refund_function: str) -> list[BaseException]:
    """Sign-in and refund of one email queued behind a blocker; returns what they raised."""
    ip, email = "198.51.100.7", f"{uuid.uuid4().hex[:8]}@example.com"
    params = {"ip": ip, "email": email}
    with owner_connect(dbname, autocommit=True) as setup:
        setup.execute(TAKE, params)  # both rows exist, as after one failed sign-in
    errors: list[BaseException] = []
    connections = [owner_connect(dbname, autocommit=True) for _ in range(2)]
    for connection in connections:
        connection.execute("set lock_timeout = '20s'")

    def run(connection: psycopg.Connection, query: str) -> Callable[[], None]:
        def target() -> None:
            try:
                connection.execute(query, params)
            except psycopg.Error as error:
                errors.append(error)
        return target

    with owner_connect(dbname) as blocker:
        blocker.execute("select from data.rate_limits where bucket = 'login_email' and subject = %s for update",
                        [email])
        sign_in = threading.Thread(target=run(connections[0], TAKE))
        sign_in.start()
        wait_until_blocked(dbname, connections[0].info.backend_pid)
        refund = threading.Thread(target=run(connections[1],
                                             f"select {refund_function}(%(ip)s, %(email)s, true)"))
        refund.start()
        wait_until_blocked(dbname, connections[1].info.backend_pid)
        blocker.commit()
    sign_in.join(30)
    refund.join(30)
    for connection in connections:
        connection.close()
    return errors


def test_sign_in_and_refund_of_one_email_do_not_deadlock(fresh_db: str):
    assert race(fresh_db, "auth.refund_login") == []


def test_the_reverse_lock_order_planted_deadlocks(fresh_db: str):
    with owner_connect(fresh_db, autocommit=True) as conn:
        conn.execute(PLANTED_REVERSE_ORDER)
    errors = race(fresh_db, "planted.refund_login")
    assert [type(error) for error in errors] == [psycopg.errors.DeadlockDetected], errors


@pytest.mark.parametrize("success", [True, False])
def test_refund_still_gives_back_one_slot(fresh_db: str, success: bool):
    params = {"ip": "198.51.100.8", "email": "refund@example.com"}
    with owner_connect(fresh_db, autocommit=True) as conn:
        conn.execute(TAKE, params)
        conn.execute(TAKE, params)
        conn.execute("select auth.refund_login(%(ip)s, %(email)s, %(success)s)", {**params, "success": success})
        counts = dict(conn.execute("select bucket, cardinality(hits) from data.rate_limits").fetchall())
    assert counts["login_email"] == 1
    assert counts.get("login_ip_email", 0) == (0 if success else 1)
