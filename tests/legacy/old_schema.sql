-- The old system's schema as its alembic migrations 0001-0013 (S) build it, written from
-- original-system.md §1: the tables, columns, types, keys and foreign keys it documents. S has
-- no unique key on user_roles / role_permissions and no CHECK on audit_logs.actor_type (§10.27,
-- §10.28), and users.email is unique only case-sensitively: the defects the import repairs.
create table users (
  id uuid constraint pk_users primary key,
  email varchar(255) not null constraint uq_users_email unique,
  password_hash varchar(255) not null,
  avatar varchar(255),
  is_active boolean not null default true,
  created_at timestamptz not null default now()
);
create table refresh_tokens (
  id uuid primary key,
  user_id uuid not null references users (id) on delete cascade constraint uq_refresh_tokens_user_id unique,
  token_hash varchar(64) not null,
  expires_at timestamptz not null,
  revoked boolean not null default false,
  created_at timestamptz not null default now()
);
create table anime (
  id uuid primary key,
  title varchar(255) not null,
  title_ru varchar(255), title_en varchar(255), title_original varchar(255),
  description text, poster_url text, year integer, season varchar(32), status varchar(64), genres json,
  state varchar(50) not null default 'draft',
  created_by uuid references users (id) on delete set null,
  updated_by uuid references users (id) on delete set null,
  source varchar(50) not null default 'manual',
  is_locked boolean default false,
  locked_fields varchar(100)[],
  locked_by uuid references users (id) on delete set null,
  locked_reason text, locked_at timestamptz,
  is_deleted boolean default false, deleted_at timestamptz,
  deleted_by uuid references users (id) on delete set null,
  delete_reason text,
  created_at timestamptz default now(), updated_at timestamptz
);
create index ix_anime_title on anime (title);
create table releases (
  id uuid primary key,
  anime_id uuid references anime (id) on delete cascade,
  title varchar(255) not null, year integer, status varchar(64), created_at timestamptz default now()
);
create table episodes (
  id uuid primary key,
  release_id uuid references releases (id) on delete cascade,
  number integer not null,
  title varchar(255), iframe_url text, available_translations json, available_qualities json,
  created_by uuid references users (id) on delete set null,
  updated_by uuid references users (id) on delete set null,
  source varchar(50) not null default 'manual',
  is_locked boolean default false, locked_fields varchar(100)[],
  locked_by uuid references users (id) on delete set null, locked_reason text, locked_at timestamptz,
  is_deleted boolean default false, deleted_at timestamptz,
  deleted_by uuid references users (id) on delete set null, delete_reason text,
  updated_at timestamptz
);
create table favorites (
  id uuid primary key,
  user_id uuid not null references users (id) on delete cascade,
  anime_id uuid not null references anime (id) on delete cascade,
  created_at timestamptz default now(),
  constraint uq_favorites_user_id unique (user_id, anime_id)
);
create table watch_progress (
  id uuid primary key,
  user_id uuid references users (id) on delete cascade,
  anime_id uuid references anime (id) on delete cascade,
  episode integer not null,
  position_seconds integer,
  progress_percent double precision,
  created_at timestamptz default now(),
  last_watched_at timestamptz default now(),
  constraint uq_watch_progress_user_id unique (user_id, anime_id)
);
create table roles (
  id uuid primary key,
  name varchar(100) constraint uq_roles_name unique,
  display_name varchar(255) not null,
  description text, is_system boolean default false, is_active boolean default true,
  created_at timestamptz default now(), updated_at timestamptz
);
create table permissions (
  id uuid primary key,
  name varchar(100) unique, display_name varchar(255), description text,
  resource varchar(100) not null, action varchar(100) not null, is_system boolean,
  created_at timestamptz default now()
);
create table role_permissions (
  id uuid primary key,
  role_id uuid references roles (id) on delete cascade,
  permission_id uuid references permissions (id) on delete cascade,
  created_at timestamptz default now()
);
create table user_roles (
  id uuid primary key,
  user_id uuid references users (id) on delete cascade,
  role_id uuid references roles (id) on delete cascade,
  granted_by uuid references users (id) on delete set null,
  granted_at timestamptz
);
create table audit_logs (
  id uuid primary key,
  actor_id uuid references users (id) on delete set null,
  actor_type varchar(50) not null,
  action varchar(100), entity_type varchar(100), entity_id varchar(255),
  before json, after json, reason text, ip_address varchar(45), user_agent text,
  created_at timestamptz default now()
);
create table parser_sources (
  id serial primary key,
  code varchar(32) not null constraint uq_parser_sources_code unique,
  enabled boolean default true, rate_limit_per_min integer default 60, max_concurrency integer default 2,
  last_synced_at timestamptz
);
create table parser_settings (
  id serial primary key,
  mode varchar(16) default 'manual', stage_only boolean default true, publish_enabled boolean default false,
  dry_run boolean default false, enable_autoupdate boolean default false, update_interval_minutes integer default 60,
  allowed_translation_types json, allowed_translations json, allowed_qualities json,
  preferred_translation_priority json, preferred_quality_priority json,
  blacklist_titles json, blacklist_external_ids json, updated_at timestamptz
);
create table parser_jobs (
  id serial primary key,
  source_id integer not null references parser_sources (id),
  job_type varchar(32), status varchar(16), started_at timestamptz default now(), finished_at timestamptz,
  error_summary text
);
create table parser_job_logs (
  id serial primary key,
  job_id integer not null references parser_jobs (id),
  level varchar(16), message text not null, created_at timestamptz default now()
);
create table anime_external (
  id serial primary key,
  anime_id varchar(36),
  source_id integer references parser_sources (id),
  external_id varchar(64) not null,
  title_raw varchar(255), title_ru varchar(255), title_en varchar(255), title_original varchar(255),
  description text, poster_url text, year integer, season varchar(32), status varchar(32), genres json,
  match_confidence double precision, matched_by varchar(16), last_seen_at timestamptz default now(),
  source_hash varchar(64),
  constraint uq_anime_external_source_id unique (source_id, external_id)
);
create table anime_schedule (
  id serial primary key,
  anime_id integer references anime_external (id), source_id integer references parser_sources (id),
  episode_number integer, air_datetime_utc timestamptz, status varchar(32), source_hash varchar(64),
  last_checked_at timestamptz,
  unique (anime_id, source_id, episode_number)
);
create table anime_episodes_external (
  id serial primary key,
  anime_id integer references anime_external (id), source_id integer references parser_sources (id),
  episode_number integer not null, iframe_url text, available_qualities json, available_translations json,
  needs_review boolean default false, updated_at timestamptz,
  unique (anime_id, source_id, episode_number)
);
create table anime_translations (
  id serial primary key,
  anime_id integer references anime_external (id), source_id integer references parser_sources (id),
  translation_code varchar(64) not null, translation_name varchar(255), type varchar(16),
  enabled boolean default true, priority integer default 0,
  unique (anime_id, source_id, translation_code)
);
create table anime_external_binding (
  id serial primary key,
  anime_external_id integer not null references anime_external (id) constraint uq_anime_external_binding_anime_external_id unique,
  anime_id varchar(36) not null,
  bound_by varchar(64),
  created_at timestamptz default now()
);
