"""Ingest tasks. Names are the contract (§8): sync_catalog, sync_schedule, sync_episodes; each
takes {} for a full run. Every sync carries lock = queueing_lock = "ingest:<task>", as its row
of data.sync_tasks says (the owner of the task list; tests/ingest/test_tasks.py proves they
agree): with any number of workers one runs and at most one waits.
Periodic ticks (cron from the environment) ask ``ingest.tick`` whether to defer a sync.
A sync queued by an HTTP request carries its ``request_id`` (ingest.defer); the run's log
lines name it.
"""

from __future__ import annotations

from typing import Any

from procrastinate import JobContext

from ingest import mail, settings, sync
from ingest.app import app

SYNC_QUEUE = "sync"
PERIODIC_QUEUE = "periodic"
MAIL_QUEUE = "mail"
QUEUES = (SYNC_QUEUE, PERIODIC_QUEUE, MAIL_QUEUE)


def lock(task: str) -> str:
    return f"ingest:{task}"


def job_args(tick: int | None, **extra: Any) -> dict[str, Any]:
    args = {k: v for k, v in extra.items() if v is not None}
    if tick is not None:
        args["tick"] = tick
    return args


@app.task(
    name="sync_catalog",
    queue=SYNC_QUEUE,
    lock=lock("sync_catalog"),
    queueing_lock=lock("sync_catalog"),
    pass_context=True,
)
async def sync_catalog(
    context: JobContext, tick: int | None = None, request_id: str | None = None, dry_run: bool | None = None
) -> None:
    """All Shikimori titles into staging, then publish (not in a dry run: ingest.finish_run)."""
    assert context.job.id is not None
    await sync.run("sync_catalog", context.job.id, job_args(tick, dry_run=dry_run), request_id)


@app.task(
    name="sync_schedule",
    queue=SYNC_QUEUE,
    lock=lock("sync_schedule"),
    queueing_lock=lock("sync_schedule"),
    pass_context=True,
)
async def sync_schedule(
    context: JobContext, tick: int | None = None, request_id: str | None = None, dry_run: bool | None = None
) -> None:
    """The Shikimori calendar into staging, then publish (not in a dry run)."""
    assert context.job.id is not None
    await sync.run("sync_schedule", context.job.id, job_args(tick, dry_run=dry_run), request_id)


@app.task(
    name="sync_episodes",
    queue=SYNC_QUEUE,
    lock=lock("sync_episodes"),
    queueing_lock=lock("sync_episodes"),
    pass_context=True,
)
async def sync_episodes(
    context: JobContext,
    tick: int | None = None,
    shikimori_ids: list[int] | None = None,
    request_id: str | None = None,
    dry_run: bool | None = None,
) -> None:
    """Kodik players (all, or for `shikimori_ids`) into staging, then publish (not in a dry run)."""
    assert context.job.id is not None
    args = job_args(tick, shikimori_ids=shikimori_ids, dry_run=dry_run)
    await sync.run("sync_episodes", context.job.id, args, request_id)


@app.task(
    name="autoupdate",
    queue=SYNC_QUEUE,
    lock=lock("autoupdate"),
    queueing_lock=lock("autoupdate"),
    pass_context=True,
)
async def autoupdate(context: JobContext, tick: int | None = None, request_id: str | None = None) -> None:
    """Refresh ongoing titles (catalog fields and Kodik players), then publish."""
    assert context.job.id is not None
    await sync.run("autoupdate", context.job.id, job_args(tick), request_id)


@app.task(name="publish", queue=SYNC_QUEUE)
async def publish() -> dict[str, Any]:
    """Publish staged changes (when settings.auto_publish is off, or after a manual match)."""
    return await sync.publish()


@app.task(name="ingest_tick", queue=PERIODIC_QUEUE)
async def ingest_tick(timestamp: int, task: str) -> str:
    """A periodic tick for `task`: the database decides whether it defers a sync."""
    return await sync.tick(task, timestamp)


for _task, _cron in settings.loaded.sync_crons().items():
    app.periodic(cron=_cron, periodic_id=_task, task_kwargs={"task": _task})(ingest_tick)


@app.periodic(cron=settings.loaded.sweep_cron, periodic_id="sweep")
@app.task(name="sweep_stalled", queue=PERIODIC_QUEUE)
async def sweep_stalled(timestamp: int) -> int:
    """Fail jobs of dead workers and queue their syncs again (they resume from the cursor)."""
    return await sync.sweep(settings.loaded.stalled_seconds)


@app.periodic(cron=settings.loaded.purge_cron, periodic_id="purge_jobs")
@app.task(name="purge_finished_jobs", queue=PERIODIC_QUEUE, pass_context=True)
async def purge_finished_jobs(context: JobContext, timestamp: int) -> None:
    """Delete queue rows of jobs that finished (in any final state) more than
    INGEST_JOB_RETENTION_HOURS ago; Procrastinate keeps them forever otherwise. The outcome of
    every sync stays in data.sync_runs."""
    await context.app.job_manager.delete_old_jobs(
        nb_hours=settings.loaded.job_retention_hours, include_failed=True, include_cancelled=True, include_aborted=True
    )


@app.periodic(cron=settings.loaded.search_words_cron, periodic_id="search_words")
@app.task(name="refresh_search_words", queue=PERIODIC_QUEUE)
async def refresh_search_words(timestamp: int) -> int:
    """Recount the catalog's words that search corrects typos to (which one it asks the index
    about); drops the words no published title has any more."""
    return await sync.refresh_search_words()


# Deferred from SQL by private.defer_mail (queueing_lock = "mail:<outbox_id>"), in the
# transaction that wrote the outbox row; retried until delivered (ingest/mail.py).
@app.task(name="send_mail", queue=MAIL_QUEUE, retry=mail.MailRetry(settings.loaded))
async def send_mail(outbox_id: int) -> str:
    """Deliver one mail of data.mail_outbox over SMTP."""
    return await mail.deliver(settings.loaded, outbox_id)
