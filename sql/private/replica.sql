/* The streaming replica (contract §14, docs/scaling.md): how far it lags the primary, exported
   for the metrics, and the check its PostgREST runs before every request. The same code is on
   both servers (a physical replica is a copy); on the primary the lag is 0. */

/* Seconds this server's data may be behind the primary; 0 on the primary. A replica that has
   replayed all the WAL it received counts as caught up: less than one record header (24 bytes)
   between them is the padding to a page boundary the primary's WAL often ends on, not a record
   still to replay (an idle primary would otherwise look ever more behind). Otherwise the age
   of the last replayed commit: an upper bound (after an idle primary the first new commit
   makes it look old at once, so a paused or slow replica is left early rather than late). A
   replica whose primary is unreachable cannot tell it is behind: it reports its last state. */
create or replace function private.replica_lag_seconds() returns double precision
language sql stable set search_path = '' as $$
  select case
    when not pg_catalog.pg_is_in_recovery() then 0
    when pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_last_wal_receive_lsn(), pg_catalog.pg_last_wal_replay_lsn()) < 24
      then 0
    else coalesce(extract(epoch from pg_catalog.now() - pg_catalog.pg_last_xact_replay_timestamp()),
                  'Infinity')
  end::double precision
$$;

/* One row for the metrics exporter: is this a replica, its lag, where receive and replay are. */
create or replace view private.replication_status as
  select pg_catalog.pg_is_in_recovery() as is_replica,
         private.replica_lag_seconds() as lag_seconds,
         pg_catalog.pg_last_wal_receive_lsn() as received_lsn,
         pg_catalog.pg_last_wal_replay_lsn() as replayed_lsn,
         pg_catalog.pg_last_xact_replay_timestamp() as last_replayed_commit;

/* db-pre-request of the replica's PostgREST: past the bound (app.settings.replica_max_lag,
   seconds; PGRST_APP_SETTINGS_REPLICA_MAX_LAG, default 5) it answers 503 and the gateway retries
   the read on the primary (its `backup` upstream); then the usual pre_request. */
create or replace function private.replica_pre_request() returns void
language plpgsql stable set search_path = '' as $$
declare
  bound double precision := coalesce(nullif(current_setting('app.settings.replica_max_lag', true), '')::double precision, 5);
begin
  if private.replica_lag_seconds() > bound then
    perform private.raise_error(503, 'replica_lagging', 'This read replica is behind the primary; retry.');
  end if;
  perform private.pre_request();
end
$$;
