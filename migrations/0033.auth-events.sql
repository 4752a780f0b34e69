-- depends: 0031.catalog-browse-search
-- Auth events in the audit log (issue 11): sign-ins, refresh-token reuse, logouts of other or
-- all sessions, password changes and resets, verified addresses, each with the session it
-- concerns. No foreign key: sessions are purged, their audit rows stay. The functions that
-- write the events are code (sql/auth/), rebuilt on migrate; those that now take the client's
-- user agent (and address) change signature, so the old ones go.
alter table data.audit_log add column session_id uuid;
comment on column data.audit_log.session_id is 'Auth events: the session concerned (opened, revoked, or the caller''s).';
create index audit_log_session_id_idx on data.audit_log (session_id) where session_id is not null;
comment on table data.audit_log is 'Append-only audit trail of admin actions, ingest publishes, denied attempts and auth events.';

drop function if exists auth.login_attempt(inet, text, integer, interval, integer, interval, integer, interval);
drop function if exists auth.refresh(bytea, bytea, inet, interval, integer, interval);
drop function if exists auth.logout(uuid, uuid, bytea, text);
drop function if exists auth.change_password(uuid, uuid, text, text, inet);
