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
  -- refusals are coalesced: one row per caller, action and minute, with a count (private.audit_row)
  count        integer not null default 1,
  coalesce_key text,
  session_id   uuid,
  constraint audit_log_count_positive check (count >= 1),
  constraint audit_log_actor_type_valid check (actor_type in ('user', 'system', 'anonymous')),
  constraint audit_log_user_has_actor check (actor_type <> 'user' or actor_id is not null or action like 'security.%'),
  constraint audit_log_action_shape check (action ~ '^[a-z_]+(\.[a-z_]+)+$')
);
create index audit_log_actor_id_idx on data.audit_log (actor_id);
create index audit_log_created_at_idx on data.audit_log (created_at desc);
create index audit_log_entity_idx on data.audit_log (entity_type, entity_id);
create index audit_log_session_id_idx on data.audit_log (session_id) where session_id is not null;
-- what the upsert of a repeated refusal conflicts on (its key and the minute of created_at)
create unique index audit_log_coalesce_idx
  on data.audit_log (coalesce_key, date_bin('1 minute', created_at, timestamptz '2000-01-01 00:00:00+00'))
  where coalesce_key is not null;
alter table data.audit_log enable row level security;
comment on table data.audit_log is 'Append-only audit trail of admin actions, ingest publishes, denied attempts and auth events.';
comment on column data.audit_log.count is 'How many times this happened (more than 1 only for coalesced refusals).';
comment on column data.audit_log.coalesce_key is 'Refusals only: caller and action; one row per key and minute.';
comment on column data.audit_log.session_id is 'Auth events: the session concerned (opened, revoked, or the caller''s).';

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
-- `user` holds no permission: the public catalog needs none, and anime.view / episode.view mean
-- "read the admin catalog in every state" (support holds them; migration 0030)
union all
select 'parser_bot', unnest(array['anime.view', 'anime.create', 'anime.edit', 'episode.view', 'episode.create', 'episode.edit', 'parser.run', 'parser.override_lock'])
union all
select 'worker_bot', unnest(array['anime.view', 'episode.view', 'parser.run']);
