"""sql/ is the truth, migrations/ the path: applying every migration must give the schema that
loading sql/ gives (style H3). The comparison is a normalised `pg_dump --schema-only`."""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import psycopg
import pytest

from database import build as db
from tests.helpers import PLACEHOLDER_HASH


def schema_dump(dbname: str) -> str:
    """Schema of ``dbname`` without yoyo's bookkeeping tables, comments and blank lines."""
    output = subprocess.run(
        ["pg_dump", "--schema-only", "--no-owner", "--exclude-table=public._yoyo*",
         "--exclude-table=public.yoyo_lock", "--dbname", db.role_url(dbname)],
        check=True, capture_output=True, text=True).stdout
    lines = [line for line in output.splitlines()
             if line.strip() and not line.startswith("--") and not line.startswith("SET ")
             and not line.startswith("\\")]
    return re.sub(r"\n{2,}", "\n", "\n".join(lines))


def build_from_sql(dbname: str) -> None:
    db.load_state(dbname)
    db.apply_code(dbname)
    db.ensure_autonomous(dbname)  # as db.migrate does


def test_migrations_reach_the_schema_declared_in_sql(template_db, make_db):
    from_sql = make_db_empty(make_db)
    build_from_sql(from_sql)
    migrated, declared = schema_dump(template_db), schema_dump(from_sql)
    assert migrated == declared


def test_the_comparison_sees_a_drift(template_db, make_db):
    drifted = make_db_empty(make_db)
    build_from_sql(drifted)
    with psycopg.connect(db.role_url(drifted, "kitsu_owner")) as conn:
        conn.execute("alter table data.favorites add column planted_drift text")
    assert schema_dump(template_db) != schema_dump(drifted)


def test_migrating_again_is_a_no_op(template_db):
    assert db.migrate(template_db) == 0


def make_db_empty(make_db) -> str:
    """An empty database (no migrations): reuse the factory's naming and cleanup."""
    name = make_db()
    db.drop_database(name)
    db.ensure_database(name)
    return name


# --- landed migrations are never edited --------------------------------------------------------

CHECKSUMS = db.MIGRATIONS_DIR / "checksums.txt"
# the migrations of the previous release: the upgrade test starts from them
PREVIOUS_RELEASE = ["0001.foundation", "0002.watch-history-delete", "0003.catalog-browse-indexes",
                    "0010.auth-tokens-and-rate-limits", "0020.procrastinate-schema", "0021.ingest"]


def checksum_violations(directory: Path, ledger: str) -> list[str]:
    """Migrations whose text differs from the ledger (sha256 + name per line), or missing from it."""
    recorded = dict(reversed(line.split()) for line in ledger.splitlines() if line.strip())
    found = {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in directory.glob("*.sql")}
    edited = [name for name in sorted(found) if name in recorded and found[name] != recorded[name]]
    return ([f"{name}: edited after it landed" for name in edited]
            + [f"{name}: not in checksums.txt (add its sha256 when it lands)"
               for name in sorted(set(found) - set(recorded))]
            + [f"{name}: recorded but missing" for name in sorted(set(recorded) - set(found))])


def test_landed_migrations_are_unchanged():
    assert checksum_violations(db.MIGRATIONS_DIR, CHECKSUMS.read_text()) == []


def test_the_checksum_test_sees_an_edited_migration(tmp_path):
    for path in db.MIGRATIONS_DIR.glob("*.sql"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    edited = tmp_path / "0002.watch-history-delete.sql"
    edited.write_text(edited.read_text() + "\n-- planted edit\n")
    (tmp_path / "0099.unrecorded.sql").write_text("select 1;\n")
    assert checksum_violations(tmp_path, CHECKSUMS.read_text()) == [
        "0002.watch-history-delete.sql: edited after it landed",
        "0099.unrecorded.sql: not in checksums.txt (add its sha256 when it lands)"]


# --- seed rows -----------------------------------------------------------------------------------

def data_dump(dbname: str) -> str:
    """Every row of our schemas (seed rows: permissions, roles, settings, limits), sorted."""
    output = subprocess.run(
        ["pg_dump", "--data-only", "--inserts", "--no-owner", "--schema=data", "--schema=auth",
         "--schema=ingest", "--schema=private", "--dbname", db.role_url(dbname)],
        check=True, capture_output=True, text=True).stdout
    rows = (line for line in output.splitlines() if line.startswith("INSERT"))
    # when a row was written is not part of what it says
    return "\n".join(sorted(re.sub(r"'\d{4}-\d\d-\d\d \d\d:\d\d:\d\d[.\d]*\+00'", "'<time>'", row) for row in rows))


def test_migrations_give_the_seed_rows_declared_in_sql(template_db, make_db):
    from_sql = make_db_empty(make_db)
    build_from_sql(from_sql)
    migrated, declared = data_dump(template_db), data_dump(from_sql)
    assert migrated and migrated == declared


# --- upgrading a database that holds data --------------------------------------------------------

FILL = f"""
insert into data.users (id, email, password_hash) values
  ('00000000-0000-0000-0000-000000000001', 'old@example.test', '{PLACEHOLDER_HASH}');
insert into data.genres (id, name, name_ru) values (1, 'Action', 'Экшен'), (4, 'Comedy', null);
insert into data.anime (id, shikimori_id, title, title_ru, synonyms, state, score) values
  ('00000000-0000-0000-0000-00000000000a', 1, 'Shōjo Kakumei Utena', 'Юная революционерка Утэна', '{{Utena}}',
   'published', 8.1),
  ('00000000-0000-0000-0000-00000000000b', 2, 'Draft Title', null, '{{}}', 'draft', null);
insert into data.anime_genres values
  ('00000000-0000-0000-0000-00000000000a', 1), ('00000000-0000-0000-0000-00000000000a', 4);
insert into data.favorites (user_id, anime_id, list_status) values
  ('00000000-0000-0000-0000-000000000001', '00000000-0000-0000-0000-00000000000a', 'watching');
"""


def row_counts(dbname: str) -> dict[str, int]:
    with psycopg.connect(db.role_url(dbname)) as conn:
        tables = [row[0] for row in conn.execute(
            "select format('%I.%I', schemaname, relname) from pg_stat_user_tables "
            "where schemaname in ('data', 'auth', 'ingest') order by 1")]
        return {t: conn.execute(f"select count(*) from {t}").fetchone()[0] for t in tables}  # type: ignore[index]


# rows a migration removes on purpose: 0030 takes anime.view / episode.view from `user` (they mean
# the admin catalog; issue 13)
REMOVED_ON_PURPOSE = {"data.role_permissions": 2}


def upgrade_violations(old: str, fresh: str, before: dict[str, int],
                       removed: dict[str, int] | None = None) -> list[str]:
    """What an upgraded database lacks: the fresh build's schema, or rows it held before (less
    the rows `removed` on purpose)."""
    after = row_counts(old)
    found = [f"{t}: {n} rows before, {after.get(t)} after" for t, n in before.items()
             if after.get(t) != n - (removed or {}).get(t, 0)]
    if schema_dump(old) != schema_dump(fresh):
        found.append("schema differs from a fresh build")
    return found


def test_upgrading_a_database_with_data_keeps_every_row_and_reaches_head(make_db, template_db):
    from yoyo import get_backend, read_migrations

    old = make_db_empty(make_db)
    backend = get_backend(db.role_url(old, "kitsu_owner", scheme="postgresql+psycopg"))
    migrations = read_migrations(str(db.MIGRATIONS_DIR))
    with backend.lock():
        backend.apply_migrations(backend.to_apply(migrations.filter(lambda m: m.id in PREVIOUS_RELEASE)))
    backend.connection.close()
    with psycopg.connect(db.role_url(old, "kitsu_owner")) as conn:
        conn.execute(FILL)
    before = row_counts(old)
    assert db.migrate(old) == len(migrations) - len(PREVIOUS_RELEASE)

    assert upgrade_violations(old, template_db, before, REMOVED_ON_PURPOSE) == []
    with psycopg.connect(db.role_url(old, "kitsu_owner")) as conn:
        # what the new migration backfilled: genres on the title, a search document for the published one
        genres = conn.execute("select genres from data.anime where shikimori_id = 1").fetchone()[0]
        assert genres == ["Экшен", "Comedy"]  # in genre name order: Action, Comedy
        assert conn.execute("select doc from data.catalog_search").fetchall() == [
            ("|shojo kakumei utena|юная революционерка утэна|utena|",)]
    with psycopg.connect(db.role_url(old)) as conn:
        conn.execute("set role anon")
        assert [r[0] for r in conn.execute("select title from api.search_anime('utena')")] == ["Shōjo Kakumei Utena"]


def test_the_upgrade_check_sees_lost_rows(make_db, template_db):
    upgraded = make_db()  # a HEAD database that "lost" a row in its upgrade
    with psycopg.connect(db.role_url(upgraded, "kitsu_owner")) as conn:
        conn.execute(FILL)
    before = row_counts(upgraded)
    with psycopg.connect(db.role_url(upgraded, "kitsu_owner")) as conn:
        conn.execute("delete from data.favorites")
        conn.execute("alter table data.favorites add column planted text")
    assert upgrade_violations(upgraded, template_db, before) == [
        "data.favorites: 1 rows before, 0 after", "schema differs from a fresh build"]


def test_the_seed_comparison_sees_a_missing_row(template_db, make_db):
    drifted = make_db_empty(make_db)
    build_from_sql(drifted)
    with psycopg.connect(db.role_url(drifted, "kitsu_owner")) as conn:
        conn.execute("delete from data.upstream_limits where upstream = 'kodik'")
    assert data_dump(template_db) != data_dump(drifted)


# --- the code layer is declarative ------------------------------------------------------------

def test_code_that_sql_no_longer_defines_does_not_survive_a_migrate(fresh_db):
    with psycopg.connect(db.role_url(fresh_db, "kitsu_owner")) as conn:  # as if an old release had them
        conn.execute("create function private.planted_removed() returns int language sql as 'select 1'")
        conn.execute("create view ingest.planted_removed_view as select 1 as x")
        conn.execute("create function private.planted_touch() returns trigger language plpgsql as "
                     "'begin return new; end'")
        conn.execute("create trigger planted_removed_trigger before update on data.genres "
                     "for each row execute function private.touch_updated_at()")
    db.migrate(fresh_db)
    with psycopg.connect(db.role_url(fresh_db, "kitsu_owner")) as conn:
        left = conn.execute(
            "select (select count(*) from pg_proc where proname in ('planted_removed', 'planted_touch')),"
            "       (select count(*) from pg_class where relname = 'planted_removed_view'),"
            "       (select count(*) from pg_trigger where tgname = 'planted_removed_trigger'),"
            "       (select count(*) from pg_proc where proname = 'touch_updated_at')").fetchone()
    assert left == (0, 0, 0, 1)


def test_a_removed_function_that_state_still_needs_fails_the_migrate(fresh_db):
    with psycopg.connect(db.role_url(fresh_db, "kitsu_owner")) as conn:
        conn.execute("create function private.planted_rule() returns boolean language sql stable as 'select true'")
        conn.execute("create policy planted_policy on data.genres for select to anon using (private.planted_rule())")
    with pytest.raises(psycopg.errors.DependentObjectsStillExist, match="planted_rule"):
        db.migrate(fresh_db)


def test_revoking_a_grant_line_revokes_the_privilege(fresh_db):
    with psycopg.connect(db.role_url(fresh_db, "kitsu_owner")) as conn:  # a grant grants.sql never had
        conn.execute("grant select on data.ingest_settings to anon")
        conn.execute("grant execute on function ingest.keeps(text[], text[], text) to web_user")
    db.migrate(fresh_db)
    with psycopg.connect(db.role_url(fresh_db, "kitsu_owner")) as conn:
        assert conn.execute("select has_table_privilege('anon', 'data.ingest_settings', 'select'),"
                            " has_function_privilege('web_user', 'ingest.keeps(text[], text[], text)', 'execute')"
                            ).fetchone() == (False, False)
