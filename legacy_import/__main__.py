"""python -m legacy_import [--dry-run]   (make import-legacy LEGACY_DATABASE_URL=…)

Reads the old system's database (LEGACY_DATABASE_URL, read-only) and imports it into ours
(KITSU_DB on the server of DATABASE_URL, as the role legacy_importer). The steps of
legacy.plan() run in order; each lands its old tables (one commit per table) and then runs its
import step (one commit), so a killed run is resumed by running it again. --dry-run does the
same in one transaction that is rolled back, and prints the same report.

Test hook: LEGACY_IMPORT_PAUSE_AFTER=land:<table> or step:<step> makes the run stop (sleep) right
after that landing table or step is committed, so a test can kill it there.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import psycopg
from psycopg import sql

from database import build

# read the old tables from this schema (alembic's default)
LEGACY_SCHEMA = "public"


def landing_columns(dst: psycopg.Connection, table: str) -> list[tuple[str, str]]:
    """(name, type) of a landing table's columns: the old columns the import reads."""
    return dst.execute(
        "select a.attname, format_type(a.atttypid, a.atttypmod) from pg_attribute a"
        " where a.attrelid = %s::regclass and a.attnum > 0 and not a.attisdropped order by a.attnum",
        (f"legacy.{table}",)).fetchall()


def land(src: psycopg.Connection, dst: psycopg.Connection, table: str) -> str:
    """Replace landing table ``table`` with the old table of that name, streamed COPY to COPY
    (memory: one COPY buffer). A column or table the old database lacks lands as nulls / empty."""
    columns = landing_columns(dst, table)
    present = {name for (name,) in src.execute(
        "select column_name from information_schema.columns where table_schema = %s and table_name = %s",
        (LEGACY_SCHEMA, table)).fetchall()}
    dst.execute(sql.SQL("truncate legacy.{}").format(sql.Identifier(table)))
    if not present:
        return "absent in the old database"
    select = sql.SQL(", ").join(
        sql.Identifier(name) if name in present else sql.SQL("null::{}").format(sql.SQL(kind))
        for name, kind in columns)
    names = sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns)
    source = sql.SQL("copy (select {} from {}.{}) to stdout").format(
        select, sql.Identifier(LEGACY_SCHEMA), sql.Identifier(table))
    target = sql.SQL("copy legacy.{} ({}) from stdin").format(sql.Identifier(table), names)
    with src.cursor().copy(source) as out, dst.cursor().copy(target) as into:
        for chunk in out:
            into.write(chunk)
    missing = [name for name, _ in columns if name not in present]
    return f"columns absent in the old database: {', '.join(missing)}" if missing else ""


def pause_if_asked(name: str) -> None:
    if os.environ.get("LEGACY_IMPORT_PAUSE_AFTER") == name:
        print(f"paused after {name}", flush=True)
        time.sleep(3600)


def run(legacy_url: str, target_url: str, *, dry_run: bool) -> None:
    with psycopg.connect(legacy_url) as src, psycopg.connect(target_url) as dst:
        src.read_only = True
        src.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        # one run at a time: two would truncate each other's landing tables (a session lock, held
        # across the commits, released when the process ends, however it ends)
        if not dst.execute("select pg_try_advisory_lock(hashtext('kitsu.legacy_import'))").fetchone()[0]:  # type: ignore[index]
            raise SystemExit("another legacy import is running on this database")
        dst.commit()
        plan = dst.execute("select step, tables from legacy.plan()").fetchall()
        report = []
        notes = []
        for step, tables in plan:
            started = time.monotonic()
            for table in tables:
                if note := land(src, dst, table):
                    notes.append((table, note))
                if not dry_run:
                    dst.commit()
                    pause_if_asked(f"land:{table}")
            row = dst.execute("select * from legacy.import_step(%s)", (step,)).fetchone()
            assert row is not None
            report.append((*row, time.monotonic() - started))
            if not dry_run:
                dst.commit()
                pause_if_asked(f"step:{step}")
        print_report(dst, report, notes, dry_run=dry_run)
        if dry_run:
            dst.rollback()


def print_report(dst: psycopg.Connection, report: list, notes: list, *, dry_run: bool) -> None:
    title = "legacy import report" + (" (dry run: rolled back, nothing written)" if dry_run else "")
    print(title)
    print(f"{'step':<16}{'read':>10}{'written':>10}{'skipped':>10}{'repaired':>10}{'seconds':>9}")
    for step, read, written, skipped, repaired, seconds in report:
        print(f"{step:<16}{read:>10}{written:>10}{skipped:>10}{repaired:>10}{seconds:>9.1f}")
    total = sum(row[2] for row in report)
    print(f"written in total: {total}" + ("" if total else " (the database already holds the old data)"))
    for table, note in notes:
        print(f"note: {table}: {note}")
    for what, why in dst.execute("select what, why from legacy.not_carried()").fetchall():
        print(f"not carried: {what}: {why}")
    print("skipped and repaired rows (step, old id, action, reason, detail):")
    with dst.cursor(name="legacy_issues") as cursor:  # server-side: the list may be long
        cursor.itersize = 2000
        cursor.execute("select step, legacy_id, action, reason, detail::text from legacy.issues_report()")
        for step, legacy_id, action, reason, detail in cursor:
            print(f"  {step}\t{legacy_id}\t{action}\t{reason}\t{detail}")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m legacy_import", description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="import in a transaction that is rolled back")
    args = parser.parse_args(argv)
    legacy_url = os.environ.get("LEGACY_DATABASE_URL")
    if not legacy_url:
        raise SystemExit("set LEGACY_DATABASE_URL to the old system's database (postgresql://…)")
    run(legacy_url, build.role_url(build.database_name(), "legacy_importer"), dry_run=args.dry_run)


if __name__ == "__main__":
    main(sys.argv[1:])
