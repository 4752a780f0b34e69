-- Cut-over from the old deployment (contract §13). The importer (`python -m legacy_import`)
-- streams each old table with COPY into a landing table here, whose columns are the ones of the
-- old table (original-system.md §1) the import reads; sql/legacy/import.sql then upserts them
-- into data.* set-based. Landing tables are unlogged (refilled on every run, nothing to recover)
-- and have no constraints, so any old row lands and the import function decides about it. They
-- have no row-level security either: COPY FROM refuses tables under RLS, and only the importer
-- role may touch them (sql/grants.sql). What the import keeps (maps, the report) is under RLS.
create schema legacy;
comment on schema legacy is 'Cut-over from the old deployment: landing tables, the import, its report.';

create unlogged table legacy.users (
  id uuid, email text, password_hash text, avatar text, is_active boolean, created_at timestamptz
);
create unlogged table legacy.roles (id uuid, name text);
create unlogged table legacy.user_roles (
  id uuid, user_id uuid, role_id uuid, granted_by uuid, granted_at timestamptz
);
create unlogged table legacy.anime (
  id uuid, title text, title_ru text, title_en text, title_original text, description text,
  poster_url text, year integer, season text, status text, state text, created_by uuid,
  updated_by uuid, source text, is_locked boolean, locked_fields text[], locked_by uuid,
  locked_reason text, locked_at timestamptz, is_deleted boolean, deleted_at timestamptz,
  deleted_by uuid, delete_reason text, created_at timestamptz, updated_at timestamptz
);
create unlogged table legacy.releases (id uuid, anime_id uuid);
create unlogged table legacy.episodes (
  id uuid, release_id uuid, number integer, title text, source text, is_locked boolean,
  locked_fields text[], is_deleted boolean, deleted_at timestamptz, updated_at timestamptz
);
create unlogged table legacy.favorites (id uuid, user_id uuid, anime_id uuid, created_at timestamptz);
create unlogged table legacy.watch_progress (
  id uuid, user_id uuid, anime_id uuid, episode integer, position_seconds integer,
  progress_percent double precision, created_at timestamptz, last_watched_at timestamptz
);
create unlogged table legacy.audit_logs (
  id uuid, actor_id uuid, actor_type text, action text, entity_type text, entity_id text,
  before json, after json, reason text, ip_address text, user_agent text, created_at timestamptz
);
create unlogged table legacy.parser_settings (
  id integer, mode text, stage_only boolean, publish_enabled boolean, enable_autoupdate boolean,
  update_interval_minutes integer, allowed_translation_types json, allowed_translations json,
  allowed_qualities json, blacklist_titles json, blacklist_external_ids json
);
create unlogged table legacy.parser_sources (id integer, code text);
create unlogged table legacy.anime_external (
  id integer, anime_id text, source_id integer, external_id text, matched_by text
);
create unlogged table legacy.anime_external_binding (id integer, anime_external_id integer, anime_id text);

-- Which person each old account became: its own id, the survivor of its e-mail (accounts whose
-- e-mails differ only in case are merged), or null when the account was skipped.
create table legacy.user_map (
  legacy_id uuid primary key,
  user_id   uuid,
  email     text
);
create index user_map_user_idx on legacy.user_map (user_id);
alter table legacy.user_map enable row level security;

-- data.audit_log numbers its rows; this keeps which number each old entry got, so a second run
-- inserts nothing.
create table legacy.audit_map (
  legacy_id uuid primary key,
  audit_id  bigint not null unique
);
alter table legacy.audit_map enable row level security;

-- The report of the last run of each step: every old row skipped or repaired, and why (the row
-- itself in detail, so nothing is lost).
create table legacy.issues (
  step      text not null,
  legacy_id text,
  action    text not null,
  reason    text not null,
  detail    jsonb,
  constraint issues_action_valid check (action in ('skipped', 'repaired'))
);
create index issues_step_idx on legacy.issues (step, action, reason);
alter table legacy.issues enable row level security;
comment on table legacy.issues is 'Old rows the last import skipped or repaired, with the reason (step = landing table).';
