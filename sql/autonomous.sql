/* Counting refused admin reads (issue 13: "refused reads counted, an aggregate per caller,
   resource and minute"). Loaded by a superuser (database/build.py ensure_autonomous, after every
   migrate), not by kitsu_owner: it is not in manifest.txt, and its schema is not one the code
   rebuild drops or the grant reset touches. Idempotent.

   Why a second connection: PostgREST runs a GET in a READ ONLY transaction and rolls it back
   when the request fails, so a 403 raised by private.admin_gate_any can leave nothing behind
   in its own transaction: no insert (read-only), no sequence step (nextval is refused in a
   read-only transaction), no NOTIFY (sent at commit). What survives is work done on another
   connection, which commits on its own: dblink to the same database. dblink lets only a
   superuser connect without a password (trust or peer authentication, as on the local
   socket), so autonomous.count_refused_read is a security definer function owned by the
   superuser that loads this file. It is kept minimal because of that owner:
     - it calls nothing of the project's schemas locally (kitsu_owner owns those; a superuser
       calling them would hand kitsu_owner the superuser's rights): only pg_catalog and dblink;
     - it sends one fixed statement, its values quoted with %L, over the named connection
       `kitsu_refusals` as kitsu_owner (the same rights the migrations run with), which runs
       private.record_refused_read there, in its own (autocommitted) transaction;
     - what it sends is bounded: the caller's `sub`, the resource path (200 bytes), the right-
       most X-Forwarded-For entry and the user agent (512 bytes);
     - it never fails the request: an error (no dblink, the loopback refused) is a WARNING in
       the server log and the 403 goes out as before, uncounted.
   The connection is opened once per PostgREST backend and kept (dblink named connections live
   as long as the session), so a refusal costs one round trip, not a new backend; the server
   closes it after 10 s without a refusal (idle_session_timeout), so the extra connections exist
   only during and just after a burst of refusals (at most one per PostgREST pool connection). */

create schema if not exists autonomous;
comment on schema autonomous is 'Work that must outlive the request''s transaction (superuser-owned; sql/autonomous.sql).';
revoke all on schema autonomous from public;
create extension if not exists dblink schema autonomous;
revoke all on all functions in schema autonomous from public;

create or replace function autonomous.count_refused_read(permission text) returns void
language plpgsql volatile security definer set search_path = pg_catalog as $$
declare
  claims jsonb;
  headers jsonb;
  hops text[];
  statement text;
begin
  claims := nullif(current_setting('request.jwt.claims', true), '')::jsonb;
  headers := nullif(current_setting('request.headers', true), '')::jsonb;
  if claims ->> 'sub' is null then
    return;  -- web_user always has a subject (private.pre_request); nothing to count otherwise
  end if;
  hops := string_to_array(headers ->> 'x-forwarded-for', ',');
  statement := format('select private.record_refused_read(%L::uuid, %L, %L, %L, %L)',
                      claims ->> 'sub', left(current_setting('request.path', true), 200), left(permission, 100),
                      left(btrim(hops[cardinality(hops)]), 64), left(headers ->> 'user-agent', 512));
  -- twice at most: a kept connection the server has closed since (idle_session_timeout) fails
  -- once, and is opened again
  for attempt in 1..2 loop
    begin
      if not ('kitsu_refusals' = any (coalesce(autonomous.dblink_get_connections(), '{}'))) then
        perform autonomous.dblink_connect('kitsu_refusals',
          format('dbname=''%s'' host=''%s'' port=%s user=kitsu_owner application_name=kitsu_refusals '
                 'connect_timeout=2 options=''-c idle_session_timeout=10s -c statement_timeout=2s''',
                 replace(replace(current_database(), '\', '\\'), '''', '\'''),
                 coalesce(nullif(btrim(split_part(current_setting('unix_socket_directories'), ',', 1)), ''), '127.0.0.1'),
                 current_setting('port')));
      end if;
      perform * from autonomous.dblink('kitsu_refusals', statement) as t(audit_log_id bigint);
      return;
    exception when others then
      begin
        perform autonomous.dblink_disconnect('kitsu_refusals');
      exception when others then
        null;
      end;
      if attempt = 2 then
        raise warning 'refused read not counted: % (%)', sqlerrm, sqlstate;
      end if;
    end;
  end loop;
end
$$;
revoke all on function autonomous.count_refused_read(text) from public;
grant usage on schema autonomous to web_user;
grant execute on function autonomous.count_refused_read(text) to web_user;
