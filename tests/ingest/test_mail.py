"""The mail of send_mail (ingest/mail.py): what a message holds, and the SMTP client against a
real server (aiosmtpd in this process): AUTH when SMTP_USER is set, STARTTLS when asked."""

from __future__ import annotations

import smtplib

import pytest

from ingest import mail
from ingest.settings import Settings
from ops import services
from ops.mail_sink import MailSink, link_of


def settings(port: int, **extra: str) -> Settings:
    return Settings(**{"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(port), "SMTP_STARTTLS": "false",
                       "PUBLIC_BASE_URL": "https://kitsu.test/", "MAIL_FROM": "Kitsu <no-reply@kitsu.test>", **extra})


def test_a_mail_has_text_and_html_with_the_link_and_its_message_id():
    message = mail.compose(settings(25), "password_reset", "a@b.test", "tok-en_1", "<m-1@kitsu.mail>")
    assert (message["To"], message["From"], message["Message-ID"]) == ("a@b.test", "Kitsu <no-reply@kitsu.test>",
                                                                       "<m-1@kitsu.mail>")
    assert link_of(message) == "https://kitsu.test/reset-password?token=tok-en_1"
    html = message.get_body(preferencelist=("html",))
    assert html is not None and 'href="https://kitsu.test/reset-password?token=tok-en_1"' in html.get_content()
    verification = mail.compose(settings(25), "email_verification", "a@b.test", "t", "<m-2@kitsu.mail>")
    assert link_of(verification) == "https://kitsu.test/verify-email?token=t"


def test_smtp_auth_is_used_when_a_user_is_configured():
    sink = MailSink(services.free_port(), credentials=("kitsu", "s3cret")).start()
    try:
        message = mail.compose(settings(sink.port), "email_verification", "a@b.test", "t", "<m-3@kitsu.mail>")
        mail.smtp_send(settings(sink.port), message)  # no SMTP_USER: no AUTH
        with pytest.raises(smtplib.SMTPAuthenticationError):
            mail.smtp_send(settings(sink.port, SMTP_USER="kitsu", SMTP_PASSWORD="wrong"), message)
        mail.smtp_send(settings(sink.port, SMTP_USER="kitsu", SMTP_PASSWORD="s3cret"), message)
        assert sink.authenticated == [False, True]
    finally:
        sink.stop()


def test_starttls_is_required_when_configured():
    sink = MailSink(services.free_port()).start()  # offers no STARTTLS: the client must refuse to go on
    try:
        message = mail.compose(settings(sink.port), "email_verification", "a@b.test", "t", "<m-4@kitsu.mail>")
        with pytest.raises(smtplib.SMTPNotSupportedError):
            mail.smtp_send(settings(sink.port, SMTP_STARTTLS="true"), message)
        assert sink.messages == []
    finally:
        sink.stop()


def test_no_smtp_host_is_a_failed_attempt():
    with pytest.raises(mail.NotDelivered):
        mail.smtp_send(Settings(**{"SMTP_HOST": ""}), mail.compose(settings(25), "password_reset", "a@b.test",
                                                                    "t", "<m-5@kitsu.mail>"))
