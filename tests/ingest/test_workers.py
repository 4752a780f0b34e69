"""Real Procrastinate worker processes against real PostgreSQL and the local upstream."""

from __future__ import annotations

import itertools
import signal
import time

import pytest

from ingest import operations
from tests.ingest.support import (
    catalog,
    control,
    execute,
    last_run_id,
    query,
    row_versions,
    stats,
    sync,
    wait_for,
)

ALL = ("sync_catalog", "sync_episodes", "sync_schedule")


@pytest.fixture(scope="module")
def upstream(start_upstream):
    return start_upstream()


@pytest.fixture(scope="module")
def synced(module_db, upstream, start_worker):
    """One worker and a database after a first full sync."""
    start_worker(module_db, upstream, name="solo")
    runs = sync(module_db, *ALL)
    assert {t: r["status"] for t, r in runs.items()} == dict.fromkeys(ALL, "succeeded"), runs
    return module_db


def test_first_sync_fills_the_catalog(synced, upstream):
    rows = catalog(synced)
    assert len(rows) == 300
    assert len({r["shikimori_id"] for r in rows}) == 300
    assert all(r["state"] == "published" for r in rows)
    assert sum(r["sources"] for r in rows) > 0
    counts = query(
        synced, "select (select count(*) from data.schedule) as schedule, (select count(*) from api.anime) as public"
    )[0]
    assert counts["schedule"] > 0 and counts["public"] == 300
    runs = query(synced, "select task, pages_done, pages_total, items_fetched from data.sync_runs order by id")
    catalog_run = next(r for r in runs if r["task"] == "sync_catalog")
    assert catalog_run["items_fetched"] == 300 and catalog_run["pages_done"] == catalog_run["pages_total"] == 7
    assert stats(upstream)["max_per_second_window"] <= 5


def test_second_sync_without_upstream_change_writes_no_catalog_rows(synced):
    before = row_versions(synced)
    runs = sync(synced, *ALL)
    for run in runs.values():
        assert run["status"] == "succeeded"
        assert run["items_inserted"] == run["items_updated"] == 0
        assert run["items_unchanged"] == run["items_fetched"] - run["items_skipped"] > 0
        assert set(run["published"].values()) == {0}
    assert row_versions(synced) == before


def test_edited_and_locked_fields_survive_a_resync(synced, upstream):
    a, b, c = (r["shikimori_id"] for r in catalog(synced)[:3])
    execute(
        synced, "update data.anime set title = 'Editor title', edited_fields = '{title}' where shikimori_id = %s", (a,)
    )
    execute(
        synced,
        "update data.anime set description = 'Locked text', locked_fields = '{description}' where shikimori_id = %s",
        (b,),
    )
    execute(synced, "update data.anime set title = 'Frozen', locked_fields = '{*}' where shikimori_id = %s", (c,))
    control(
        upstream,
        "animes",
        [{"id": str(i), "name": f"Upstream {i}", "description": "Upstream text", "score": 9.5} for i in (a, b, c)],
    )
    run = sync(synced, "sync_catalog")["sync_catalog"]
    assert run["status"] == "succeeded" and run["items_updated"] == 3
    rows = {r["shikimori_id"]: r for r in catalog(synced)}
    assert (rows[a]["title"], rows[a]["description"], float(rows[a]["score"])) == ("Editor title", "Upstream text", 9.5)
    assert (rows[b]["title"], rows[b]["description"]) == (f"Upstream {b}", "Locked text")
    assert rows[c]["title"] == "Frozen" and rows[c]["description"] != "Upstream text"


def test_new_titles_can_wait_for_review(synced, upstream):
    execute(synced, 'select ingest.update_settings(\'{"new_title_state": "pending"}\')')
    try:
        control(upstream, "animes", [{**process_title(990001), "name": "Brand new"}])
        assert sync(synced, "sync_catalog")["sync_catalog"]["status"] == "succeeded"
        row = query(synced, "select state from data.anime where shikimori_id = 990001")
        assert row == [{"state": "pending"}]
    finally:
        execute(synced, 'select ingest.update_settings(\'{"new_title_state": "published"}\')')


def process_title(anime_id):
    from fake_upstream import fixtures

    title = fixtures.generate(1)[0]
    title.update(id=str(anime_id), malId=str(anime_id), status="released", kind="tv")
    return title


def test_upstream_429_500_and_timeouts_are_retried(synced, upstream):
    control(
        upstream,
        "faults",
        [
            {"target": "shikimori", "status": 429, "count": 1, "retry_after": 0.5},
            {"target": "shikimori", "status": 500, "count": 1},
            {"target": "shikimori", "status": 200, "count": 1, "delay": 3.0},  # > INGEST_HTTP_TIMEOUT=2
            {"target": "kodik", "status": 502, "count": 2},
        ],
    )
    runs = sync(synced, "sync_catalog", "sync_episodes")
    assert runs["sync_catalog"]["status"] == "succeeded"
    assert runs["sync_catalog"]["requests"] >= runs["sync_catalog"]["pages_done"] + 3
    assert runs["sync_episodes"]["status"] == "succeeded"
    assert runs["sync_episodes"]["requests"] >= runs["sync_episodes"]["pages_done"] + 2


def test_persistent_failure_is_reported_and_nothing_half_written_is_published(synced, upstream):
    first = catalog(synced)[10]["shikimori_id"]  # not one an earlier test edited
    control(upstream, "animes", [{"id": str(first), "name": "Half written"}])
    # page 1 succeeds (and is staged), then page 2 fails on every attempt
    control(
        upstream,
        "faults",
        [{"target": "shikimori", "status": 200, "count": 1}, {"target": "shikimori", "status": 503, "count": 50}],
    )
    run = sync(synced, "sync_catalog")["sync_catalog"]
    control(upstream, "config", {"clear_faults": True})
    assert run["status"] == "failed"
    assert run["error_code"] == "shikimori_unavailable"
    assert "HTTP 503" in run["error"] and "gave up after 4 attempts" in run["error"]
    assert run["pages_done"] == 1
    assert query(synced, "select title from data.anime where shikimori_id = %s", (first,)) != [
        {"title": "Half written"}
    ]
    staged = query(synced, "select payload ->> 'title' as t from data.staging_anime where shikimori_id = %s", (first,))
    assert staged == [{"t": "Half written"}]
    # the next successful sync publishes it
    assert sync(synced, "sync_catalog")["sync_catalog"]["status"] == "succeeded"
    assert query(synced, "select title from data.anime where shikimori_id = %s", (first,)) == [
        {"title": "Half written"}
    ]


def test_bad_kodik_token_is_reported(fresh_db, upstream, start_worker):
    start_worker(fresh_db, upstream, name="badtoken", token="not-the-token")
    run = sync(fresh_db, "sync_episodes")["sync_episodes"]
    assert run["status"] == "failed"
    assert run["error_code"] == "kodik_bad_token"
    assert "Отсутствует или неверный токен" in run["error"]
    assert run["requests"] == 1  # a bad token is not retried


def test_sigkill_mid_sync_resumes_on_another_worker(make_db, start_upstream, start_worker):
    upstream = start_upstream(titles=1000, delay=0.15)
    reference, victim_db = make_db(), make_db()
    start_worker(reference, upstream, name="ref")
    assert sync(reference, "sync_catalog", timeout=180)["sync_catalog"]["status"] == "succeeded"

    first = start_worker(victim_db, upstream, name="w1")
    assert operations.trigger(victim_db, "sync_catalog")
    running = wait_for(
        lambda: query(victim_db, "select * from data.sync_runs where status = 'running' and pages_done >= 4"),
        timeout=120,
    )[0]
    assert running["worker_pid"] == first.process.pid
    second = start_worker(victim_db, upstream, name="w2")
    first.signal(signal.SIGKILL)
    first.process.wait()
    run = operations.wait_runs(victim_db, ["sync_catalog"], since_id=0, timeout=180)["sync_catalog"]
    assert run["status"] == "succeeded" and run["id"] == running["id"]
    assert run["attempts"] == 2
    assert run["worker_pid"] == second.process.pid
    assert run["items_fetched"] == 1000 and run["pages_done"] == 21  # every page counted once
    jobs = query(
        victim_db,
        "select status::text from procrastinate.procrastinate_jobs where task_name = 'sync_catalog' order by id",
    )
    assert [j["status"] for j in jobs] == ["failed", "succeeded"]
    assert catalog(victim_db) == catalog(reference)


def test_three_workers_over_periodic_ticks(make_db, start_upstream, start_worker):
    """Each sync runs at most once per tick and never twice at once; the catalog has no
    duplicates; the upstream log never exceeds 5/s and 90/min (the real limits)."""
    upstream = start_upstream()
    dbname = make_db()
    execute(
        dbname,
        'select ingest.update_settings(\'{"catalog_interval_minutes": 0,'
        ' "schedule_interval_minutes": 0, "episodes_interval_minutes": 0}\')',
    )
    every3 = "* * * * * */3"
    env = {"INGEST_CATALOG_CRON": every3, "INGEST_SCHEDULE_CRON": every3, "INGEST_EPISODES_CRON": every3}
    since = last_run_id(dbname)
    workers = [start_worker(dbname, upstream, name=f"tick{i}", env=env) for i in range(3)]
    time.sleep(16)
    for worker in workers:
        worker.stop()
    runs = query(dbname, "select * from data.sync_runs where id > %s order by id", (since,))
    for task in ALL:
        mine = [r for r in runs if r["task"] == task and r["finished_at"] is not None]
        assert len(mine) >= 3, (task, len(mine))
        ticks = [r["tick"] for r in mine]
        assert None not in ticks and len(ticks) == len(set(ticks))  # once per tick at most
        assert all(r["status"] == "succeeded" for r in mine)
        for earlier, later in itertools.pairwise(mine):  # never twice at once
            assert earlier["finished_at"] <= later["started_at"]
    ticks = query(
        dbname,
        "select args ->> 'task' as task, args ->> 'timestamp' as ts, count(*) as n"
        " from procrastinate.procrastinate_jobs where task_name = 'ingest_tick'"
        " group by 1, 2 having count(*) > 1",
    )
    assert ticks == []
    assert query(dbname, "select count(*) as n, count(distinct shikimori_id) as d from data.anime") == [
        {"n": 300, "d": 300}
    ]
    summary = stats(upstream)
    assert summary["max_per_second_window"] <= 5
    assert summary["max_per_minute_window"] <= 90


def test_finished_queue_rows_are_purged_after_the_retention(fresh_db, upstream, start_worker):
    finished = ("insert into procrastinate.procrastinate_jobs (queue_name, task_name, args, status) "
                "values ('sync', 'sync_schedule', '{}', %s) returning id")
    ids = [query(fresh_db, finished, (status,))[0]["id"] for status in ("succeeded", "failed", "succeeded")]
    old_ok, old_failed, recent = ids
    execute(fresh_db, "insert into procrastinate.procrastinate_events (job_id, type) "
                      "select id, 'succeeded' from unnest(%s::bigint[]) id", (ids,))
    execute(fresh_db, "update procrastinate.procrastinate_events set at = now() - interval '8 days' "
                      "where job_id = any(%s)", ([old_ok, old_failed],))

    def remaining() -> set[int]:
        rows = query(fresh_db, "select id from procrastinate.procrastinate_jobs where id = any(%s)", (ids,))
        return {row["id"] for row in rows}

    start_worker(fresh_db, upstream, name="purger",
                 env={"INGEST_PURGE_CRON": "* * * * * */1", "INGEST_JOB_RETENTION_HOURS": "24"})
    deadline = time.monotonic() + 30
    while remaining() != {recent} and time.monotonic() < deadline:
        time.sleep(0.5)
    assert remaining() == {recent}
