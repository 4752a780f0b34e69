-- depends: 0024.catalog-version
-- Refused admin calls are coalesced (issue 9, contract §11): repeated refusals of one caller for
-- one action within a minute are one audit row with a count, so a flood of refused calls cannot
-- grow the audit log by a row per request. coalesce_key names the caller and the action (null for
-- every other entry); the unique index over it and the minute of created_at is what the one
-- upsert of private.audit_row conflicts on, so concurrent refusals add to one row without a
-- check-then-act race.

alter table data.audit_log
  add column count integer not null default 1,
  add column coalesce_key text,
  add constraint audit_log_count_positive check (count >= 1);
create unique index audit_log_coalesce_idx
  on data.audit_log (coalesce_key, date_bin('1 minute', created_at, timestamptz '2000-01-01 00:00:00+00'))
  where coalesce_key is not null;
comment on column data.audit_log.count is 'How many times this happened (more than 1 only for coalesced refusals).';
comment on column data.audit_log.coalesce_key is 'Refusals only: caller and action; one row per key and minute.';
