"""The ingest rules in SQL: mapping, content hashes, publish rules, the shared limiter, the
run invariants, ticks and the stalled-job sweeper. Each test is one rolled-back transaction."""

from __future__ import annotations

import copy
import json

import psycopg
import pytest
from psycopg.types.json import Jsonb

from database import build as db
from fake_upstream import fixtures
from tests.helpers import create_user

BASE = "https://shikimori.example"
TITLES = fixtures.generate(60)


def node(**overrides):
    item = copy.deepcopy(TITLES[0])
    item["poster"] = {"originalUrl": "/uploads/poster/animes/1/x.jpg"}
    item.update(overrides)
    return item


def begin(conn, task="sync_catalog", job=1):
    return conn.execute("select id from ingest.begin_run(%s, %s, '{}', null, 1)", (task, job)).fetchone()[0]


def stage(conn, run, items, job=1, page=2):
    return conn.execute(
        "select ingest.stage_anime(%s, %s, %s, %s, %s, 1)", (run, job, Jsonb({"page": page}), Jsonb(items), BASE)
    ).fetchone()[0]


def publish(conn, run=None):
    """Publish as run `run` would at its end (rows of other running runs are held back)."""
    return conn.execute("select ingest.publish(%s)", (run,)).fetchone()[0]


def anime(conn, shikimori_id):
    conn.row_factory = psycopg.rows.dict_row
    try:
        return conn.execute("select * from data.anime where shikimori_id = %s", (shikimori_id,)).fetchone()
    finally:
        conn.row_factory = psycopg.rows.tuple_row


def test_field_mapping(conn):
    run = begin(conn)
    item = node(
        id="21",
        name="One Piece",
        russian="Ван-Пис",
        english=["One Piece EN"],
        japanese=[None],
        synonyms=["OP", " "],
        kind="tv_13",
        episodes=0,
        episodesAired=1100,
        score=0.0,
        season="fall_1999",
        rating="pg_13",
        nextEpisodeAt="2026-02-01T10:00:00.000+03:00",
        airedOn={"year": 1999, "month": 10, "day": 20, "date": "1999-10-20"},
        releasedOn={"year": 1998, "month": 1, "day": 1, "date": "1998-01-01"},
    )
    assert stage(conn, run, [item]) == {"fetched": 1, "inserted": 1, "updated": 0, "skipped": 0}
    assert publish(conn, run)["anime_inserted"] == 1
    row = anime(conn, 21)
    assert (row["title"], row["title_ru"], row["title_en"], row["title_original"]) == (
        "One Piece",
        "Ван-Пис",
        "One Piece EN",
        None,
    )
    assert row["synonyms"] == ["OP"]
    assert row["kind"] == "tv"
    assert row["episodes_total"] is None  # upstream 0 = unknown
    assert row["score"] is None
    assert row["released_on"] is None  # before aired_on: rejected rather than failing the check
    assert row["poster_url"] == f"{BASE}/uploads/poster/animes/1/x.jpg"
    assert (row["state"], row["source"]) == ("published", "parser")
    assert row["next_episode_at"].isoformat() == "2026-02-01T07:00:00+00:00"
    genres = conn.execute("select count(*) from data.anime_genres where anime_id = %s", (row["id"],)).fetchone()
    assert genres[0] == len(item["genres"])


def test_unchanged_items_write_nothing(conn):
    run = begin(conn)
    stage(conn, run, TITLES)
    publish(conn, run)
    before = conn.execute("select array_agg(xmin::text order by id) from data.anime").fetchone()
    again = stage(conn, run, TITLES, page=3)
    assert again == {"fetched": 60, "inserted": 0, "updated": 0, "skipped": 0}
    assert set(publish(conn, run).values()) == {0}
    assert conn.execute("select array_agg(xmin::text order by id) from data.anime").fetchone() == before


def test_edited_and_locked_fields_survive(conn):
    run = begin(conn)
    stage(conn, run, TITLES[:3])
    publish(conn, run)
    a, b, c = (int(t["id"]) for t in TITLES[:3])
    conn.execute("update data.anime set title = 'Edited', edited_fields = '{title}' where shikimori_id = %s", (a,))
    conn.execute(
        "update data.anime set description = 'Locked', locked_fields = '{description,genres}' where shikimori_id = %s",
        (b,),
    )
    conn.execute("update data.anime set score = 1, locked_fields = '{*}' where shikimori_id = %s", (c,))
    changed = [
        node(**{**t, "name": "New name", "description": "New text", "score": 9.99, "genres": []}) for t in TITLES[:3]
    ]
    stage(conn, run, changed, page=3)
    publish(conn, run)
    ra, rb, rc = anime(conn, a), anime(conn, b), anime(conn, c)
    assert (ra["title"], ra["description"], float(ra["score"])) == ("Edited", "New text", 9.99)
    assert (rb["title"], rb["description"]) == ("New name", "Locked")
    assert conn.execute("select count(*) from data.anime_genres where anime_id = %s", (rb["id"],)).fetchone()[0] > 0
    assert conn.execute("select count(*) from data.anime_genres where anime_id = %s", (ra["id"],)).fetchone()[0] == 0
    assert (rc["title"], float(rc["score"])) == (TITLES[2]["name"], 1.0)


def test_new_titles_wait_for_review_when_settings_say(conn):
    conn.execute('select ingest.update_settings(\'{"new_title_state": "pending"}\')')
    run = begin(conn)
    stage(conn, run, TITLES[:2])
    publish(conn, run)
    assert {r[0] for r in conn.execute("select state from data.anime")} == {"pending"}
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute('select ingest.update_settings(\'{"new_title_state": "draft-ish"}\')')


def test_unknown_setting_is_refused(conn):
    with pytest.raises(psycopg.Error) as failure:
        conn.execute("select ingest.update_settings('{\"nope\": 1}')")
    assert failure.value.sqlstate == "KI006"


def test_blacklist_filters_at_staging(conn):
    conn.execute(
        "select ingest.update_settings(%s)",
        (
            Jsonb(
                {"blacklist_titles": [TITLES[0]["name"][:5].upper()], "blacklist_shikimori_ids": [int(TITLES[1]["id"])]}
            ),
        ),
    )
    run = begin(conn)
    result = stage(conn, run, TITLES[:4])
    assert result["skipped"] >= 2
    ids = {r[0] for r in conn.execute("select shikimori_id from data.staging_anime")}
    assert int(TITLES[0]["id"]) not in ids and int(TITLES[1]["id"]) not in ids


def test_manual_match_is_kept_and_unmatch_stops_publishing(conn):
    manual = conn.execute(
        "insert into data.anime (title, state) values ('Hand made', 'published') returning id"
    ).fetchone()[0]
    run = begin(conn)
    stage(conn, run, TITLES[:2])
    first = int(TITLES[0]["id"])
    conn.execute("select ingest.match(%s, %s)", (first, manual))
    publish(conn, run)
    row = anime(conn, first)
    assert row["id"] == manual and row["title"] == TITLES[0]["name"] and row["source"] == "manual"
    conn.execute("select ingest.unmatch(%s)", (int(TITLES[1]["id"]),))
    stage(conn, run, [node(**{**TITLES[0], "score": 1.5})], page=3)
    publish(conn, run)
    assert conn.execute("select matched_by from data.staging_anime where shikimori_id = %s", (first,)).fetchone() == (
        "manual",
    )


def test_episodes_grouped_per_translation_with_https_links(conn):
    run = begin(conn)
    stage(conn, run, TITLES)
    kodik = [r for t in TITLES for r in fixtures.kodik_results(t)]
    ep_run = begin(conn, "sync_episodes", job=2)
    out = conn.execute(
        "select ingest.stage_episodes(%s, 2, '{\"done\": true}', %s, 1, 1)", (ep_run, Jsonb(kodik))
    ).fetchone()[0]
    assert out["inserted"] == len(kodik)
    assert publish(conn, run)["episode_sources_written"] == 0  # held back: its run is not finished
    conn.execute("select ingest.finish_run(%s, 2, 'succeeded')", (ep_run,))
    published = conn.execute("select published from data.sync_runs where id = %s", (ep_run,)).fetchone()[0]
    assert published["episode_sources_written"] > 0
    bad = conn.execute("select count(*) from data.episode_sources where player_url !~ '^https://'").fetchone()
    assert bad == (0,)
    movie = next(r for r in kodik if "seasons" not in r)
    linked = conn.execute(
        "select e.number, s.player_url from data.episode_sources s join data.episodes e on e.id = s.episode_id"
        " join data.anime a on a.id = e.anime_id where a.shikimori_id = %s and s.translation_id = %s",
        (int(movie["shikimori_id"]), movie["translation"]["id"]),
    ).fetchall()
    assert linked == [(1, "https:" + movie["link"])]


def test_limiter_grants_five_per_second_then_waits(conn):
    waits = [conn.execute("select ingest.acquire_slot('shikimori')").fetchone()[0] for _ in range(7)]
    assert waits[:5] == [0] * 5
    assert all(0 < w <= 1.25 for w in waits[5:])
    conn.execute("select ingest.set_limits('kodik', 100, 3)")
    waits = [conn.execute("select ingest.acquire_slot('kodik')").fetchone()[0] for _ in range(4)]
    assert waits[:3] == [0] * 3 and 59 < waits[3] <= 60.25
    conn.execute("select ingest.set_limits('kodik', null, null)")
    assert conn.execute("select ingest.acquire_slot('kodik')").fetchone()[0] == 0


def test_one_unfinished_run_per_task(conn):
    begin(conn)
    # planted violation: a second unfinished run of the same task
    with pytest.raises(psycopg.errors.UniqueViolation):
        with conn.transaction():
            conn.execute("insert into data.sync_runs (task) values ('sync_catalog')")
    # begin_run takes the unfinished one over instead (attempts + 1, new owner)
    row = conn.execute("select id, attempts, job_id from ingest.begin_run('sync_catalog', 7, '{}', null, 1)").fetchone()
    assert row[1:] == (2, 7)


def test_fencing_refuses_a_previous_owner(conn):
    run = begin(conn, job=1)
    begin(conn, job=2)  # job 2 takes the run over
    with pytest.raises(psycopg.Error) as failure:
        with conn.transaction():
            stage(conn, run, TITLES[:1], job=1)
    assert failure.value.sqlstate == "KI001"
    with pytest.raises(psycopg.Error) as failure:
        with conn.transaction():
            conn.execute("select ingest.finish_run(%s, 1, 'succeeded')", (run,))
    assert failure.value.sqlstate == "KI001"


def test_planted_violations_fail(conn):
    with pytest.raises(psycopg.errors.UniqueViolation):
        with conn.transaction():
            conn.execute("insert into data.ingest_settings (id) values (true)")
    with pytest.raises(psycopg.errors.CheckViolation):
        with conn.transaction():
            conn.execute("insert into data.ingest_settings (id) values (false)")
    with pytest.raises(psycopg.errors.CheckViolation):
        with conn.transaction():
            conn.execute("insert into data.sync_runs (task, status) values ('sync_catalog', 'succeeded')")
    with pytest.raises(psycopg.errors.CheckViolation):
        with conn.transaction():
            conn.execute(
                "insert into data.staging_anime (shikimori_id, payload, content_hash, matched_by)"
                " values (5, '{}', 'x', 'manual')"
            )
    with pytest.raises(psycopg.errors.CheckViolation):
        with conn.transaction():
            conn.execute(
                "insert into data.staging_episodes (shikimori_id, translation_id, translation_title,"
                " translation_type, episodes, content_hash) values (1, 1, 't', 'dub', '{}', 'x')"
            )


def jobs(conn, task):
    return conn.execute(
        "select status::text, lock, queueing_lock, args from procrastinate.procrastinate_jobs"
        " where task_name = %s order by id",
        (task,),
    ).fetchall()


def test_tick_decisions(conn):
    assert conn.execute("select ingest.tick('sync_catalog', 100)").fetchone()[0] == "deferred"
    assert jobs(conn, "sync_catalog") == [("todo", "ingest:sync_catalog", "ingest:sync_catalog", {"tick": 100})]
    assert conn.execute("select ingest.tick('sync_catalog', 101)").fetchone()[0] == "busy"
    assert conn.execute("select ingest.trigger_sync('sync_catalog')").fetchone()[0] is None
    conn.execute('select ingest.update_settings(\'{"mode": "manual"}\')')
    assert conn.execute("select ingest.tick('sync_schedule', 102)").fetchone()[0] == "manual_mode"
    conn.execute("select ingest.emergency_stop('test')")
    assert jobs(conn, "sync_catalog")[0][0] == "cancelled"
    assert conn.execute("select ingest.tick('sync_schedule', 103)").fetchone()[0] == "stopped"
    with pytest.raises(psycopg.Error) as failure:
        with conn.transaction():
            conn.execute("select ingest.trigger_sync('sync_schedule')")
    assert failure.value.sqlstate == "KI002"
    conn.execute("select ingest.resume()")
    conn.execute("insert into data.sync_runs (task, status, finished_at) values ('sync_schedule', 'succeeded', now())")
    assert conn.execute("select ingest.tick('sync_schedule', 104)").fetchone()[0] == "not_due"


def test_sweeper_fails_dead_job_and_queues_a_resume(conn):
    worker = conn.execute(
        "insert into procrastinate.procrastinate_workers (last_heartbeat)"
        " values (now() - interval '1 hour') returning id"
    ).fetchone()[0]
    job = conn.execute("select ingest.defer('sync_catalog', '{\"tick\": 5}')").fetchone()[0]
    conn.execute(
        "update procrastinate.procrastinate_jobs set status = 'doing', worker_id = %s where id = %s", (worker, job)
    )
    run = begin(conn, job=job)
    stage(conn, run, TITLES[:50], job=job, page=2)
    # an operator queued another sync meanwhile: it holds the queueing lock
    queued = conn.execute("select ingest.trigger_sync('sync_catalog')").fetchone()[0]
    assert conn.execute("select ingest.sweep_stalled(30)").fetchone()[0] == 1
    assert jobs(conn, "sync_catalog") == [
        ("failed", "ingest:sync_catalog", "ingest:sync_catalog", {"tick": 5}),
        ("todo", "ingest:sync_catalog", "ingest:sync_catalog", {}),
    ]
    status = conn.execute("select status, error_code, cursor from data.sync_runs where id = %s", (run,)).fetchone()
    assert status == ("interrupted", "worker_lost", {"page": 2})
    # the queued job resumes the run from its cursor
    resumed = conn.execute(
        "select id, cursor, attempts from ingest.begin_run('sync_catalog', %s, '{}', null, 1)", (queued,)
    ).fetchone()
    assert resumed == (run, {"page": 2}, 2)


def test_sweeper_requeues_when_nothing_waits(conn):
    job = conn.execute("select ingest.defer('sync_episodes')").fetchone()[0]
    conn.execute("update procrastinate.procrastinate_jobs set status = 'doing', worker_id = null where id = %s", (job,))
    conn.execute("select ingest.sweep_stalled(30)")
    assert [j[0] for j in jobs(conn, "sync_episodes")] == ["failed", "todo"]


def test_ingest_worker_privileges(template_db):
    conn = psycopg.connect(db.role_url(template_db, "ingest_worker"))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with conn.transaction():
            conn.execute("select 1 from data.anime")
    assert conn.execute("select ingest.acquire_slot('shikimori')").fetchone() is not None
    assert conn.execute("select count(*) from procrastinate.procrastinate_jobs").fetchone() is not None
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        with conn.transaction():
            conn.execute("select ingest.emergency_stop('no')")
    conn.rollback()
    conn.close()


def test_postgrest_roles_cannot_reach_the_queue(conn):
    for role in ("anon", "web_user", "authenticator"):
        assert conn.execute("select has_schema_privilege(%s, 'procrastinate', 'usage')", (role,)).fetchone() == (False,)
        assert conn.execute("select has_schema_privilege(%s, 'ingest', 'usage')", (role,)).fetchone() == (False,)


def test_payload_hash_is_timezone_independent(conn):
    conn.execute("set local timezone = 'Asia/Tokyo'")
    run = begin(conn)
    stage(conn, run, TITLES[:5])
    conn.execute("set local timezone = 'UTC'")
    assert stage(conn, run, TITLES[:5], page=3)["updated"] == 0
    assert json.loads(json.dumps(publish(conn, run)))["anime_inserted"] == 5


def test_a_generated_russian_title_is_marked_and_follows_the_source(conn):
    """A source that says its Russian name is made up (`generated`, as the offline upstream's real
    titles do) gives a marked title_ru; a real Russian name later unmarks it; one an editor wrote
    stays unmarked whatever the source says."""
    run = begin(conn)
    made_up = node(id="31", russian="Сингэки но Кёдзин", generated=["romaji", "russian"])
    without = node(id="32", russian=None, generated=["romaji", "russian"])  # nothing to mark
    plain = node(id="33", russian="Атака титанов")
    stage(conn, run, [made_up, without, plain])
    publish(conn, run)
    assert [anime(conn, i)["title_ru_generated"] for i in (31, 32, 33)] == [True, False, False]
    conn.execute("update data.anime set title_ru = 'Правка', title_ru_generated = false, "
                 "edited_fields = '{title_ru}' where shikimori_id = 33")
    stage(conn, run, [{**made_up, "russian": "Атака титанов", "generated": ["romaji"]},
                      {**plain, "generated": ["russian"]}], page=3)
    publish(conn, run)
    assert (anime(conn, 31)["title_ru"], anime(conn, 31)["title_ru_generated"]) == ("Атака титанов", False)
    assert (anime(conn, 33)["title_ru"], anime(conn, 33)["title_ru_generated"]) == ("Правка", False)


def test_a_title_without_a_russian_name_cannot_be_marked_generated(conn):
    run = begin(conn)
    stage(conn, run, [node(id="34", russian="Сингэки", generated=["russian"])])
    publish(conn, run)
    with pytest.raises(psycopg.errors.CheckViolation, match="anime_title_ru_generated_needs_title"):
        conn.execute("update data.anime set title_ru = null where shikimori_id = 34")


def test_ingest_lowering_episodes_total_clamps_episodes_watched(conn):
    run = begin(conn)
    stage(conn, run, [node(id="35", episodes=24)])
    publish(conn, run)
    title = anime(conn, 35)["id"]
    user, _ = create_user(conn, "clamp@example.test")
    conn.execute("insert into data.favorites (user_id, anime_id, episodes_watched) values (%s, %s, 20)", (user, title))
    stage(conn, run, [node(id="35", episodes=12)], page=3)
    assert publish(conn, run)["anime_updated"] == 1
    assert conn.execute("select episodes_watched from data.favorites where anime_id = %s", (title,)).fetchone() == (12,)
