"""The ingest part of the admin API through a real PostgREST with real tokens: each permission
opens exactly its resources, settings and mode changes, the emergency stop (which cancels queued
work and blocks triggers), triggers and the queueing lock, sync runs readable while they run,
and the staging area (match, unmatch, publish). No worker runs: the tests seed and inspect
data.ingest_settings, data.sync_runs, data.staging_* and procrastinate.procrastinate_jobs."""

from __future__ import annotations

import json
import uuid

import httpx
import psycopg
import pytest

from tests.conftest import owner_connect
from tests.helpers import create_anime, create_user

HEADERS = {"User-Agent": "ingest-admin-tests/1.0", "X-Forwarded-For": "203.0.113.20"}
# custom roles holding one permission each, to show each permission opens exactly its resources
SINGLE = {
    "only_settings": "admin.parser.settings",
    "only_logs": "admin.parser.logs",
    "only_emergency": "admin.parser.emergency",
    "only_run": "parser.run",
}
SYNC_TASKS = ("sync_catalog", "sync_schedule", "sync_episodes", "autoupdate")


@pytest.fixture(scope="module")
def world(api_db, postgrest, mint):
    people: dict[str, uuid.UUID] = {}
    tokens: dict[str, str] = {}
    with owner_connect(api_db) as conn:
        for role, permission in SINGLE.items():
            conn.execute(
                "insert into data.roles (name, description) values (%s, 'test role')", (role,)
            )
            conn.execute(
                "insert into data.role_permissions (role, permission) values (%s, %s)",
                (role, permission),
            )
        for who in ("super_admin", "admin", *SINGLE, "plain"):
            user_id, session_id = create_user(conn, f"{who}@ingest.test")
            if who != "plain":
                conn.execute(
                    "insert into data.user_roles (user_id, role) values (%s, %s)", (user_id, who)
                )
            people[who] = user_id
            tokens[who] = mint(user_id, session_id)
    return {"url": postgrest.url, "db": api_db, "people": people, "tokens": tokens}


@pytest.fixture
def clean(world):
    """Ingest at rest: default settings, no stop, no jobs, no runs, no staging; world["since"]
    marks where this test's audit rows start."""
    with owner_connect(world["db"]) as conn:
        conn.execute("delete from procrastinate.procrastinate_jobs")
        conn.execute("delete from data.staging_episodes")
        conn.execute("delete from data.staging_anime")
        conn.execute("delete from data.sync_runs")
        conn.execute("delete from data.ingest_settings")
        conn.execute("insert into data.ingest_settings default values")
        world["since"] = conn.execute("select coalesce(max(id), 0) from data.audit_log").fetchone()[0]
    return world


def client(world, who: str | None = None) -> httpx.Client:
    headers = dict(HEADERS)
    if who:
        headers["Authorization"] = f"Bearer {world['tokens'][who]}"
    return httpx.Client(base_url=world["url"], headers=headers, timeout=10)


def rpc(world, who: str | None, name: str, **body: object) -> httpx.Response:
    with client(world, who) as c:
        return c.post(f"/rpc/{name}", json=body)


def get(world, who: str | None, path: str, **params: object) -> httpx.Response:
    with client(world, who) as c:
        return c.get(path, params=params)


def sql(world, query: str, *args: object) -> list[dict]:
    with owner_connect(world["db"]) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(query, args or None)
        return cur.fetchall() if cur.description else []


def settings(world) -> dict:
    return sql(world, "select * from data.ingest_settings")[0]


def audit(world, action: str) -> list[dict]:
    """Audit rows of ``action`` written since the test's ``clean`` fixture ran."""
    return sql(world, "select * from data.audit_log where action = %s and id > %s order by id",
               action, world.get("since", 0))


def stage(world, shikimori_id: int, name: str, run_id: int | None = None) -> None:
    """Stage a Shikimori title as the catalog sync would (real payload mapping)."""
    node = {"id": shikimori_id, "name": name, "russian": f"{name} (ru)", "kind": "tv",
            "status": "released", "airedOn": {"year": 2004, "date": "2004-10-05"}}
    sql(
        world,
        "insert into data.staging_anime (shikimori_id, payload, content_hash, run_id) "
        "select %s, p, md5(p::text), %s from (select ingest.shikimori_payload(%s, 'https://s.test') p) x "
        "on conflict (shikimori_id) do update set payload = excluded.payload, "
        "content_hash = excluded.content_hash, run_id = excluded.run_id",
        shikimori_id, run_id, json.dumps(node),
    )


# --- who may do what -----------------------------------------------------------------------------

# Calls that pass the permission check and then stop without changing anything (bad input or
# nothing to do), so the matrix can run in any state: allowed -> not 401/403, refused -> 403.
CALLS = {
    "settings": ("GET", "/admin_ingest_settings", None),
    "runs": ("GET", "/admin_sync_runs", None),
    "jobs": ("GET", "/admin_sync_jobs", None),
    "staging": ("GET", "/admin_staging_anime", None),
    "update_settings": ("POST", "/rpc/admin_update_ingest_settings", {"patch": {"bogus": 1}}),
    "set_mode": ("POST", "/rpc/admin_set_ingest_mode", {"mode": "bogus"}),
    "emergency_stop": ("POST", "/rpc/admin_emergency_stop", {"reason": ""}),
    "resume": ("POST", "/rpc/admin_resume_ingest", {"mode": "bogus"}),
    "trigger": ("POST", "/rpc/admin_trigger_sync", {"task": "bogus"}),
    "match": ("POST", "/rpc/admin_match", {"shikimori_id": -1, "anime_id": str(uuid.uuid4())}),
    "unmatch": ("POST", "/rpc/admin_unmatch", {"shikimori_id": -1}),
    "publish": ("POST", "/rpc/admin_publish", {"shikimori_ids": [-1]}),
}
SETTINGS_CALLS = {"settings", "staging", "update_settings", "set_mode", "trigger", "match",
                  "unmatch", "publish"}
ALLOWED = {
    "super_admin": set(CALLS),
    "admin": set(CALLS) - {"emergency_stop", "resume"},
    "only_settings": SETTINGS_CALLS,
    "only_logs": {"runs", "jobs"},
    "only_emergency": {"emergency_stop", "resume"},
    "only_run": {"trigger"},
    "plain": set(),
}


@pytest.mark.parametrize("who", list(ALLOWED))
def test_each_permission_opens_exactly_its_resources(world, who):
    last = sql(world, "select coalesce(max(id), 0) as id from data.audit_log")[0]["id"]
    got = {}
    with client(world, who) as c:
        for name, (method, path, body) in CALLS.items():
            response = c.request(method, path, json=body)
            got[name] = response.status_code
            if response.status_code == 403:
                assert response.json()["code"] == "permission_denied", (name, response.text)
    assert {name for name, status in got.items() if status != 403} == ALLOWED[who], got
    assert all(status not in (401, 500) for status in got.values()), got
    # every refused RPC left one audit row, every refused GET one counted row
    # (security.read_denied, tests/db/test_api_admin_refused_reads.py), and allowed calls that
    # changed nothing wrote none
    rows = sql(world, "select * from data.audit_log where id > %s order by id", last)
    assert {r["action"] for r in rows} <= {"security.permission_denied", "security.read_denied"}
    assert all(r["actor_id"] == world["people"][who] for r in rows)
    refused_rpcs = {CALLS[n][1].lstrip("/") for n in CALLS
                    if CALLS[n][0] == "POST" and n not in ALLOWED[who]}
    assert sorted(r["after"]["resource"] for r in rows if r["action"] == "security.permission_denied") == sorted(
        refused_rpcs)
    refused_reads = {CALLS[n][1].split("?")[0] for n in CALLS if CALLS[n][0] == "GET" and n not in ALLOWED[who]}
    assert {r["after"]["resource"] for r in rows if r["action"] == "security.read_denied"} == refused_reads


def test_openapi_documents_the_ingest_resources(world):
    with client(world, "admin") as admin:  # OpenAPI lists what the caller's role may use
        spec = admin.get("/").json()
    for path in ("/admin_ingest_settings", "/admin_sync_runs", "/admin_sync_jobs",
                 "/admin_staging_anime", "/rpc/admin_trigger_sync", "/rpc/admin_publish"):
        assert path in spec["paths"], path
    assert "admin.parser.logs" in spec["paths"]["/admin_sync_runs"]["get"]["summary"]


def test_anonymous_callers_get_401(world):
    with client(world) as anon:
        for method, path, body in CALLS.values():
            assert anon.request(method, path, json=body).status_code == 401, path


def test_a_refused_emergency_stop_is_audited_and_stops_nothing(clean):
    world = clean
    # refusals of one caller and action within a minute are one row: start from none
    sql(world, "delete from data.audit_log where action like 'security.%%'")
    last = sql(world, "select coalesce(max(id), 0) as id from data.audit_log")[0]["id"]
    response = rpc(world, "admin", "admin_emergency_stop", reason="panic")
    assert response.status_code == 403 and "admin.parser.emergency" in response.json()["message"]
    assert settings(world)["stopped_at"] is None
    [row] = sql(world, "select * from data.audit_log where id > %s", last)
    assert row["action"] == "security.permission_denied" and row["actor_type"] == "user"
    assert row["actor_id"] == world["people"]["admin"] and row["entity_id"] == "admin.parser.emergency"
    assert row["after"] == {"resource": "rpc/admin_emergency_stop", "target": None}
    assert str(row["ip"]) == "203.0.113.20" and row["user_agent"] == "ingest-admin-tests/1.0"


# --- settings and mode ---------------------------------------------------------------------------


def test_settings_update_is_persisted_and_audited(clean):
    world = clean
    patch = {"catalog_interval_minutes": 720, "new_title_state": "pending",
             "blacklist_titles": ["hentai"], "auto_publish": True}
    response = rpc(world, "admin", "admin_update_ingest_settings", patch=patch, reason="review")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["warnings"] == []
    assert body["settings"]["catalog_interval_minutes"] == 720
    row = settings(world)
    assert row["catalog_interval_minutes"] == 720 and row["new_title_state"] == "pending"
    assert row["blacklist_titles"] == ["hentai"] and row["auto_publish"] is True
    [entry] = audit(world, "ingest_settings.update")
    assert entry["id"] == body["audit_log_id"] and entry["reason"] == "review"
    assert entry["actor_id"] == world["people"]["admin"] and entry["entity_type"] == "ingest_settings"
    # auto_publish did not change: it is not in the audit entry
    assert entry["before"] == {"catalog_interval_minutes": 1440, "new_title_state": "published",
                               "blacklist_titles": []}
    assert entry["after"] == {"catalog_interval_minutes": 720, "new_title_state": "pending",
                              "blacklist_titles": ["hentai"]}
    view = get(world, "admin", "/admin_ingest_settings").json()
    assert view == [body["settings"]]
    again = rpc(world, "admin", "admin_update_ingest_settings", patch=patch)
    assert again.json()["warnings"] == ["no_changes"] and again.json()["audit_log_id"] is None
    assert len(audit(world, "ingest_settings.update")) == 1


def test_changing_filters_also_needs_parser_configure(clean):
    world = clean
    refused = rpc(world, "only_settings", "admin_update_ingest_settings",
                  patch={"blacklist_shikimori_ids": [1], "auto_publish": False})
    assert refused.status_code == 403 and "parser.configure" in refused.json()["message"]
    assert settings(world)["auto_publish"] is True  # nothing of the patch was written
    [row] = [r for r in audit(world, "security.permission_denied")
             if r["actor_id"] == world["people"]["only_settings"]
             and r["entity_id"] == "parser.configure"]
    assert row["after"]["target"] == "blacklist_shikimori_ids"
    allowed = rpc(world, "only_settings", "admin_update_ingest_settings",
                  patch={"auto_publish": False, "autoupdate_interval_minutes": 30})
    assert allowed.status_code == 200, allowed.text
    assert settings(world)["auto_publish"] is False


@pytest.mark.parametrize(
    "patch, status, code",
    [
        ({}, 400, "empty_patch"),
        ({"mode": "manual"}, 400, "unknown_setting"),
        ({"stopped_at": None}, 400, "unknown_setting"),
        ({"nope": 1}, 400, "unknown_setting"),
        ({"catalog_interval_minutes": 99999}, 400, "23514"),
        ({"allowed_translation_types": ["dub"]}, 400, "23514"),
        ({"auto_publish": "maybe"}, 400, "22P02"),
        ({"new_title_state": "draft"}, 400, "23514"),
        ({"blacklist_titles": None}, 400, "23502"),
    ],
)
def test_bad_settings_are_refused(world, patch, status, code):
    response = rpc(world, "super_admin", "admin_update_ingest_settings", patch=patch)
    assert response.status_code == status, response.text
    assert response.json()["code"] == code
    if "mode" in patch:
        assert "admin_set_ingest_mode" in response.json()["hint"]


def test_mode_switch_is_audited(clean):
    world = clean
    response = rpc(world, "admin", "admin_set_ingest_mode", mode="manual", reason="maintenance")
    assert response.status_code == 200, response.text
    assert response.json()["settings"]["mode"] == "manual" and settings(world)["mode"] == "manual"
    [row] = audit(world, "ingest.mode_change")
    assert row["before"] == {"mode": "auto"} and row["after"] == {"mode": "manual"}
    assert row["reason"] == "maintenance"
    same = rpc(world, "admin", "admin_set_ingest_mode", mode="manual")
    assert same.json()["warnings"] == ["no_changes"]
    assert len(audit(world, "ingest.mode_change")) == 1


# --- emergency stop ------------------------------------------------------------------------------


def test_emergency_stop_cancels_queued_work_and_blocks_triggers(clean):
    world = clean
    [queued] = sql(world, "select ingest.trigger_sync('sync_catalog') as id")
    [running] = sql(
        world,
        "insert into procrastinate.procrastinate_jobs (queue_name, task_name, lock, status, attempts) "
        "values ('sync', 'sync_episodes', 'ingest:sync_episodes', 'doing', 1) returning id",
    )
    [run] = sql(world, "select (ingest.begin_run('sync_episodes', %s, '{}', null, 4242)).id",
                running["id"])
    sql(world, "insert into data.sync_runs (task, status, job_id) values ('sync_schedule', 'interrupted', 1)")

    missing = rpc(world, "super_admin", "admin_emergency_stop", reason="  ")
    assert missing.status_code == 400 and missing.json()["code"] == "reason_required"
    response = rpc(world, "super_admin", "admin_emergency_stop", reason="upstream sends garbage")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["jobs_cancelled"], body["jobs_aborting"], body["runs_closed"]) == (1, 1, 1)
    assert body["runs_stopping"] == 1 and body["jobs_stopped"] == 2
    assert body["settings"]["stopped"] is True and body["settings"]["mode"] == "manual"
    row = settings(world)
    assert row["stopped_at"] is not None and row["stopped_reason"] == "upstream sends garbage"
    jobs = {j["id"]: j for j in sql(world, "select id, status::text, abort_requested "
                                           "from procrastinate.procrastinate_jobs")}
    assert jobs[queued["id"]]["status"] == "cancelled"
    assert jobs[running["id"]]["status"] == "doing" and jobs[running["id"]]["abort_requested"]
    statuses = {r["task"]: (r["status"], r["error_code"])
                for r in sql(world, "select task, status, error_code from data.sync_runs")}
    assert statuses["sync_schedule"] == ("cancelled", "emergency_stop")
    assert statuses["sync_episodes"] == ("running", None)  # its worker stops at the next page
    [entry] = audit(world, "ingest.emergency_stop")
    assert entry["before"]["stopped_at"] is None and entry["after"]["mode"] == "manual"
    assert entry["after"]["jobs_cancelled"] == 1 and entry["reason"] == "upstream sends garbage"
    [live] = get(world, "only_logs", "/admin_sync_runs", id=f"eq.{run['id']}").json()
    assert live["abort_requested"] is True and live["job_status"] == "doing"

    # while stopped: nothing can be queued, the mode cannot be switched
    blocked = rpc(world, "admin", "admin_trigger_sync", task="sync_catalog")
    assert blocked.status_code == 409 and blocked.json()["code"] == "ingest_stopped"
    assert rpc(world, "admin", "admin_set_ingest_mode", mode="auto").status_code == 409
    assert sql(world, "select count(*) as n from procrastinate.procrastinate_jobs "
                      "where status = 'todo'")[0]["n"] == 0

    resumed = rpc(world, "only_emergency", "admin_resume_ingest", mode="manual", reason="fixed")
    assert resumed.status_code == 200, resumed.text
    assert resumed.json()["changed"] is True
    row = settings(world)
    assert row["stopped_at"] is None and row["mode"] == "manual"
    [entry] = audit(world, "ingest.resume")
    assert entry["after"] == {"mode": "manual", "stopped_at": None, "stopped_reason": None}
    again = rpc(world, "only_emergency", "admin_resume_ingest")
    assert again.json()["changed"] is False and again.json()["warnings"] == ["not_stopped"]
    assert rpc(world, "admin", "admin_trigger_sync", task="sync_catalog").status_code == 200


# --- triggers and sync runs ----------------------------------------------------------------------


def test_trigger_returns_a_job_then_says_it_is_already_queued(clean):
    world = clean
    first = rpc(world, "admin", "admin_trigger_sync", task="sync_catalog", reason="new season")
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["already_queued"] is False and isinstance(body["job_id"], int)
    [job] = sql(world, "select task_name, status::text, lock, queueing_lock, args "
                       "from procrastinate.procrastinate_jobs where id = %s", body["job_id"])
    assert job == {"task_name": "sync_catalog", "status": "todo", "lock": "ingest:sync_catalog",
                   "queueing_lock": "ingest:sync_catalog", "args": {}}
    [entry] = audit(world, "ingest.trigger")
    assert entry["entity_type"] == "sync_task" and entry["entity_id"] == "sync_catalog"
    assert entry["after"] == {"job_id": body["job_id"], "args": {}}
    assert entry["id"] == body["audit_log_id"]

    second = rpc(world, "only_run", "admin_trigger_sync", task="sync_catalog")
    assert second.status_code == 200, second.text
    assert second.json()["already_queued"] is True and second.json()["job_id"] == body["job_id"]
    assert second.json()["audit_log_id"] is None and len(audit(world, "ingest.trigger")) == 1

    episodes = rpc(world, "only_settings", "admin_trigger_sync", task="sync_episodes",
                   args={"shikimori_ids": [21, 1535]})
    assert episodes.status_code == 200 and episodes.json()["already_queued"] is False
    jobs = get(world, "admin", "/admin_sync_jobs", status="eq.todo", order="id").json()
    assert [(j["id"], j["task"]) for j in jobs] == [(body["job_id"], "sync_catalog"),
                                                  (episodes.json()["job_id"], "sync_episodes")]
    assert jobs[1]["args"] == {"shikimori_ids": [21, 1535]} and jobs[0]["queued_at"]
    assert get(world, "admin", "/admin_ingest_settings").json()[0]["jobs_queued"] == 2

    for task, args, code in [("nope", {}, "unknown_task"), (None, {}, "unknown_task"),
                             ("sync_schedule", [1], "invalid_args")]:
        bad = rpc(world, "admin", "admin_trigger_sync", task=task, args=args)
        assert bad.status_code == 400 and bad.json()["code"] == code, bad.text


def test_sync_runs_show_progress_while_a_sync_runs(clean):
    world = clean
    [job] = sql(world, "select ingest.trigger_sync('sync_episodes') as id")
    [run] = sql(world, "select (ingest.begin_run('sync_episodes', %s, '{}', null, 77)).id", job["id"])
    page = [{"shikimori_id": "21", "quality": "720p",
             "translation": {"id": 610, "title": "AniLibria", "type": "voice"},
             "seasons": {"1": {"episodes": {"1": "//kodik.test/e1", "2": "//kodik.test/e2"}}}},
            {"shikimori_id": "22", "translation": {"id": 611, "title": "Subs", "type": "subtitles"},
             "link": "ftp://not-https"}]
    sql(world, "select ingest.stage_episodes(%s, %s, '{\"next\": \"t1\"}', %s, 4)",
        run["id"], job["id"], json.dumps(page))

    [row] = get(world, "only_logs", "/admin_sync_runs", status="eq.running").json()
    assert row["id"] == run["id"] and row["task"] == "sync_episodes" and row["status"] == "running"
    assert (row["pages_done"], row["pages_total"], row["progress_percent"]) == (1, 4, 25.0)
    assert (row["items_fetched"], row["items_inserted"], row["items_updated"],
            row["items_unchanged"], row["items_skipped"]) == (2, 1, 0, 0, 1)
    assert row["requests"] == 1 and row["cursor"] == {"next": "t1"} and row["worker_pid"] == 77
    assert row["job_id"] == job["id"] and row["job_status"] == "todo"
    assert row["finished_at"] is None and row["duration_seconds"] >= 0
    assert row["idle_seconds"] is not None

    sql(world, "select ingest.finish_run(%s, %s, 'failed', 'kodik_unavailable', 'HTTP 503')",
        run["id"], job["id"])
    [done] = get(world, "admin", "/admin_sync_runs", id=f"eq.{run['id']}").json()
    assert done["status"] == "failed" and done["error_code"] == "kodik_unavailable"
    assert done["error"] == "HTTP 503" and done["finished_at"] is not None
    assert done["idle_seconds"] is None
    [job_row] = get(world, "admin", "/admin_sync_jobs", id=f"eq.{job['id']}").json()
    assert job_row["run_id"] == run["id"]


# --- staging area --------------------------------------------------------------------------------


def test_match_publish_and_unmatch(clean):
    world = clean
    stage(world, 9001, "Bleach")
    stage(world, 9002, "Mushishi")
    with owner_connect(world["db"]) as conn:
        manual = create_anime(conn, "Bleach (manual)", state="published", source="manual",
                              edited_fields=["title"])
    sql(world, "update data.ingest_settings set new_title_state = 'pending', auto_publish = false")

    rows = get(world, "only_settings", "/admin_staging_anime", order="shikimori_id",
               select="shikimori_id,title,title_ru,anime_id,matched_by,publish_state").json()
    assert rows == [
        {"shikimori_id": 9001, "title": "Bleach", "title_ru": "Bleach (ru)", "anime_id": None,
         "matched_by": None, "publish_state": "pending"},
        {"shikimori_id": 9002, "title": "Mushishi", "title_ru": "Mushishi (ru)", "anime_id": None,
         "matched_by": None, "publish_state": "pending"},
    ]

    matched = rpc(world, "admin", "admin_match", shikimori_id=9001, anime_id=str(manual),
                  reason="same show")
    assert matched.status_code == 200, matched.text
    assert matched.json()["staging"]["anime_id"] == str(manual)
    assert matched.json()["staging"]["matched_by"] == "manual" and matched.json()["changed"]
    [entry] = audit(world, "ingest.match")
    assert entry["entity_type"] == "staging_anime" and entry["entity_id"] == "9001"
    assert entry["before"] == {"anime_id": None, "matched_by": None}
    assert entry["after"] == {"anime_id": str(manual), "matched_by": "manual", "displaced": []}
    same = rpc(world, "admin", "admin_match", shikimori_id=9001, anime_id=str(manual))
    assert same.json()["changed"] is False and same.json()["warnings"] == ["no_changes"]

    published = rpc(world, "admin", "admin_publish", shikimori_ids=[9001], reason="go")
    assert published.status_code == 200, published.text
    assert published.json()["published"]["anime_updated"] == 1
    assert published.json()["published"]["anime_inserted"] == 0
    [title] = sql(world, "select title, title_ru, shikimori_id, state from data.anime where id = %s",
                  manual)
    # the hand-edited title is kept; the rest comes from staging
    assert title == {"title": "Bleach (manual)", "title_ru": "Bleach (ru)", "shikimori_id": 9001,
                     "state": "published"}
    [entry] = audit(world, "ingest.publish")
    assert entry["entity_id"] == "9001" and entry["after"]["shikimori_ids"] == [9001]
    assert entry["after"]["anime_updated"] == 1 and entry["reason"] == "go"

    everything = rpc(world, "admin", "admin_publish")
    assert everything.json()["published"]["anime_inserted"] == 1
    [new] = sql(world, "select id, state, source from data.anime where shikimori_id = 9002")
    assert (new["state"], new["source"]) == ("pending", "parser")
    nothing = rpc(world, "admin", "admin_publish")
    assert nothing.json()["warnings"] == ["no_changes"] and nothing.json()["audit_log_id"] is None
    view = {r["shikimori_id"]: r for r in get(world, "admin", "/admin_staging_anime").json()}
    assert view[9001]["publish_state"] == "published"
    assert view[9001]["anime_title"] == "Bleach (manual)"
    assert view[9002]["matched_by"] == "auto" and view[9002]["anime_state"] == "pending"

    unmatched = rpc(world, "admin", "admin_unmatch", shikimori_id=9001, reason="wrong show")
    assert unmatched.status_code == 200, unmatched.text
    assert unmatched.json()["staging"]["matched_by"] == "unmatched"
    [entry] = audit(world, "ingest.unmatch")
    assert entry["before"] == {"anime_id": str(manual), "matched_by": "manual"}
    assert rpc(world, "admin", "admin_unmatch", shikimori_id=9001).json()["changed"] is False
    # an unmatched title is not published any more, whatever it says upstream
    stage(world, 9001, "Bleach: Thousand-Year Blood War")
    assert rpc(world, "admin", "admin_publish").json()["warnings"] == ["no_changes"]
    assert sql(world, "select title_ru from data.anime where id = %s", manual)[0]["title_ru"] == \
        "Bleach (ru)"
    [row] = get(world, "admin", "/admin_staging_anime", shikimori_id="eq.9001").json()
    assert row["publish_state"] == "unmatched" and row["anime_id"] is None


def test_match_refusals_and_displacement(clean):
    world = clean
    stage(world, 9101, "Monster")
    stage(world, 9102, "Mononoke")
    sql(world, "select ingest.publish()")  # both become catalog titles (matched auto)
    with owner_connect(world["db"]) as conn:
        bare = create_anime(conn, "Monster (manual)", source="manual")
        gone = create_anime(conn, "Deleted", deleted=True)

    for body, status, code in [
        ({"shikimori_id": 1, "anime_id": str(bare)}, 404, "staging_not_found"),
        ({"shikimori_id": 9101, "anime_id": str(uuid.uuid4())}, 404, "anime_not_found"),
        ({"shikimori_id": 9101, "anime_id": str(gone)}, 410, "anime_deleted"),
        # 9101's own catalog title carries 9101: publishing into another title would collide
        ({"shikimori_id": 9101, "anime_id": str(bare)}, 409, "shikimori_id_taken"),
    ]:
        response = rpc(world, "admin", "admin_match", **body)
        assert response.status_code == status, response.text
        assert response.json()["code"] == code
    assert rpc(world, "admin", "admin_unmatch", shikimori_id=1).status_code == 404

    # matching 9101 onto 9102's title displaces 9102 (one staged title per catalog title)
    [target] = sql(world, "select anime_id from data.staging_anime where shikimori_id = 9102")
    moved = rpc(world, "admin", "admin_match", shikimori_id=9101, anime_id=str(target["anime_id"]))
    assert moved.status_code == 200, moved.text
    assert moved.json()["displaced"] == [9102]
    assert moved.json()["warnings"] == ["shikimori_id_differs"]
    rows = {r["shikimori_id"]: r for r in sql(world, "select shikimori_id, anime_id, matched_by "
                                                    "from data.staging_anime")}
    assert rows[9102]["matched_by"] == "unmatched" and rows[9102]["anime_id"] is None
    assert rows[9101]["anime_id"] == target["anime_id"]
    assert audit(world, "ingest.match")[-1]["after"]["displaced"] == [9102]


def test_publish_holds_back_rows_of_a_running_sync(clean):
    world = clean
    [job] = sql(world, "select ingest.trigger_sync('sync_catalog') as id")
    [run] = sql(world, "select (ingest.begin_run('sync_catalog', %s, '{}', null, 1)).id", job["id"])
    stage(world, 9201, "Half-staged", run_id=run["id"])
    response = rpc(world, "admin", "admin_publish")
    assert response.status_code == 200, response.text
    assert response.json()["held_back"] == 1 and response.json()["warnings"] == ["no_changes"]
    assert sql(world, "select count(*) as n from data.anime where shikimori_id = 9201")[0]["n"] == 0
