-- depends: 0021.ingest
-- One owner for the sync tasks (issue 8): data.sync_tasks names each task and the lock its
-- jobs carry; sync_runs.task references it instead of repeating the list in a check, and the
-- admin views and RPCs read it. ingest/tasks.py declares the same tasks to Procrastinate and
-- tests/ingest prove the two agree. "Unfinished run" is finished_at is null (the check
-- sync_runs_finished_consistent ties it to the status), so the one-unfinished-run index says so.

create table data.sync_tasks (
  task text primary key,
  lock text not null unique,
  description text not null,
  constraint sync_tasks_lock_format check (lock = 'ingest:' || task)
);
alter table data.sync_tasks enable row level security;
comment on table data.sync_tasks is 'The sync tasks and the lock (= queueing lock) of their jobs: one runs, at most one waits.';

insert into data.sync_tasks (task, lock, description) values
  ('sync_catalog', 'ingest:sync_catalog', 'Titles from Shikimori, page by page.'),
  ('sync_schedule', 'ingest:sync_schedule', 'Airing schedule of ongoing titles from Shikimori.'),
  ('sync_episodes', 'ingest:sync_episodes', 'Players and episodes from Kodik.'),
  ('autoupdate', 'ingest:autoupdate', 'Recently updated titles: catalog, then their episodes.');

alter table data.sync_runs drop constraint sync_runs_task_valid,
  add constraint sync_runs_task_fkey foreign key (task) references data.sync_tasks (task);

drop index data.sync_runs_one_unfinished_idx;
create unique index sync_runs_one_unfinished_idx on data.sync_runs (task) where finished_at is null;
