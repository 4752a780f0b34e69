-- depends: 0022.sync-tasks
-- The public catalog's version (issue 9, contract §10): one counter that every write of a
-- catalog table moves (statement triggers in sql/private/catalog_cache.sql), so an anonymous
-- catalog response can carry an ETag computed before its query runs, and If-None-Match can be
-- answered with 304 by the gateway.

create table data.catalog_version (
  id         boolean primary key default true,
  version    bigint not null default 1,
  changed_at timestamptz not null default now(),
  constraint catalog_version_one_row check (id)
);
alter table data.catalog_version enable row level security;
create policy catalog_version_public on data.catalog_version for select to anon, web_user using (true);
comment on table data.catalog_version is 'One row: moves on every write of a public catalog table (the ETag of anonymous catalog responses).';
insert into data.catalog_version default values;
