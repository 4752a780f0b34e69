"""Small seeding helpers for tests (run as kitsu_owner, which bypasses RLS)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import psycopg

# a syntactically valid argon2id hash; nobody signs in with it in foundation tests
PLACEHOLDER_HASH = "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$aGFzaGhhc2hoYXNoaGFzaGhhc2g"


def create_user(conn: psycopg.Connection, email: str | None = None) -> tuple[uuid.UUID, uuid.UUID]:
    """A person with one live session; returns (user_id, session_id)."""
    email = email or f"user-{uuid.uuid4().hex[:10]}@example.test"
    user_id = conn.execute(
        "insert into data.users (email, password_hash) values (%s, %s) returning id",
        (email, PLACEHOLDER_HASH)).fetchone()[0]
    session_id = conn.execute(
        "insert into data.sessions (user_id, expires_at, user_agent, ip) "
        "values (%s, now() + interval '30 days', 'pytest', '127.0.0.1') returning id",
        (user_id,)).fetchone()[0]
    return user_id, session_id


def create_anime(conn: psycopg.Connection, title: str | None = None, *, state: str = "published",
                 deleted: bool = False, episodes: int = 0, **columns: object) -> uuid.UUID:
    """A catalog title (published unless told otherwise), with ``episodes`` episodes."""
    values = {"title": title or f"Title {uuid.uuid4().hex[:8]}", "state": state, **columns}
    if deleted:
        values["deleted_at"] = datetime.now(UTC)
    names = ", ".join(values)
    marks = ", ".join(["%s"] * len(values))
    anime_id = conn.execute(f"insert into data.anime ({names}) values ({marks}) returning id",
                            list(values.values())).fetchone()[0]
    for number in range(1, episodes + 1):
        conn.execute("insert into data.episodes (anime_id, number, title, aired_at) values (%s, %s, %s, %s)",
                     (anime_id, number, f"Episode {number}", datetime.now(UTC) - timedelta(days=7 * number)))
    return anime_id


def sync_in_sql(conn: psycopg.Connection, *, titles: list | None = None, kodik: list | None = None,
                publish: bool = True, args: dict | None = None) -> None:
    """What a worker's sync_catalog (titles) and sync_episodes (kodik results) do in SQL: begin
    a run (with the job's `args`), stage one page, finish the run, which publishes as the system
    actor (unless not, or a dry run)."""
    from psycopg.types.json import Jsonb

    for task, items in (("sync_catalog", titles), ("sync_episodes", kodik)):
        if items is None:
            continue
        job = 90000 + conn.execute("select count(*) from data.sync_runs").fetchone()[0]
        run = conn.execute("select id from ingest.begin_run(%s, %s, %s, null, 1)",
                           (task, job, Jsonb(args or {}))).fetchone()[0]
        if task == "sync_catalog":
            conn.execute("select ingest.stage_anime(%s, %s, '{\"page\": 2}', %s, 'https://shikimori.example', 1)",
                         (run, job, Jsonb(items)))
        else:
            conn.execute("select ingest.stage_episodes(%s, %s, '{\"done\": true}', %s, 1, 1)", (run, job, Jsonb(items)))
        conn.execute("select ingest.finish_run(%s, %s, 'succeeded', p_publish => %s)", (run, job, publish))
