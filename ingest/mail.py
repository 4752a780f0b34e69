"""Mail delivery of the outbox (contract §12): the ``send_mail`` task (ingest/tasks.py) sends one
row of data.mail_outbox over SMTP.

Exactly-once is not possible over SMTP, so the guarantees are: a mail is never lost (a failed
attempt is counted with its error and retried forever with capped exponential backoff; a job of
a worker that died is queued again by the stalled-job sweeper), a delivered mail is never sent
again (``ingest.mail_sent`` commits right after the server's acceptance, and a later job for the
row finds nothing to send), and the one duplicate that remains possible — the server accepted,
the worker died before that commit — carries the same ``Message-ID`` as the first copy, which
the row fixed when it was written.
"""

from __future__ import annotations

import asyncio
import email.utils
import html
import logging
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from importlib import resources
from string import Template
from typing import Any, LiteralString

from procrastinate.jobs import Job
from procrastinate.retry import BaseRetryStrategy, RetryDecision

from ingest import metrics, pool
from ingest.settings import Settings

log = logging.getLogger("ingest.mail")

MAIL_TO_SEND: LiteralString = (
    "select kind, recipient, token, message_id, attempts from ingest.mail_to_send(%s)"
)
MAIL_SENT: LiteralString = "select ingest.mail_sent(%s)"
MAIL_FAILED: LiteralString = "select ingest.mail_failed(%s, %s)"


@dataclass(frozen=True)
class Kind:
    subject: str
    path: str  # the frontend page of the link, which posts the token to auth_service


KINDS = {
    "password_reset": Kind("Reset your Kitsu password", "/reset-password"),
    "email_verification": Kind("Confirm your email address for Kitsu", "/verify-email"),
}


class NotDelivered(Exception):
    """One delivery attempt failed; Procrastinate retries the job (MailRetry)."""


class MailRetry(BaseRetryStrategy):
    """Retry every failed attempt, after ``base x 2^attempts`` seconds, at most ``cap``: a mail
    waits out an SMTP outage of any length."""

    def __init__(self, settings: Settings) -> None:
        self.base = settings.mail_retry_seconds
        self.cap = settings.mail_retry_max_seconds

    def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
        return RetryDecision(retry_in={"seconds": min(self.cap, self.base * 2 ** min(job.attempts, 30))})


def _template(name: str) -> Template:
    return Template(resources.files("ingest").joinpath("mail_templates", name).read_text(encoding="utf-8"))


def link(settings: Settings, kind: str, token: str) -> str:
    return f"{settings.public_base_url}{KINDS[kind].path}?token={token}"


def compose(settings: Settings, kind: str, recipient: str, token: str, message_id: str) -> EmailMessage:
    """The mail of one outbox row: a text body and an HTML alternative from the templates."""
    url = link(settings, kind, token)
    message = EmailMessage()
    message["From"] = settings.mail_from
    message["To"] = recipient
    message["Subject"] = KINDS[kind].subject
    message["Message-ID"] = message_id
    message["Date"] = email.utils.formatdate(localtime=False)
    message.set_content(_template(f"{kind}.txt").substitute(link=url, recipient=recipient))
    message.add_alternative(
        _template(f"{kind}.html").substitute(link=html.escape(url), recipient=html.escape(recipient)),
        subtype="html",
    )
    return message


def smtp_send(settings: Settings, message: EmailMessage) -> None:
    """One SMTP conversation (blocking; run in a thread): STARTTLS when SMTP_STARTTLS, AUTH when
    SMTP_USER is set."""
    if not settings.smtp_host:
        raise NotDelivered("SMTP_HOST is not set")
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout) as smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value())
        smtp.send_message(message)


async def _call(query: LiteralString, params: tuple[Any, ...]) -> Any:
    async with pool.connection() as conn:
        cursor = await conn.execute(query, params)
        return await cursor.fetchone()


async def deliver(settings: Settings, outbox_id: int) -> str:
    """Send one outbox row: 'sent', or 'already_sent' for a delivered (or unknown) row. A failed
    attempt is recorded and raises NotDelivered, so the job is retried."""
    row = await _call(MAIL_TO_SEND, (outbox_id,))
    if row is None:
        return "already_sent"
    kind, recipient, token, message_id, attempts = row
    message = compose(settings, kind, recipient, token, message_id)
    try:
        await asyncio.to_thread(smtp_send, settings, message)
    except (OSError, smtplib.SMTPException, NotDelivered) as exc:
        error = f"{type(exc).__name__}: {exc}"
        await _call(MAIL_FAILED, (outbox_id, error))
        metrics.MAIL_FAILED.labels(kind).inc()
        log.warning("mail %s (%s, attempt %s) not delivered: %s", outbox_id, message_id, attempts, error)
        raise NotDelivered(error) from exc
    await _call(MAIL_SENT, (outbox_id,))
    metrics.MAIL_SENT.labels(kind).inc()
    log.info("mail %s (%s, %s) delivered on attempt %s", outbox_id, message_id, kind, attempts)
    return "sent"
