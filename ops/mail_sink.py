"""A local SMTP sink (aiosmtpd, dev tooling): accepts every mail, keeps it, and says what came.

`make run` starts one unless SMTP_HOST is set (ops/run.py), so a newcomer can try the whole
reset and verification flow: each message is written as ``<n>-<kind>.eml`` under the run folder
and its link printed in the log. The tests use the same class in their own process as the real
SMTP server the worker delivers to; compose runs ``python -m ops.mail_sink`` as the dev-only
``mail`` service. The product never imports this (it speaks SMTP with smtplib, ingest/mail.py).

    sink = MailSink(port=1025, folder=Path("run/mail")).start()
    ...; sink.messages[0]["Message-ID"]; sink.stop()
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import re
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

LINK = re.compile(r"https?://\S+[?&]token=[\w-]+")


def link_of(message: EmailMessage) -> str | None:
    """The first tokened link of the text body (what a person would click)."""
    part = message.get_body(preferencelist=("plain",))
    found = LINK.search(part.get_content()) if part is not None else None
    return found.group(0) if found else None


class _Handler:
    def __init__(self, sink: MailSink) -> None:
        self.sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.sink.authenticated.append(bool(session.authenticated))
        self.sink._keep(message)
        # tests: hold the answer to the first mail after `hold_next_seconds` was set, so a
        # worker can be killed between the message arriving and the server's 250
        hold, self.sink.hold_next_seconds = self.sink.hold_next_seconds, 0.0
        if hold:
            await asyncio.sleep(hold)
        return "250 Message accepted for delivery"


class MailSink:
    """An SMTP server on 127.0.0.1 in a thread of this process; keeps every message."""

    def __init__(
        self,
        port: int,
        *,
        host: str = "127.0.0.1",
        folder: Path | None = None,
        on_message: Callable[[EmailMessage], None] | None = None,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.host, self.port, self.folder, self.on_message = host, port, folder, on_message
        self.credentials = credentials  # tests: offer SMTP AUTH (over plain text) for these
        self.authenticated: list[bool] = []  # per message: did its session pass AUTH?
        self.messages: list[EmailMessage] = []
        self.hold_next_seconds = 0.0
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    def _keep(self, message: EmailMessage) -> None:
        with self._lock:
            self.messages.append(message)
            number = len(self.messages)
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
            kind = re.sub(r"[^a-z]+", "-", str(message.get("Subject", "mail")).lower()).strip("-")[:40]
            (self.folder / f"{number:05d}-{kind}.eml").write_bytes(message.as_bytes())
        if self.on_message is not None:
            self.on_message(message)

    def _authenticate(self, _server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> AuthResult:
        given = (data.login.decode(), data.password.decode()) if isinstance(data, LoginPassword) else None
        return AuthResult(success=given == self.credentials, handled=False)

    def start(self) -> MailSink:
        auth: dict[str, Any] = {}
        if self.credentials is not None:
            auth = {"authenticator": self._authenticate, "auth_require_tls": False}
        self._controller = Controller(_Handler(self), hostname=self.host, port=self.port, **auth)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def wait_for(self, count: int, timeout: float = 30.0) -> list[EmailMessage]:
        """Wait until at least ``count`` messages came; return them all."""
        deadline = time.monotonic() + timeout
        while len(self.messages) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(self.messages)} of {count} mails arrived within {timeout} s")
            time.sleep(0.05)
        return list(self.messages)


def announce(message: EmailMessage) -> None:
    """The log line of one message: recipient, subject and the link to open."""
    print(f"mail to {message['To']}: {message['Subject']} -> {link_of(message)}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description="Local SMTP sink: keeps each mail as a .eml file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=1025)
    parser.add_argument("--folder", type=Path, default=Path("mail"))
    args = parser.parse_args()
    sink = MailSink(args.port, host=args.host, folder=args.folder, on_message=announce).start()
    print(f"mail sink listening on {args.host}:{args.port}, keeping mails in {args.folder}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
