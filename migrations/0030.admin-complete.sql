-- depends: 0029.accounts-recovery
-- Admin, complete (issue 13): who created, edited, locked and deleted an episode; player links
-- fixed by hand, locked or hidden one by one (ingest keeps them); IP bans; and `anime.view` /
-- `episode.view` mean "read the admin catalog" (support holds them), so plain users lose them
-- (the public catalog needs no permission); an upstream can be switched off. Functions, views
-- and grants are code.
alter table data.episodes
  add column edited_fields text[] not null default '{}',
  add column locked_by     uuid references data.users (id) on delete set null,
  add column locked_reason text,
  add column locked_at     timestamptz,
  add column deleted_by    uuid references data.users (id) on delete set null,
  add column delete_reason text,
  add column created_by    uuid references data.users (id) on delete set null,
  add column updated_by    uuid references data.users (id) on delete set null,
  add constraint episodes_delete_consistent check (deleted_at is not null or (deleted_by is null and delete_reason is null)),
  add constraint episodes_lock_consistent check (locked_at is not null or (locked_by is null and locked_reason is null));
create index episodes_locked_by_idx on data.episodes (locked_by);
create index episodes_deleted_by_idx on data.episodes (deleted_by);
create index episodes_created_by_idx on data.episodes (created_by);
create index episodes_updated_by_idx on data.episodes (updated_by);

-- existing links were all written by ingest: they stay 'parser'; new rows default to 'manual'
alter table data.episode_sources
  add column source     text not null default 'parser',
  add column locked_at  timestamptz,
  add column locked_by  uuid references data.users (id) on delete set null,
  add column hidden_at  timestamptz,
  add column hidden_by  uuid references data.users (id) on delete set null,
  add column updated_by uuid references data.users (id) on delete set null,
  add constraint episode_sources_source_valid check (source in ('manual', 'parser', 'import'));
alter table data.episode_sources alter column source set default 'manual';
create index episode_sources_locked_by_idx on data.episode_sources (locked_by);
create index episode_sources_hidden_by_idx on data.episode_sources (hidden_by);
create index episode_sources_updated_by_idx on data.episode_sources (updated_by);
drop policy episode_sources_public_read on data.episode_sources;
create policy episode_sources_public_read on data.episode_sources for select to anon, web_user
  using (hidden_at is null and exists (select 1 from data.episodes e where e.id = episode_id));

create table data.ip_bans (
  id          bigint generated always as identity primary key,
  network     cidr not null,
  reason      text not null,
  expires_at  timestamptz,
  created_by  uuid references data.users (id) on delete set null,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  lifted_at   timestamptz,
  lifted_by   uuid references data.users (id) on delete set null,
  lift_reason text,
  constraint ip_bans_reason_present check (length(btrim(reason)) between 1 and 500),
  constraint ip_bans_lift_consistent check (lifted_at is not null or (lifted_by is null and lift_reason is null))
);
-- one unlifted ban per network (banning it again updates that row); "is this address banned"
-- is a containment search (network >>= ip) over the unlifted rows
create unique index ip_bans_network_unlifted_key on data.ip_bans (network) where lifted_at is null;
create index ip_bans_network_idx on data.ip_bans using gist (network inet_ops) where lifted_at is null;
create index ip_bans_created_by_idx on data.ip_bans (created_by);
create index ip_bans_lifted_by_idx on data.ip_bans (lifted_by);
alter table data.ip_bans enable row level security;
comment on table data.ip_bans is 'Banned client addresses or networks (security.ban.ip); refused at sign-in, registration, refresh and every PostgREST request.';

alter table data.upstream_limits add column enabled boolean not null default true;
comment on column data.upstream_limits.enabled is 'False: ingest.acquire_slot refuses every request to this upstream (KI007); its syncs fail with <upstream>_disabled.';

delete from data.role_permissions where role = 'user' and permission in ('anime.view', 'episode.view');
