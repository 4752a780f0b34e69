"""Audit with no gaps (issue 13), the parts not covered elsewhere: ingest's writes to the airing
schedule are audited as the system actor, one row per title whose airings changed, in the
publish's own statement."""

from __future__ import annotations

from tests.helpers import create_anime


def stage_airing(conn, shikimori_id: int, episode: int, airs_at: str) -> None:
    conn.execute(
        "insert into data.staging_schedule (shikimori_id, episode_number, airs_at, content_hash) "
        "values (%s, %s, %s, md5(%s)) on conflict (shikimori_id) do update "
        "set episode_number = excluded.episode_number, airs_at = excluded.airs_at, content_hash = excluded.content_hash",
        (shikimori_id, episode, airs_at, f"{episode}@{airs_at}"))


def schedule_audit(conn, anime_id) -> list[tuple]:
    return conn.execute(
        "select actor_type, actor_id, before, after, reason from data.audit_log "
        "where action = 'ingest.schedule_update' and entity_id = %s order by id", (str(anime_id),)).fetchall()


def test_ingest_schedule_writes_are_audited_once_per_changed_title(conn):
    first = create_anime(conn, shikimori_id=990001)
    second = create_anime(conn, shikimori_id=990002)
    stage_airing(conn, 990001, 3, "2026-12-10T12:00:00Z")
    stage_airing(conn, 990002, 7, "2026-12-11T12:00:00Z")
    result = conn.execute("select ingest.publish(null, array[990001, 990002])").fetchone()[0]
    assert result["schedule_written"] == 2
    assert schedule_audit(conn, first) == [
        ("system", None, {"3": None}, {"3": "2026-12-10T12:00:00+00:00"}, "publish")]
    assert len(schedule_audit(conn, second)) == 1

    # the same airing again: nothing written, nothing audited; a moved airing: before/after
    assert conn.execute("select ingest.publish(null, array[990001])").fetchone()[0]["schedule_written"] == 0
    stage_airing(conn, 990001, 3, "2026-12-10T18:30:00Z")
    stage_airing(conn, 990002, 7, "2026-12-11T12:00:00Z")  # unchanged content: no row for it
    conn.execute("select ingest.publish(null, array[990001, 990002])")
    assert schedule_audit(conn, first)[1][2:4] == (
        {"3": "2026-12-10T12:00:00+00:00"}, {"3": "2026-12-10T18:30:00+00:00"})
    assert len(schedule_audit(conn, second)) == 1
