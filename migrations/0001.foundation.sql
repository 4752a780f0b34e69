-- Foundation: schemas, users and sessions, RBAC, catalog, favorites and watch progress.

-- Schemas and extensions. `data` holds every private table, `private` request helpers and
-- triggers, `auth` the functions auth_service calls, `ingest` the functions and staging
-- tables of the workers, `procrastinate` the job queue, and `api` what PostgREST serves.
create extension if not exists pg_trgm with schema public;
create extension if not exists unaccent with schema public;

create schema data;
create schema private;
create schema auth;
create schema ingest;
create schema api;

comment on schema api is 'Kitsu public API: views and functions served by PostgREST.';

-- Request context helpers. They are code (re-applied by `make migrate`), but policies call
-- them, so the first version is created here, before the first policy.
create function private.jwt_claims() returns jsonb
language sql stable set search_path = '' as $$
  -- nullif: on a pooled connection a GUC set earlier reads back as '' rather than NULL.
  select coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb, '{}'::jsonb)
$$;

create function private.uid() returns uuid
language sql stable set search_path = '' as $$
  select nullif(private.jwt_claims() ->> 'sub', '')::uuid
$$;

-- The search text of a title: every title and synonym, lower-cased. Indexed by
-- data.anime's trigram index, so it must be immutable and created before that index.
create function private.anime_search_text(title text, title_ru text, title_en text,
                                          title_original text, synonyms text[]) returns text
language sql immutable parallel safe set search_path = '' as $$
  select lower(concat_ws(' ', title, title_ru, title_en, title_original,
                         pg_catalog.array_to_string(synonyms, ' ')))
$$;
-- People who sign in. Emails are stored normalised (trimmed, lower-case) so equality is the
-- case-insensitive comparison the contract asks for, and the unique key enforces it.
create table data.users (
  id            uuid primary key default gen_random_uuid(),
  email         text not null,
  password_hash text not null,
  display_name  text,
  avatar_url    text,
  is_active     boolean not null default true,
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  constraint users_email_key unique (email),
  constraint users_email_normalised check (email = lower(btrim(email))),
  constraint users_email_shape check (email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' and length(email) <= 254),
  constraint users_password_hash_known check (password_hash ~ '^\$(argon2id|2[aby])\$'),
  constraint users_display_name_length check (display_name is null or length(btrim(display_name)) between 1 and 64),
  constraint users_avatar_url_https check (avatar_url is null or (avatar_url ~ '^https://' and length(avatar_url) <= 2048))
);
alter table data.users enable row level security;
create policy users_self_read on data.users for select to web_user
  using (id = (select private.uid()));
create policy users_self_update on data.users for update to web_user
  using (id = (select private.uid())) with check (id = (select private.uid()));
comment on table data.users is 'People who sign in; password_hash is argon2id (or legacy bcrypt until the next sign-in).';

-- One row per sign-in (device). Access tokens carry its id as `sid`; db-pre-request refuses a
-- token whose session is revoked or expired, so revoking here kills the tokens at once.
create table data.sessions (
  id           uuid primary key default gen_random_uuid(),
  user_id      uuid not null references data.users (id) on delete cascade,
  created_at   timestamptz not null default now(),
  last_used_at timestamptz not null default now(),
  expires_at   timestamptz not null,
  revoked_at   timestamptz,
  revoked_reason text,
  user_agent   text,
  ip           inet,
  constraint sessions_expiry_after_creation check (expires_at > created_at),
  constraint sessions_revocation_has_reason check ((revoked_at is null) = (revoked_reason is null)),
  constraint sessions_user_agent_length check (length(user_agent) <= 512)
);
create index sessions_user_id_idx on data.sessions (user_id);
alter table data.sessions enable row level security;
create policy sessions_self_read on data.sessions for select to web_user
  using (user_id = (select private.uid()));
create policy sessions_self_revoke on data.sessions for update to web_user
  using (user_id = (select private.uid())) with check (user_id = (select private.uid()));
comment on table data.sessions is 'Sign-in sessions (devices); revoked_at ends one, expires_at bounds its refreshes.';
-- RBAC of contract §6: roles and permissions are data, checked in SQL at request time
-- (private.has_permission), so revoking a right takes effect on the next request.
create table data.roles (
  name        text primary key,
  is_system   boolean not null default false,
  description text not null,
  constraint roles_name_shape check (name ~ '^[a-z][a-z_]*$'),
  -- target of the composite foreign key that keeps system roles away from people
  constraint roles_name_is_system_key unique (name, is_system)
);
alter table data.roles enable row level security;
create policy roles_read on data.roles for select to web_user using (true);
comment on table data.roles is 'RBAC roles; is_system marks roles of system actors (parser_bot, worker_bot).';

create table data.permissions (
  name        text primary key,
  description text not null,
  -- exact names only: no wildcard such as `anime.*` or `admin:*`
  constraint permissions_name_shape check (name ~ '^[a-z]+(\.[a-z_]+)+$')
);
alter table data.permissions enable row level security;
create policy permissions_read on data.permissions for select to web_user using (true);
comment on table data.permissions is 'RBAC permission names (exact, no wildcards).';

create table data.role_permissions (
  role       text not null references data.roles (name) on delete cascade,
  permission text not null references data.permissions (name) on delete cascade,
  primary key (role, permission)
);
create index role_permissions_permission_idx on data.role_permissions (permission);
alter table data.role_permissions enable row level security;
create policy role_permissions_read on data.role_permissions for select to web_user using (true);
comment on table data.role_permissions is 'Which permissions each role grants.';

-- A person can hold only non-system roles: the composite key (role, role_is_system) must
-- match a role whose is_system is false, so the rule cannot be bypassed by any writer.
create table data.user_roles (
  user_id        uuid not null references data.users (id) on delete cascade,
  role           text not null,
  role_is_system boolean not null default false,
  granted_by     uuid references data.users (id) on delete set null,
  granted_at     timestamptz not null default now(),
  primary key (user_id, role),
  constraint user_roles_people_only check (not role_is_system),
  constraint user_roles_role_fkey foreign key (role, role_is_system)
    references data.roles (name, is_system) on delete cascade
);
create index user_roles_role_idx on data.user_roles (role, role_is_system);
create index user_roles_granted_by_idx on data.user_roles (granted_by);
alter table data.user_roles enable row level security;
create policy user_roles_self_read on data.user_roles for select to web_user
  using (user_id = (select private.uid()));
comment on table data.user_roles is 'Roles granted to people; new users get `user`.';

create table data.audit_log (
  id          bigint generated always as identity primary key,
  actor_id    uuid references data.users (id) on delete set null,
  actor_type  text not null,
  action      text not null,
  entity_type text not null,
  entity_id   text,
  before      jsonb,
  after       jsonb,
  reason      text,
  ip          inet,
  user_agent  text,
  created_at  timestamptz not null default now(),
  constraint audit_log_actor_type_valid check (actor_type in ('user', 'system', 'anonymous')),
  constraint audit_log_user_has_actor check (actor_type <> 'user' or actor_id is not null or action like 'security.%'),
  constraint audit_log_action_shape check (action ~ '^[a-z_]+(\.[a-z_]+)+$')
);
create index audit_log_actor_id_idx on data.audit_log (actor_id);
create index audit_log_created_at_idx on data.audit_log (created_at desc);
create index audit_log_entity_idx on data.audit_log (entity_type, entity_id);
alter table data.audit_log enable row level security;
comment on table data.audit_log is 'Append-only audit trail of admin actions, ingest publishes and denied attempts.';

insert into data.roles (name, is_system, description) values
  ('super_admin', false, 'Everything, including role grants and security'),
  ('admin',       false, 'Catalog, episodes and parser configuration'),
  ('moderator',   false, 'Edits and locks catalog entries'),
  ('editor',      false, 'Creates and edits catalog entries'),
  ('support',     false, 'Reads users and the audit log'),
  ('user',        false, 'Every signed-in person'),
  ('parser_bot',  true,  'The ingest pipeline'),
  ('worker_bot',  true,  'Background workers');

insert into data.permissions (name, description) values
  ('anime.view', 'Read catalog entries in every state'),
  ('anime.create', 'Create catalog entries'),
  ('anime.edit', 'Edit catalog entries'),
  ('anime.delete', 'Soft-delete and restore catalog entries'),
  ('anime.publish', 'Publish catalog entries'),
  ('anime.lock', 'Lock fields of catalog entries'),
  ('anime.unlock', 'Unlock fields of catalog entries'),
  ('episode.view', 'Read episodes in every state'),
  ('episode.create', 'Create episodes'),
  ('episode.edit', 'Edit episodes'),
  ('episode.delete', 'Delete episodes'),
  ('episode.lock', 'Lock episodes'),
  ('episode.unlock', 'Unlock episodes'),
  ('parser.run', 'Trigger ingest runs'),
  ('parser.configure', 'Change ingest filters'),
  ('parser.override_lock', 'Let ingest overwrite locked fields'),
  ('admin.parser.settings', 'Read and change ingest settings'),
  ('admin.parser.emergency', 'Emergency-stop ingest'),
  ('admin.parser.logs', 'Read sync runs and their errors'),
  ('admin.roles.manage', 'Grant and revoke roles'),
  ('admin.users.manage', 'Manage user accounts'),
  ('admin.users.view', 'Read user accounts'),
  ('audit.view', 'Read the audit log'),
  ('security.ban.ip', 'Ban client addresses'),
  ('security.unban.ip', 'Unban client addresses');

insert into data.role_permissions (role, permission)
select 'super_admin', name from data.permissions
 where name not in ('parser.run')
union all
select 'admin', name from data.permissions
 where name like 'anime.%' or name like 'episode.%'
    or name in ('parser.configure', 'admin.parser.settings', 'admin.parser.logs', 'admin.users.view', 'audit.view')
union all
select 'moderator', unnest(array['anime.view', 'anime.edit', 'anime.lock', 'episode.view', 'episode.edit', 'episode.lock', 'audit.view'])
union all
select 'editor', unnest(array['anime.view', 'anime.create', 'anime.edit', 'episode.view', 'episode.create', 'episode.edit'])
union all
select 'support', unnest(array['anime.view', 'episode.view', 'admin.users.view', 'audit.view'])
union all
select 'user', unnest(array['anime.view', 'episode.view'])
union all
select 'parser_bot', unnest(array['anime.view', 'anime.create', 'anime.edit', 'episode.view', 'episode.create', 'episode.edit', 'parser.run', 'parser.override_lock'])
union all
select 'worker_bot', unnest(array['anime.view', 'episode.view', 'parser.run']);
-- The public catalog. Each row carries the original system's editorial columns: a state
-- machine (state), soft delete (deleted_*), field locks (locked_fields) and ownership
-- (source, created_by, updated_by). Only published, not deleted rows are visible to anon and
-- web_user; editors work through admin functions.
create table data.anime (
  id              uuid primary key default gen_random_uuid(),
  shikimori_id    integer,
  title           text not null,
  title_ru        text,
  title_en        text,
  title_original  text,
  synonyms        text[] not null default '{}',
  kind            text,
  status          text,
  episodes_total  integer,
  episodes_aired  integer,
  score           numeric(4, 2),
  rating          text,
  year            integer,
  season          text,
  aired_on        date,
  released_on     date,
  next_episode_at timestamptz,
  poster_url      text,
  description     text,
  -- editorial state
  state           text not null default 'draft',
  source          text not null default 'manual',
  locked_fields   text[] not null default '{}',
  locked_by       uuid references data.users (id) on delete set null,
  locked_reason   text,
  locked_at       timestamptz,
  deleted_at      timestamptz,
  deleted_by      uuid references data.users (id) on delete set null,
  delete_reason   text,
  created_by      uuid references data.users (id) on delete set null,
  updated_by      uuid references data.users (id) on delete set null,
  -- fields an editor changed by hand; ingest never overwrites them
  edited_fields   text[] not null default '{}',
  content_hash    text,
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  constraint anime_shikimori_id_key unique (shikimori_id),
  constraint anime_shikimori_id_positive check (shikimori_id > 0),
  constraint anime_title_present check (length(btrim(title)) > 0),
  constraint anime_kind_valid check (kind in ('tv', 'movie', 'ova', 'ona', 'special', 'tv_special', 'music', 'pv', 'cm')),
  constraint anime_status_valid check (status in ('anons', 'ongoing', 'released')),
  -- an upstream 0 means unknown and is stored as null
  constraint anime_episodes_total_positive check (episodes_total > 0),
  constraint anime_episodes_aired_nonnegative check (episodes_aired >= 0),
  constraint anime_score_range check (score between 0 and 10),
  constraint anime_rating_valid check (rating in ('none', 'g', 'pg', 'pg_13', 'r', 'r_plus', 'rx')),
  constraint anime_year_range check (year between 1900 and 2100),
  constraint anime_season_valid check (season in ('winter', 'spring', 'summer', 'fall')),
  constraint anime_dates_ordered check (released_on >= aired_on),
  constraint anime_poster_absolute check (poster_url ~ '^https?://'),
  constraint anime_state_valid check (state in ('draft', 'pending', 'published', 'broken', 'archived')),
  constraint anime_source_valid check (source in ('manual', 'parser', 'import')),
  constraint anime_delete_consistent check (deleted_at is not null or (deleted_by is null and delete_reason is null)),
  constraint anime_lock_consistent check (locked_at is not null or (locked_by is null and locked_reason is null))
);
create index anime_published_updated_idx on data.anime (updated_at desc) where state = 'published' and deleted_at is null;
create index anime_state_idx on data.anime (state);
create index anime_locked_by_idx on data.anime (locked_by);
create index anime_deleted_by_idx on data.anime (deleted_by);
create index anime_created_by_idx on data.anime (created_by);
create index anime_updated_by_idx on data.anime (updated_by);
-- search: trigram over every title and synonym (see api.search_anime)
create index anime_search_trgm_idx on data.anime using gin
  (private.anime_search_text(title, title_ru, title_en, title_original, synonyms) public.gin_trgm_ops);
alter table data.anime enable row level security;
create policy anime_public_read on data.anime for select to anon, web_user
  using (state = 'published' and deleted_at is null);
comment on table data.anime is 'Catalog titles with editorial state, locks, soft delete and ownership.';

create table data.genres (
  id      integer primary key,
  name    text not null,
  name_ru text,
  constraint genres_name_key unique (name)
);
alter table data.genres enable row level security;
create policy genres_public_read on data.genres for select to anon, web_user using (true);
comment on table data.genres is 'Genres as Shikimori numbers them.';

create table data.anime_genres (
  anime_id uuid not null references data.anime (id) on delete cascade,
  genre_id integer not null references data.genres (id) on delete cascade,
  primary key (anime_id, genre_id)
);
create index anime_genres_genre_idx on data.anime_genres (genre_id);
alter table data.anime_genres enable row level security;
create policy anime_genres_public_read on data.anime_genres for select to anon, web_user using (true);
comment on table data.anime_genres is 'Genres of each title.';

create table data.episodes (
  id            uuid primary key default gen_random_uuid(),
  anime_id      uuid not null references data.anime (id) on delete cascade,
  number        integer not null,
  title         text,
  aired_at      timestamptz,
  source        text not null default 'manual',
  locked_fields text[] not null default '{}',
  deleted_at    timestamptz,
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  constraint episodes_anime_number_key unique (anime_id, number),
  constraint episodes_number_positive check (number >= 1),
  constraint episodes_source_valid check (source in ('manual', 'parser', 'import'))
);
alter table data.episodes enable row level security;
-- visible when the episode is live and its anime is visible (the anime policy applies inside)
create policy episodes_public_read on data.episodes for select to anon, web_user
  using (deleted_at is null and exists (select 1 from data.anime a where a.id = anime_id));
comment on table data.episodes is 'Episodes of a title, numbered from 1.';

create table data.translations (
  id    integer primary key,
  title text not null,
  type  text not null,
  constraint translations_type_valid check (type in ('voice', 'subtitles'))
);
alter table data.translations enable row level security;
create policy translations_public_read on data.translations for select to anon, web_user using (true);
comment on table data.translations is 'Kodik translations (voice-over studios and subtitle teams).';

create table data.episode_sources (
  episode_id     uuid not null references data.episodes (id) on delete cascade,
  translation_id integer not null references data.translations (id) on delete cascade,
  quality        text,
  player_url     text not null,
  updated_at     timestamptz not null default now(),
  primary key (episode_id, translation_id),
  constraint episode_sources_player_url_absolute check (player_url ~ '^https://')
);
create index episode_sources_translation_idx on data.episode_sources (translation_id);
alter table data.episode_sources enable row level security;
create policy episode_sources_public_read on data.episode_sources for select to anon, web_user
  using (exists (select 1 from data.episodes e where e.id = episode_id));
comment on table data.episode_sources is 'How to play an episode: one Kodik player per translation.';

create table data.schedule (
  anime_id       uuid not null references data.anime (id) on delete cascade,
  episode_number integer not null,
  airs_at        timestamptz not null,
  updated_at     timestamptz not null default now(),
  primary key (anime_id, episode_number),
  constraint schedule_episode_positive check (episode_number >= 1)
);
create index schedule_airs_at_idx on data.schedule (airs_at);
alter table data.schedule enable row level security;
create policy schedule_public_read on data.schedule for select to anon, web_user
  using (exists (select 1 from data.anime a where a.id = anime_id));
comment on table data.schedule is 'Upcoming airings from the Shikimori calendar.';
-- Each person's own rows: favorites (with a list status) and watch progress. RLS limits every
-- statement to the caller's rows; the primary keys make "add twice" and "save twice" upserts
-- instead of check-then-act races.
create table data.favorites (
  user_id     uuid not null references data.users (id) on delete cascade,
  anime_id    uuid not null references data.anime (id) on delete cascade,
  list_status text not null default 'planned',
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  primary key (user_id, anime_id),
  constraint favorites_list_status_valid check (list_status in ('watching', 'planned', 'completed', 'on_hold', 'dropped'))
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
comment on table data.favorites is 'A person''s list: one row per title, with a list status.';

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
comment on table data.watch_history is 'Latest progress per person, title and episode.';
