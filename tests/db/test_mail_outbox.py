"""The mail outbox in SQL (sql/private/mail.sql, sql/ingest/mail.sql): a queued mail has its
job, a delivered one is not handed out again and keeps no token, failures are counted."""

from __future__ import annotations

import psycopg
import pytest

from tests.helpers import create_user


def queue(conn: psycopg.Connection, token: str = "a-token") -> int:
    user_id, _ = create_user(conn)
    row = conn.execute("select private.queue_mail(%s, 'password_reset', 'a@b.test', %s)", (user_id, token)).fetchone()
    return row[0]


def test_a_queued_mail_has_one_waiting_job(conn):
    outbox_id = queue(conn)
    jobs = conn.execute("select queue_name, status, queueing_lock, lock, args from procrastinate.procrastinate_jobs"
                        " where task_name = 'send_mail'").fetchall()
    assert jobs == [("mail", "todo", f"mail:{outbox_id}", None, {"outbox_id": outbox_id})]
    assert conn.execute("select private.defer_mail(%s)", (outbox_id,)).fetchone() == (None,)  # one waits already


def test_attempts_failures_and_delivery(conn):
    outbox_id = queue(conn)
    assert conn.execute("select token, attempts from ingest.mail_to_send(%s)", (outbox_id,)).fetchall() == [
        ("a-token", 1)]
    conn.execute("select ingest.mail_failed(%s, 'ConnectionRefusedError: nobody home')", (outbox_id,))
    assert conn.execute("select delivered, pending, failed_attempts, failing, last_error"
                        " from private.mail_delivery").fetchone() == (0, 1, 1, 1, "ConnectionRefusedError: nobody home")
    conn.execute("select ingest.mail_to_send(%s)", (outbox_id,))
    conn.execute("select ingest.mail_sent(%s)", (outbox_id,))
    assert conn.execute("select token, attempts, failures, sent_at is not null from data.mail_outbox"
                        " where id = %s", (outbox_id,)).fetchone() == (None, 2, 1, True)
    assert conn.execute("select * from ingest.mail_to_send(%s)", (outbox_id,)).fetchall() == []  # not again
    assert conn.execute("select delivered, pending from private.mail_delivery").fetchone() == (1, 0)


def test_a_delivered_mail_cannot_keep_its_token(conn):
    outbox_id = queue(conn)
    with pytest.raises(psycopg.errors.CheckViolation, match="mail_outbox_sent_keeps_no_token"):
        conn.execute("update data.mail_outbox set sent_at = now() where id = %s", (outbox_id,))
