-- Each person's own rows: favorites (with a list status) and watch progress. RLS limits every
-- statement to the caller's rows; the primary keys make "add twice" and "save twice" upserts
-- instead of check-then-act races.
create table data.favorites (
  user_id     uuid not null references data.users (id) on delete cascade,
  anime_id    uuid not null references data.anime (id) on delete cascade,
  list_status text not null default 'planned',
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  score       integer,
  episodes_watched integer not null default 0,
  primary key (user_id, anime_id),
  constraint favorites_list_status_valid check (list_status in ('watching', 'planned', 'completed', 'on_hold', 'dropped')),
  -- named so PostgREST's 400 (23514) says which value is wrong; the bound by the title's
  -- episode count is the trigger private.favorites_episodes_within_total (sql/private/triggers.sql)
  constraint favorites_score_1_to_10 check (score between 1 and 10),
  constraint favorites_episodes_watched_nonnegative check (episodes_watched >= 0)
);
create index favorites_anime_idx on data.favorites (anime_id);
create index favorites_user_created_idx on data.favorites (user_id, created_at desc);
alter table data.favorites enable row level security;
create policy favorites_owner_read on data.favorites for select to web_user
  using (user_id = (select private.uid()));
create policy favorites_owner_insert on data.favorites for insert to web_user
  with check (user_id = (select private.uid()));
create policy favorites_owner_update on data.favorites for update to web_user
  using (user_id = (select private.uid())) with check (user_id = (select private.uid()));
create policy favorites_owner_delete on data.favorites for delete to web_user
  using (user_id = (select private.uid()));
comment on table data.favorites is 'A person''s list: one row per title, with a list status, a personal score and episodes watched.';

-- Latest progress per person and title (what "continue watching" shows).
create table data.watch_progress (
  user_id          uuid not null references data.users (id) on delete cascade,
  anime_id         uuid not null references data.anime (id) on delete cascade,
  episode_number   integer not null,
  episode_id       uuid references data.episodes (id) on delete set null,
  position_seconds integer,
  progress_percent numeric(5, 2),
  translation_id   integer references data.translations (id) on delete set null,
  last_watched_at  timestamptz not null default now(),
  updated_at       timestamptz not null default now(),
  primary key (user_id, anime_id),
  constraint watch_progress_episode_positive check (episode_number >= 1),
  constraint watch_progress_position_nonnegative check (position_seconds >= 0),
  constraint watch_progress_percent_range check (progress_percent between 0 and 100),
  constraint watch_progress_has_position check (position_seconds is not null or progress_percent is not null)
);
create index watch_progress_user_recent_idx on data.watch_progress (user_id, last_watched_at desc);
create index watch_progress_anime_idx on data.watch_progress (anime_id);
create index watch_progress_episode_idx on data.watch_progress (episode_id);
create index watch_progress_translation_idx on data.watch_progress (translation_id);
alter table data.watch_progress enable row level security;
create policy watch_progress_owner_read on data.watch_progress for select to web_user
  using (user_id = (select private.uid()));
create policy watch_progress_owner_insert on data.watch_progress for insert to web_user
  with check (user_id = (select private.uid()));
create policy watch_progress_owner_update on data.watch_progress for update to web_user
  using (user_id = (select private.uid())) with check (user_id = (select private.uid()));
create policy watch_progress_owner_delete on data.watch_progress for delete to web_user
  using (user_id = (select private.uid()));
comment on table data.watch_progress is 'Latest playback position per person and title.';

-- Per-episode history (the profile heatmap wants dates per episode).
create table data.watch_history (
  user_id          uuid not null references data.users (id) on delete cascade,
  anime_id         uuid not null references data.anime (id) on delete cascade,
  episode_number   integer not null,
  position_seconds integer,
  progress_percent numeric(5, 2),
  watched_at       timestamptz not null,
  primary key (user_id, anime_id, episode_number),
  constraint watch_history_episode_positive check (episode_number >= 1),
  constraint watch_history_position_nonnegative check (position_seconds >= 0),
  constraint watch_history_percent_range check (progress_percent between 0 and 100)
);
create index watch_history_anime_idx on data.watch_history (anime_id);
create index watch_history_user_watched_idx on data.watch_history (user_id, watched_at desc);
alter table data.watch_history enable row level security;
create policy watch_history_owner_read on data.watch_history for select to web_user
  using (user_id = (select private.uid()));
create policy watch_history_owner_write on data.watch_history for insert to web_user
  with check (user_id = (select private.uid()));
create policy watch_history_owner_update on data.watch_history for update to web_user
  using (user_id = (select private.uid())) with check (user_id = (select private.uid()));
create policy watch_history_owner_delete on data.watch_history for delete to web_user
  using (user_id = (select private.uid()));
comment on table data.watch_history is 'Latest progress per person, title and episode.';
