"""Password reset and email verification (contract §12, issue 11), end to end with real
processes: auth_service (uvicorn), PostgREST, a Procrastinate worker running send_mail, and a
real SMTP server (aiosmtpd, ops/mail_sink.py) in this test process."""

from __future__ import annotations

import signal
import statistics
import time
import urllib.parse
from collections.abc import Callable, Iterator
from email.message import EmailMessage

import argon2
import httpx
import pytest

from ops import launch, services
from ops.mail_sink import MailSink, link_of
from tests.auth_service.conftest import OWASP_HASHING, Api, new_email, new_ip
from tests.conftest import LOG_DIR, owner_connect
from tests.ingest.support import FAST

ME = {"Accept": "application/vnd.pgrst.object+json"}
PUBLIC_BASE_URL = "https://kitsu.test"


def mail_env(smtp_port: int) -> dict[str, str]:
    return {
        **FAST,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "SMTP_STARTTLS": "false",
        "SMTP_TIMEOUT": "3",
        "MAIL_FROM": "Kitsu <no-reply@kitsu.test>",
        "PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "MAIL_RETRY_SECONDS": "0.2",
        "MAIL_RETRY_MAX_SECONDS": "1",
    }


@pytest.fixture(scope="module")
def start_mail_worker() -> Iterator[Callable[..., services.Service]]:
    """Factory: a worker on the mail and periodic queues (the sweeper) delivering to a port."""
    started: list[services.Service] = []

    def start(dbname: str, smtp_port: int, name: str = "mail") -> services.Service:
        worker = launch.worker_process(
            dbname, name=name, env=mail_env(smtp_port), queues=("mail", "periodic"),
            log_path=LOG_DIR / f"worker-{dbname}-{name}.log",
        )
        started.append(worker.start())
        return worker.wait_ready()

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture(scope="module")
def sink() -> Iterator[MailSink]:
    server = MailSink(services.free_port()).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def worker(auth_db: str, sink: MailSink, start_mail_worker: Callable[..., services.Service]) -> services.Service:
    return start_mail_worker(auth_db, sink.port)


def mails_to(sink: MailSink, email: str, count: int = 1, timeout: float = 30.0) -> list[EmailMessage]:
    deadline = time.monotonic() + timeout
    while True:
        found = [m for m in sink.messages if m["To"] == email]
        if len(found) >= count:
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(found)} of {count} mails to {email} within {timeout} s")
        time.sleep(0.05)


def token_of(message: EmailMessage, path: str) -> str:
    link = link_of(message)
    assert link is not None and link.startswith(f"{PUBLIC_BASE_URL}{path}?token="), link
    return urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["token"][0]


def outbox(dbname: str, email: str) -> list[tuple]:
    with owner_connect(dbname) as conn:
        return conn.execute(
            "select kind, token is null, sent_at is not null, attempts, failures, message_id"
            " from data.mail_outbox where recipient = %s order by id", (email,)).fetchall()


def test_forgot_mail_reset_and_every_old_token_dies(api: Api, rest: Api, sink: MailSink, worker, auth_db: str):
    email, ip = new_email(), new_ip()
    first = api.register(email, "old password one")
    second = api.login(email, "old password one").json()
    for pair in (first, second):
        assert rest.get("/me", token=pair["access_token"], headers=ME).status_code == 200

    response = api.post("/auth/password/forgot", {"email": email.upper()}, ip=ip)
    assert response.status_code == 202, response.text
    [reset_mail] = [m for m in mails_to(sink, email, 2) if "password" in m["Subject"].lower()]
    assert reset_mail["From"] == "Kitsu <no-reply@kitsu.test>" and reset_mail["Message-ID"]
    html = reset_mail.get_body(preferencelist=("html",))
    assert html is not None and PUBLIC_BASE_URL + "/reset-password?token=" in html.get_content()
    token = token_of(reset_mail, "/reset-password")
    assert len(token) >= 43  # 256 bits, url-safe base64

    assert api.post("/auth/password/reset", {"token": token, "new_password": "short"}).status_code == 422
    response = api.post("/auth/password/reset", {"token": token, "new_password": "new password two"}, ip=ip)
    assert response.status_code == 204, response.text

    assert api.login(email, "old password one").status_code == 401
    assert api.login(email, "new password two").status_code == 200
    for pair in (first, second):  # every session ended: earlier access tokens die at PostgREST
        assert rest.get("/me", token=pair["access_token"], headers=ME).status_code == 401
        assert api.post("/auth/refresh", {"refresh_token": pair["refresh_token"]}).status_code == 401
    again = api.post("/auth/password/reset", {"token": token, "new_password": "third password"})
    assert again.status_code == 400 and again.json()["error"]["code"] == "invalid_reset_token"
    assert api.login(email, "new password two").status_code == 200

    with owner_connect(auth_db) as conn:  # only the hash is stored; the delivered mail forgot it
        stored = conn.execute("select count(*) from data.account_tokens where token_hash = sha256(%s::bytea)"
                              " and used_at is not null", (token.encode(),)).fetchone()
        assert stored == (1,)
        assert conn.execute("select count(*) from data.mail_outbox where token = %s", (token,)).fetchone() == (0,)
    assert all(sent and cleared for _, cleared, sent, *_ in outbox(auth_db, email))


def test_unknown_email_gets_the_same_202_and_no_mail(api: Api, sink: MailSink, worker, auth_db: str):
    known, unknown = new_email(), new_email()
    api.register(known)
    mails_to(sink, known)  # the verification mail
    answers = [api.post("/auth/password/forgot", {"email": e}, ip=new_ip()) for e in (known, unknown)]
    assert [a.status_code for a in answers] == [202, 202]
    assert answers[0].content == answers[1].content
    mails_to(sink, known, 2)
    time.sleep(1.0)  # the worker had time to send one, had one been queued
    assert not [m for m in sink.messages if m["To"] == unknown]
    assert outbox(auth_db, unknown) == []


def test_reset_tokens_expire_and_unknown_ones_are_400(api: Api, sink: MailSink, worker, auth_db: str):
    email = new_email()
    api.register(email)
    assert api.post("/auth/password/forgot", {"email": email}, ip=new_ip()).status_code == 202
    [mail] = [m for m in mails_to(sink, email, 2) if "password" in m["Subject"].lower()]
    token = token_of(mail, "/reset-password")
    with owner_connect(auth_db) as conn:  # 30 minutes later
        conn.execute("update data.account_tokens set created_at = created_at - interval '31 minutes',"
                     " expires_at = expires_at - interval '31 minutes' where token_hash = sha256(%s::bytea)",
                     (token.encode(),))
    for bad in (token, "x" * 43):
        response = api.post("/auth/password/reset", {"token": bad, "new_password": "whatever long"})
        assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_reset_token"


def test_forgot_and_resend_are_rate_limited(api: Api, start_auth, auth_db: str):
    limited = start_auth(auth_db, workers=1, AUTH_FORGOT_EMAIL_LIMIT="2", AUTH_FORGOT_IP_LIMIT="3",
                         AUTH_VERIFY_RESEND_LIMIT="1")
    limited_api = Api(limited.url or "")
    pair = limited_api.register()
    codes = [limited_api.post("/auth/email/verify/resend", token=pair["access_token"]).status_code for _ in range(2)]
    assert codes == [202, 429]  # per account
    email = new_email()
    codes = [limited_api.post("/auth/password/forgot", {"email": email}, ip=new_ip()).status_code for _ in range(3)]
    assert codes == [202, 202, 429]
    ip = new_ip()
    codes = [limited_api.post("/auth/password/forgot", {"email": new_email()}, ip=ip).status_code for _ in range(4)]
    assert codes == [202, 202, 202, 429]
    refused = limited_api.post("/auth/password/forgot", {"email": new_email()}, ip=ip)
    assert refused.json()["error"]["code"] == "rate_limited" and int(refused.headers["Retry-After"]) >= 1


def test_registration_mails_a_verification_link_and_me_shows_it(api: Api, rest: Api, sink: MailSink, worker):
    email = new_email()
    pair = api.register(email)
    assert rest.get("/me", token=pair["access_token"], headers=ME).json()["email_verified_at"] is None
    [mail] = mails_to(sink, email)
    token = token_of(mail, "/verify-email")
    assert api.post("/auth/email/verify", {"token": token}).status_code == 204
    assert rest.get("/me", token=pair["access_token"], headers=ME).json()["email_verified_at"] is not None
    again = api.post("/auth/email/verify", {"token": token})
    assert again.status_code == 400 and again.json()["error"]["code"] == "invalid_verification_token"
    # verified: a resend is still 202, and sends nothing
    assert api.post("/auth/email/verify/resend", token=pair["access_token"]).status_code == 202
    time.sleep(1.0)
    assert len(mails_to(sink, email)) == 1


def test_resend_needs_a_session_and_sends_a_new_link(api: Api, rest: Api, sink: MailSink, worker):
    email = new_email()
    pair = api.register(email)
    assert api.post("/auth/email/verify/resend").status_code == 401
    assert api.post("/auth/email/verify/resend", token=pair["access_token"]).status_code == 202
    first, second = mails_to(sink, email, 2)
    assert first["Message-ID"] != second["Message-ID"]
    assert api.post("/auth/email/verify", {"token": token_of(second, "/verify-email")}).status_code == 204
    assert rest.get("/me", token=pair["access_token"], headers=ME).json()["email_verified_at"] is not None


def test_forgot_takes_the_same_time_for_known_and_unknown_emails(start_auth, make_db):
    """Medians of >= 50 interleaved trials each differ by < 10 % of one password hash (the
    production argon2 parameters). No worker runs, so nothing else competes for the cores."""
    dbname = make_db()
    service = start_auth(dbname, workers=1, **OWASP_HASHING, AUTH_ARGON2_ALLOW_WEAK="false",
                         AUTH_FORGOT_EMAIL_LIMIT="1000", AUTH_FORGOT_IP_LIMIT="1000")
    timed = Api(service.url or "")
    known = new_email()
    timed.register(known)
    hasher = argon2.PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
    hash_seconds = statistics.median(_timed(lambda: hasher.hash("a password")) for _ in range(7))

    with httpx.Client(base_url=timed.url, headers={"X-Forwarded-For": new_ip()}) as client:
        def forgot(email: str) -> None:
            assert client.post("/auth/password/forgot", json={"email": email}).status_code == 202

        for _ in range(10):  # warm up both paths (connections, plans)
            forgot(known), forgot(new_email())
        known_times, unknown_times = [], []
        for _ in range(60):
            known_times.append(_timed(lambda: forgot(known)))
            unknown_times.append(_timed(lambda: forgot(new_email())))
    difference = abs(statistics.median(known_times) - statistics.median(unknown_times))
    print(f"forgot median known {statistics.median(known_times) * 1000:.2f} ms, unknown "
          f"{statistics.median(unknown_times) * 1000:.2f} ms, one hash {hash_seconds * 1000:.1f} ms")
    assert difference < 0.1 * hash_seconds


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def test_smtp_down_for_a_while_then_the_mail_is_delivered(api: Api, make_db, start_auth,
                                                          start_mail_worker):
    dbname = make_db()
    local = Api(start_auth(dbname, workers=1).url or "")
    port = services.free_port()
    start_mail_worker(dbname, port, name="down")  # nothing listens on the port yet
    email = new_email()
    local.register(email)
    deadline = time.monotonic() + 30
    while not (rows := outbox(dbname, email)) or rows[0][4] < 2:  # two failed attempts
        assert time.monotonic() < deadline, rows
        time.sleep(0.1)
    with owner_connect(dbname) as conn:
        delivered, pending, failed_attempts, last_error = conn.execute(
            "select delivered, pending, failed_attempts, last_error from private.mail_delivery").fetchone()
    assert (delivered, pending) == (0, 1) and failed_attempts >= 2 and "Connection" in last_error
    late = MailSink(port).start()
    try:
        [mail] = late.wait_for(1)
        assert mail["To"] == email
        deadline = time.monotonic() + 10
        while not outbox(dbname, email)[0][2]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(1.5)  # retries are over: it is not sent again
        assert len(late.messages) == 1
    finally:
        late.stop()


def test_a_worker_killed_while_sending_delivers_after_restart_with_one_message_id(
        make_db, start_auth, start_mail_worker):
    dbname = make_db()
    local = Api(start_auth(dbname, workers=1).url or "")
    server = MailSink(services.free_port()).start()
    try:
        server.hold_next_seconds = 30  # the first mail arrives, the 250 never does
        first = start_mail_worker(dbname, server.port, name="doomed")
        email = new_email()
        local.register(email)
        server.wait_for(1)
        first.signal(signal.SIGKILL)
        first.process.wait(10)
        first.kill_leftovers()
        start_mail_worker(dbname, server.port, name="after")  # its sweeper requeues the mail
        messages = server.wait_for(2, timeout=60)
        assert {m["Message-ID"] for m in messages} == {outbox(dbname, email)[0][5]}
        deadline = time.monotonic() + 10
        while not outbox(dbname, email)[0][2]:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    finally:
        server.stop()
