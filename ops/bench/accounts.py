"""Accounts benchmark (issue 11, contract §12): POST /auth/password/forgot requests/s and p95 at
50 clients (wrk, ops/bench/auth_login.lua in its `forgot` mode: every other request a seeded
person, the others unknown emails; the rate limits raised so every request is a 202), then the
mails delivered per second by one send_mail worker process into a local SMTP sink
(ops/mail_sink.py, in this process).

Usage: python -m ops.bench.accounts [--duration 15] [--connections 50] [--mails 2000] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time

import psycopg

from auth_service import keys
from database import build as db
from ops import services
from ops.bench.auth import BENCH_DB, PEOPLE, group_cpu, machine_cpu, run_wrk, seed
from ops.bench.cpu import cpu_seconds
from ops.launch import auth_process, worker_process
from ops.mail_sink import MailSink

FORGOT_BODY_BYTES = len('{"email":"bench-123@example.test"}')


def forgot_figures(url: str, connections: int, duration: int, pgid: int) -> dict:
    run_wrk(url, 10, 3, pgid, mode="forgot")  # warm-up: pools, prepared statements
    figures = run_wrk(url, connections, duration, pgid, mode="forgot")
    figures["accepted_per_s"] = figures["statuses"].get("202", 0) / figures["seconds"]
    return figures


def queue_mails(count: int) -> None:
    """Exactly ``count`` undelivered mails (and their send_mail jobs), nothing else waiting."""
    with psycopg.connect(db.role_url(BENCH_DB, "kitsu_owner"), autocommit=True) as conn:
        conn.execute("delete from procrastinate.procrastinate_jobs where task_name = 'send_mail'")
        conn.execute("update data.mail_outbox set sent_at = now(), token = null where sent_at is null")
        conn.execute(
            "select private.queue_mail(u.id, 'password_reset', u.email, 'bench-token-' || g)"
            "  from generate_series(1, %s) g"
            "  join data.users u on u.email = 'bench-' || (g %% %s + 1) || '@example.test'",
            (count, PEOPLE))


def delivery_figures(count: int) -> dict:
    sink = MailSink(services.free_port()).start()
    env = {"SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(sink.port), "SMTP_STARTTLS": "false",
           "PUBLIC_BASE_URL": "https://kitsu.bench", "INGEST_POLL_SECONDS": "0.2"}
    worker = worker_process(BENCH_DB, name="bench-mail", env=env, queues=("mail",))
    owner = db.role_url(BENCH_DB, "kitsu_owner")
    busy0, total0 = machine_cpu()
    pg0 = cpu_seconds(("postgres",))["postgres"]
    worker.start()
    assert worker.process is not None
    started = time.monotonic()
    try:
        with psycopg.connect(owner, autocommit=True) as conn:
            while conn.execute("select pending from private.mail_delivery").fetchone()[0] > 0:
                if time.monotonic() - started > 600:
                    raise TimeoutError("mails not delivered within 10 minutes")
                time.sleep(0.2)
            first, last, failures = conn.execute(
                "select min(sent_at), max(sent_at), sum(failures) from data.mail_outbox"
                " where sent_at > now() - interval '1 hour' and recipient like 'bench-%%' and attempts > 0").fetchone()
        elapsed = time.monotonic() - started
        worker_cores = group_cpu(worker.process.pid) / elapsed
    finally:
        worker.stop()
        sink.stop()
    busy1, total1 = machine_cpu()
    seconds = (last - first).total_seconds()
    return {
        "mails": count,
        "received_by_sink": len(sink.messages),
        "failed_attempts": failures,
        "delivered_per_s": round((count - 1) / max(seconds, 0.001), 1),
        "first_to_last_s": round(seconds, 2),
        "mail_bytes": len(sink.messages[0].as_bytes()) if sink.messages else 0,
        "worker_cores": round(worker_cores, 2),
        "postgres_cores": round((cpu_seconds(("postgres",))["postgres"] - pg0) / elapsed, 2),
        "machine_pct": round(100 * (busy1 - busy0) / max(total1 - total0, 1), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=int(os.environ.get("AUTH_WORKERS", os.cpu_count() or 2)))
    parser.add_argument("--keep", action="store_true", help="keep the bench database")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (Debian package wrk)")
    load_before = os.getloadavg()
    seed()
    env = {
        "AUTH_JWT_KEYS": json.dumps({"bench": keys.generate_private_pem()}),
        "AUTH_TRUSTED_PROXIES": "127.0.0.1/32",  # wrk sends each person's X-Forwarded-For
        # every request a 202: the limits are not what is measured (hits per key stay < 10,000)
        "AUTH_FORGOT_EMAIL_LIMIT": "10000",
        "AUTH_FORGOT_IP_LIMIT": "10000",
    }
    service = auth_process(BENCH_DB, port=services.free_port(), workers=args.workers, env=env)
    service.start().wait_ready(60)
    assert service.process is not None and service.url
    try:
        forgot = forgot_figures(service.url, args.connections, args.duration, service.process.pid)
    finally:
        service.stop()
    print(json.dumps(forgot), flush=True)
    queue_mails(args.mails)
    mail = delivery_figures(args.mails)
    print(json.dumps(mail), flush=True)
    if not args.keep:
        db.drop_database(BENCH_DB)

    cores = os.cpu_count() or 1
    cpu = forgot["cpu"]
    print(f"\nload before: {' '.join(f'{x:.2f}' for x in load_before)}; after: "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} ({cores} cores)")
    print(f"forgot (wrk 1 thread, {args.connections} connections, {args.duration}s, "
          f"{FORGOT_BODY_BYTES}-byte JSON body, "
          f"half known half unknown; auth_service {args.workers} workers): {forgot['accepted_per_s']:.0f} req/s, "
          f"p50 {forgot['p50_ms']:.1f} ms, p95 {forgot['p95_ms']:.1f} ms, p99 {forgot['p99_ms']:.1f} ms, "
          f"statuses {forgot['statuses']}; CPU machine {cpu['machine_pct']}%, cores auth {cpu['auth_cores']} "
          f"/ postgres {cpu['postgres_cores']} / wrk {cpu['wrk_cores']}")
    print(f"send_mail (one worker process, concurrency 4, SMTP to a local aiosmtpd sink, ~{mail['mail_bytes']} bytes "
          f"per mail, text + HTML): {mail['delivered_per_s']} mails/s ({mail['mails']} in {mail['first_to_last_s']} s,"
          f" {mail['failed_attempts']} failed attempts); CPU machine {mail['machine_pct']}%, worker "
          f"{mail['worker_cores']} cores, postgres {mail['postgres_cores']}")


if __name__ == "__main__":
    main()
