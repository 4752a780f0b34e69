"""The cut-over (contract §13): the old schema built from its documented DDL, filled with every
defect, imported by `python -m legacy_import` as a real process."""

from __future__ import annotations

import signal
from collections.abc import Callable

import psycopg
import pytest

from database import build as db
from tests.conftest import owner_connect
from tests.helpers import PLACEHOLDER_HASH
from tests.legacy.conftest import importer, run_import

ALICE = "00000001-0000-4000-8000-000000000000"
ALICE_DUPLICATE = "00000002-0000-4000-8000-000000000000"
BEBOP, TRIGUN, BLANK, MONSTER = (f"a000000{i}-0000-4000-8000-000000000000" for i in (1, 2, 3, 4))

# the end state, without the columns a database fills in itself (updated_at, default role times)
SNAPSHOT = {
    "users": "select id, email, password_hash, avatar_url, is_active, created_at from data.users",
    "user_roles": "select user_id, role, granted_by from data.user_roles",
    "anime": "select id, shikimori_id, title, state, source, locked_fields, locked_at, deleted_at, created_by,"
             " poster_url, season from data.anime",
    "episodes": "select id, anime_id, number, title, source, locked_fields, deleted_at from data.episodes",
    "favorites": "select user_id, anime_id, list_status, created_at from data.favorites",
    "watch_progress": "select user_id, anime_id, episode_number, episode_id, position_seconds, progress_percent,"
                      " last_watched_at from data.watch_progress",
    "audit_log": "select actor_id, actor_type, action, entity_id, before, after, ip, created_at from data.audit_log",
    "ingest_settings": "select mode, auto_publish, autoupdate_enabled, autoupdate_interval_minutes,"
                       " allowed_translation_types, blacklist_shikimori_ids from data.ingest_settings",
    "issues": "select step, legacy_id, action, reason from legacy.issues",
}


def snapshot(dbname: str) -> dict[str, list[tuple]]:
    with owner_connect(dbname) as conn:
        return {name: sorted(map(str, conn.execute(query).fetchall())) for name, query in SNAPSHOT.items()}


def full_state(dbname: str) -> dict[str, str]:
    """Every column of every written table (updated_at included): proves nothing was rewritten."""
    with owner_connect(dbname) as conn:
        return {t: conn.execute(f"select md5(coalesce(string_agg(x::text, ',' order by x::text), '')) from {t} x")
                .fetchone()[0]
                for t in ("data.users", "data.user_roles", "data.anime", "data.episodes", "data.favorites",
                          "data.watch_progress", "data.audit_log", "data.ingest_settings")}


def test_counts_per_step(imported):
    _, report = imported
    assert report == {
        # step: (read, written, skipped, repaired)
        "users": (6, 3, 3, 2),
        "user_roles": (7, 2, 5, 0),
        "anime": (4, 3, 1, 4),
        "bindings": (3, 2, 1, 0),
        "episodes": (5, 2, 3, 0),
        "favorites": (7, 4, 3, 0),
        "watch_progress": (6, 2, 4, 1),
        "audit_logs": (5, 2, 3, 1),
        "parser_settings": (1, 1, 0, 2),
    }


def test_every_defect_is_reported_with_its_reason(imported):
    target, _ = imported
    with owner_connect(target) as conn:
        issues = set(conn.execute("select step, legacy_id, reason from legacy.issues").fetchall())
    assert {
        ("users", ALICE_DUPLICATE, "email_case_duplicate_merged"),
        ("users", ALICE, "email_normalised"),
        ("users", "00000004-0000-4000-8000-000000000000", "email_invalid"),
        ("users", "00000005-0000-4000-8000-000000000000", "password_hash_not_legacy_bcrypt"),
        ("users", "00000003-0000-4000-8000-000000000000", "avatar_dropped_not_https"),
        ("user_roles", "90000002-0000-4000-8000-000000000000", "duplicate_role_link"),
        ("user_roles", "90000003-0000-4000-8000-000000000000", "duplicate_role_link"),
        ("user_roles", "90000004-0000-4000-8000-000000000000", "role_unknown"),
        ("user_roles", "90000005-0000-4000-8000-000000000000", "system_role_for_person"),
        ("anime", BLANK, "title_missing"),
        ("anime", MONSTER, "state_unknown_set_draft"),
        ("episodes", "e0000003-0000-4000-8000-000000000000", "duplicate_number"),
        ("favorites", "f0000003-0000-4000-8000-000000000000", "anime_missing"),
        ("favorites", "f0000004-0000-4000-8000-000000000000", "duplicate_after_email_merge"),
        ("watch_progress", "c1000004-0000-4000-8000-000000000000", "anime_missing"),
        ("watch_progress", "c1000006-0000-4000-8000-000000000000", "no_position"),
        ("watch_progress", "c1000003-0000-4000-8000-000000000000", "percent_out_of_range_clamped"),
        ("audit_logs", "cc000002-0000-4000-8000-000000000000", "actor_type_invalid"),
        ("audit_logs", "cc000003-0000-4000-8000-000000000000", "user_actor_missing"),
    } <= issues


def test_sample_values(imported):
    target, _ = imported
    with owner_connect(target) as conn:
        alice = conn.execute("select email, password_hash, avatar_url, is_active, created_at::date::text"
                             " from data.users where id = %s", (ALICE,)).fetchone()
        assert alice[0] == "alice@example.com" and alice[1].startswith("$2b$04$")
        assert alice[2:] == ("https://cdn.example.com/alice.png", True, "2023-01-01")
        assert conn.execute("select is_active, avatar_url from data.users where email = 'bob@example.com'"
                            ).fetchone() == (False, None)
        roles = conn.execute("select role from data.user_roles where user_id = %s order by role", (ALICE,)).fetchall()
        assert roles == [("admin",), ("user",)]
        bebop = conn.execute("select shikimori_id, state, locked_fields = private.anime_content_fields(),"
                             " locked_at::date::text from data.anime where id = %s", (BEBOP,)).fetchone()
        assert bebop == (1, "published", True, "2023-08-01")
        trigun = conn.execute("select shikimori_id, state, locked_fields, deleted_at is not null, delete_reason"
                              " from data.anime where id = %s", (TRIGUN,)).fetchone()
        assert trigun == (30, "draft", ["title", "description"], True, "duplicate")
        assert conn.execute("select state, season, poster_url, created_by from data.anime where id = %s",
                            (MONSTER,)).fetchone() == ("draft", None, None, None)
        assert conn.execute("select number, title, locked_fields from data.episodes where anime_id = %s"
                            " order by number", (BEBOP,)).fetchall() == [
            (1, "Asteroid Blues", []), (2, "Stray Dog Strut", ["*"])]
        # alice's list: her own favorites plus the merged account's title she did not have
        assert conn.execute("select anime_id::text, created_at::date::text from data.favorites where user_id = %s"
                            " order by anime_id", (ALICE,)).fetchall() == [
            (BEBOP, "2023-02-01"), (TRIGUN, "2023-02-02"), (MONSTER, "2024-02-01")]
        assert conn.execute("select anime_id::text, episode_number, episode_id is not null, position_seconds,"
                            " progress_percent::float from data.watch_progress where user_id = %s order by anime_id",
                            (ALICE,)).fetchall() == [(BEBOP, 2, True, 300, 40.0), (TRIGUN, 3, False, None, 100.0)]
        audit = conn.execute("select actor_id::text, host(ip), before from data.audit_log"
                             " where action = 'anime.update'").fetchall()
        assert audit == [(ALICE, "203.0.113.7", {"title": "Bebop"})]
        assert conn.execute("select mode, auto_publish, autoupdate_enabled, autoupdate_interval_minutes,"
                            " allowed_translation_types, allowed_translations, blacklist_shikimori_ids"
                            " from data.ingest_settings").fetchone() == (
            "auto", True, True, 30, ["subtitles", "voice"], ["AniLibria"], [123])


def test_a_second_run_writes_nothing(imported, old_db):
    target, _ = imported
    before, state = snapshot(target), full_state(target)
    report = run_import(target, old_db)
    assert {step: written for step, (_, written, _, _) in report.items()} == dict.fromkeys(report, 0)
    assert snapshot(target) == before and full_state(target) == state


def test_dry_run_writes_nothing_and_reports_the_same(old_db, make_db: Callable[[], str], imported):
    target = make_db()
    before, state = snapshot(target), full_state(target)
    report = run_import(target, old_db, "--dry-run")
    assert report == imported[1]  # what a real run would write
    assert snapshot(target) == before and full_state(target) == state


def test_a_run_killed_half_way_and_restarted_ends_in_the_same_state(old_db, make_db, imported):
    target = make_db()
    process = importer(target, old_db, LEGACY_IMPORT_PAUSE_AFTER="land:favorites")
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("paused after land:favorites"):
            break
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    with owner_connect(target) as conn:  # users, titles and episodes committed; favorites landed only
        assert conn.execute("select count(*) from data.users").fetchone() == (3,)
        assert conn.execute("select count(*) from data.favorites").fetchone() == (0,)
    run_import(target, old_db)
    assert snapshot(target) == snapshot(imported[0])


def test_a_second_old_database_with_other_rows_is_merged_by_upsert(make_db):
    """Runs are upserts keyed by the old ids: importing a changed old database updates in place."""
    from tests.legacy.conftest import create_old_database

    name = create_old_database()
    try:
        target = make_db()
        run_import(target, db.role_url(name))
        with psycopg.connect(db.role_url(name), autocommit=True) as old:
            old.execute("update anime set title = 'Cowboy Bebop (TV)' where id = %s", (BEBOP,))
        report = run_import(target, db.role_url(name))
        assert report["anime"][1] == 1 and report["favorites"][1] == 0
        with owner_connect(target) as conn:
            (title,) = conn.execute("select title from data.anime where id = %s", (BEBOP,)).fetchone()
            assert title == "Cowboy Bebop (TV)"
    finally:
        db.drop_database(name)


def test_the_importer_role_may_only_land_and_import(imported):
    target, _ = imported
    with psycopg.connect(db.role_url(target, "legacy_importer"), autocommit=True) as conn:
        for statement in ("select 1 from data.users", "insert into data.favorites (user_id, anime_id) values "
                          "(gen_random_uuid(), gen_random_uuid())", "select 1 from legacy.users",
                          "select 1 from legacy.issues", "select legacy.write_users()"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)
        with pytest.raises(psycopg.errors.InvalidParameterValue):
            conn.execute("select * from legacy.import_step('users; drop table data.users')")


def test_the_bulk_first_import_leaves_the_schema_as_it_was(imported, make_db):
    """The first import into empty favorites / watch_progress drops their foreign keys and
    secondary indexes and re-creates them at the end: the schema is the migrated one exactly, and
    the keys refuse a dangling row."""
    from tests.db.test_migrations import schema_dump

    target, _ = imported
    assert schema_dump(target) == schema_dump(make_db())
    with owner_connect(target) as conn, pytest.raises(psycopg.errors.ForeignKeyViolation):
        conn.execute("insert into data.favorites (user_id, anime_id) values (gen_random_uuid(), %s)", (BEBOP,))


def test_an_email_already_registered_here_is_not_taken_over(old_db, make_db):
    """Someone who signed up here before the cut-over keeps their account: the old account of the
    same e-mail is skipped (reported), not merged into theirs, and its rows are skipped too."""
    target = make_db()
    with owner_connect(target) as conn:
        conn.execute("insert into data.users (email, password_hash) values ('bob@example.com', %s)",
                     (PLACEHOLDER_HASH,))
    report = run_import(target, old_db)
    assert report["users"][:3] == (6, 2, 4)
    with owner_connect(target) as conn:
        reasons = conn.execute("select step, reason from legacy.issues"
                               " where legacy_id = '00000003-0000-4000-8000-000000000000'"
                               " or detail ->> 'user_id' = '00000003-0000-4000-8000-000000000000'").fetchall()
        assert ("users", "email_taken_in_new_system") in reasons and ("favorites", "user_not_imported") in reasons
        assert conn.execute("select password_hash from data.users where email = 'bob@example.com'"
                            ).fetchone() == (PLACEHOLDER_HASH,)


def test_two_runs_at_once_are_refused(old_db, make_db):
    target = make_db()
    first = importer(target, old_db, LEGACY_IMPORT_PAUSE_AFTER="land:users")
    assert first.stdout is not None
    try:
        for line in first.stdout:
            if line.startswith("paused after"):
                break
        second = importer(target, old_db)
        output, _ = second.communicate(timeout=60)
        assert second.returncode != 0 and "another legacy import is running" in output
    finally:
        first.kill()
        first.wait(timeout=30)


def test_an_old_database_without_some_tables_or_columns_still_imports(make_db):
    """An older schema (before migration 0006: no avatar; no parser tables) lands what it has:
    missing columns as nulls, missing tables as empty, each said in the report."""
    from tests.legacy.conftest import create_old_database

    name = create_old_database()
    try:
        with psycopg.connect(db.role_url(name), autocommit=True) as old:
            old.execute("alter table users drop column avatar;"
                        " drop table anime_external_binding, anime_schedule, anime_episodes_external,"
                        " anime_translations, anime_external, parser_job_logs, parser_jobs, parser_settings,"
                        " parser_sources")
        target = make_db()
        process = importer(target, db.role_url(name))
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output
        assert "note: users: columns absent in the old database: avatar" in output
        assert "note: parser_settings: absent in the old database" in output
        with owner_connect(target) as conn:
            assert conn.execute("select count(*), count(avatar_url) from data.users").fetchone() == (3, 0)
            assert conn.execute("select count(*) from data.favorites").fetchone() == (4,)
    finally:
        db.drop_database(name)
