-- Ingest: settings, sync runs, the shared upstream rate limit and the staging area. Written
-- only through the security-definer ingest.* functions (sql/ingest/); read by operators in SQL
-- and, later, by the admin API. No PostgREST role has a policy here, so RLS hides every row.

-- One row of settings (original system §6.4). Periodic ticks read it to decide whether to work.
create table data.ingest_settings (
  id                          boolean primary key default true,
  mode                        text not null default 'auto',
  stopped_at                  timestamptz,
  stopped_reason              text,
  new_title_state             text not null default 'published',
  auto_publish                boolean not null default true,
  catalog_interval_minutes    integer not null default 1440,
  schedule_interval_minutes   integer not null default 60,
  episodes_interval_minutes   integer not null default 360,
  autoupdate_enabled          boolean not null default true,
  autoupdate_interval_minutes integer not null default 60,
  allowed_translation_types   text[] not null default '{voice,subtitles}',
  allowed_translations        text[] not null default '{}',
  allowed_qualities           text[] not null default '{}',
  blacklist_titles            text[] not null default '{}',
  blacklist_shikimori_ids     integer[] not null default '{}',
  updated_at                  timestamptz not null default now(),
  constraint ingest_settings_single_row check (id),
  constraint ingest_settings_mode_valid check (mode in ('auto', 'manual')),
  constraint ingest_settings_stop_consistent check (stopped_at is not null or stopped_reason is null),
  constraint ingest_settings_new_title_state_valid check (new_title_state in ('published', 'pending')),
  constraint ingest_settings_intervals_valid check (
    catalog_interval_minutes between 0 and 10080 and schedule_interval_minutes between 0 and 10080
    and episodes_interval_minutes between 0 and 10080 and autoupdate_interval_minutes between 0 and 1440),
  constraint ingest_settings_translation_types_valid check (
    allowed_translation_types <@ array['voice', 'subtitles'])
);
alter table data.ingest_settings enable row level security;
comment on table data.ingest_settings is 'Ingest settings (one row): mode, emergency stop, publishing of new titles, intervals, filters.';
comment on column data.ingest_settings.mode is 'auto: periodic ticks start syncs when due; manual: only operators start them.';
comment on column data.ingest_settings.stopped_at is 'Emergency stop: while set, no sync starts and running ones stop at the next page.';
comment on column data.ingest_settings.new_title_state is 'State of titles ingest creates: published (default) or pending (wait for review).';
comment on column data.ingest_settings.auto_publish is 'Publish staging into the catalog at the end of every successful sync.';
comment on column data.ingest_settings.blacklist_titles is 'Case-insensitive substrings; a title matching any of them in any language is not staged.';
insert into data.ingest_settings default values;

-- The sync tasks, one owner for their names and locks: every sync job carries lock =
-- queueing_lock = its task's lock (one runs, at most one waits). ingest/tasks.py declares the
-- same tasks to Procrastinate; tests/ingest/test_tasks.py proves the two agree.
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

-- One row per sync attempt chain: a job that dies is resumed by the next job on the same row.
create table data.sync_runs (
  id              bigint primary key generated always as identity,
  task            text not null references data.sync_tasks (task),
  status          text not null default 'running',
  args            jsonb not null default '{}',
  tick            bigint,
  job_id          bigint,
  worker_pid      integer,
  attempts        integer not null default 1,
  cursor          jsonb,
  pages_done      integer not null default 0,
  pages_total     integer,
  items_fetched   integer not null default 0,
  items_inserted  integer not null default 0,
  items_updated   integer not null default 0,
  items_unchanged integer not null default 0,
  items_skipped   integer not null default 0,
  requests        integer not null default 0,
  published       jsonb,
  error_code      text,
  error           text,
  started_at      timestamptz not null default now(),
  progressed_at   timestamptz not null default now(),
  finished_at     timestamptz,
  constraint sync_runs_status_valid check (status in ('running', 'interrupted', 'succeeded', 'failed', 'cancelled')),
  constraint sync_runs_finished_consistent check ((finished_at is null) = (status in ('running', 'interrupted'))),
  constraint sync_runs_counts_nonnegative check (
    pages_done >= 0 and items_fetched >= 0 and items_inserted >= 0 and items_updated >= 0
    and items_unchanged >= 0 and items_skipped >= 0 and requests >= 0)
);
-- a sync never runs twice at once: one unfinished run per task (unfinished = finished_at is
-- null; sync_runs_finished_consistent ties it to the status)
create unique index sync_runs_one_unfinished_idx on data.sync_runs (task) where finished_at is null;
create index sync_runs_task_started_idx on data.sync_runs (task, started_at desc);
alter table data.sync_runs enable row level security;
comment on table data.sync_runs is 'Sync runs: status, progress (cursor, pages, items) and errors, committed page by page.';
comment on column data.sync_runs.cursor is 'Where a resumed run continues: {"page": n} (Shikimori) or {"next": token} (Kodik).';
comment on column data.sync_runs.job_id is 'The Procrastinate job that owns the run now (fencing: only it may write progress).';
comment on column data.sync_runs.published is 'What the publish step changed at the end of the run.';

-- The shared upstream rate limit: one row of rules per upstream, and the log of granted slots.
create table data.upstream_limits (
  upstream   text primary key,
  per_second integer,
  per_minute integer,
  window_scale numeric not null default 1,
  margin_ms  integer not null default 250,
  enabled    boolean not null default true,
  constraint upstream_limits_positive check (per_second > 0 and per_minute > 0 and window_scale > 0 and margin_ms >= 0)
);
alter table data.upstream_limits enable row level security;
comment on table data.upstream_limits is 'Request limits shared by every worker: per_second in any 1 s, per_minute in any 60 s (windows times window_scale, plus margin_ms); null = unlimited.';
comment on column data.upstream_limits.enabled is 'False: ingest.acquire_slot refuses every request to this upstream (KI007); its syncs fail with <upstream>_disabled.';
insert into data.upstream_limits (upstream, per_second, per_minute) values
  ('shikimori', 5, 90),
  ('kodik', 5, 300);

create table data.upstream_requests (
  upstream   text not null references data.upstream_limits (upstream) on delete cascade,
  granted_at timestamptz not null
);
create index upstream_requests_upstream_granted_idx on data.upstream_requests (upstream, granted_at);
alter table data.upstream_requests enable row level security;
comment on table data.upstream_requests is 'Slots granted by ingest.acquire_slot (last two minutes kept).';

-- Staging: what the upstreams said, normalised, with a content hash. Publish copies changed
-- rows into the catalog; anime_id is the match (auto by shikimori_id, or set by an editor).
create table data.staging_anime (
  shikimori_id   integer primary key,
  payload        jsonb not null,
  content_hash   text not null,
  anime_id       uuid references data.anime (id) on delete set null,
  matched_by     text,
  run_id         bigint references data.sync_runs (id) on delete set null,
  fetched_at     timestamptz not null default now(),
  published_hash text,
  published_at   timestamptz,
  constraint staging_anime_matched_by_valid check (matched_by in ('auto', 'manual', 'unmatched')),
  -- linked exactly when matched; 'unmatched' = an editor unlinked it (no auto re-match, not published)
  constraint staging_anime_match_consistent check ((anime_id is not null) = coalesce(matched_by in ('auto', 'manual'), false))
);
create unique index staging_anime_anime_idx on data.staging_anime (anime_id);
create index staging_anime_run_idx on data.staging_anime (run_id);
create index staging_anime_unpublished_idx on data.staging_anime (shikimori_id) where published_hash is distinct from content_hash;
alter table data.staging_anime enable row level security;
comment on table data.staging_anime is 'Shikimori titles as last fetched; anime_id links one to its catalog row (matched_by auto or manual).';

create table data.staging_episodes (
  shikimori_id      integer not null,
  translation_id    integer not null,
  translation_title text not null,
  translation_type  text not null,
  quality           text,
  episodes          jsonb not null,
  content_hash      text not null,
  run_id            bigint references data.sync_runs (id) on delete set null,
  fetched_at        timestamptz not null default now(),
  published_hash    text,
  published_at      timestamptz,
  primary key (shikimori_id, translation_id),
  constraint staging_episodes_type_valid check (translation_type in ('voice', 'subtitles'))
);
create index staging_episodes_run_idx on data.staging_episodes (run_id);
alter table data.staging_episodes enable row level security;
comment on table data.staging_episodes is 'Kodik players grouped per title and translation: episodes = {"<number>": "<https player url>"}.';

create table data.staging_schedule (
  shikimori_id   integer primary key,
  episode_number integer not null,
  airs_at        timestamptz not null,
  content_hash   text not null,
  run_id         bigint references data.sync_runs (id) on delete set null,
  fetched_at     timestamptz not null default now(),
  published_hash text,
  constraint staging_schedule_episode_positive check (episode_number >= 1)
);
create index staging_schedule_run_idx on data.staging_schedule (run_id);
alter table data.staging_schedule enable row level security;
comment on table data.staging_schedule is 'The Shikimori calendar: the next episode of each ongoing or announced title.';
