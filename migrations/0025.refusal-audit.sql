-- depends: 0024.catalog-version
-- Refused admin calls (contract §11): one audit row per caller, refused permission, resource
-- (the RPC, after ->> 'resource') and minute,
-- with a count, instead of one row per request; private.audit fills these two columns for
-- refusals only (null for every other row) and cuts the refused call's arguments to 1 KiB.

alter table data.audit_log
  add column refusals integer,
  add column refused_minute timestamptz,
  add constraint audit_log_refusal_shape
    check ((refusals is null) = (refused_minute is null) and (refusals is null or refusals >= 1));
create unique index audit_log_refusal_per_minute_idx
  on data.audit_log (actor_id, action, entity_id, (after ->> 'resource'), refused_minute) nulls not distinct
  where refused_minute is not null;
comment on column data.audit_log.refusals is 'Refusals coalesced into this row (same caller, action, permission, resource, minute); null for other rows.';
comment on column data.audit_log.refused_minute is 'The minute of those refusals; null for other rows.';
