-- Rate limits of auth_service (contract §4): sliding windows in data.rate_limits, decided in
-- the database so every worker process and every replica shares them.

-- The subject of the per-(ip, email) login key; one spelling for every function.
create or replace function auth.login_subject(p_ip inet, p_email text) returns text
language sql immutable set search_path = '' as $$
  select coalesce(pg_catalog.host(p_ip), '-') || ' ' || lower(btrim(p_email))
$$;

/* The subject of the per-address login key: an IPv4 address whole, an IPv6 address by its /64
   (one subscriber's whole prefix: rotating addresses inside it does not escape the limit). */
create or replace function auth.login_network(p_ip inet) returns text
language sql immutable set search_path = '' as $$
  select case when p_ip is null then '-'
              when pg_catalog.family(p_ip) = 6 then pg_catalog.network(pg_catalog.set_masklen(p_ip, 64))::text
              else pg_catalog.host(p_ip) end
$$;

/* The failed-login keys of one attempt in (bucket, subject) order: per email, per address, per
   (address, email). One list for sign-in and password change, so both count the same way. */
create or replace function auth.login_keys(p_ip inet, p_email text,
                                           p_pair_limit integer, p_pair_window interval,
                                           p_email_limit integer, p_email_window interval,
                                           p_ip_limit integer, p_ip_window interval,
                                           out buckets text[], out subjects text[],
                                           out limits integer[], out windows interval[])
language sql immutable set search_path = '' as $$
  select array['login_email', 'login_ip', 'login_ip_email'],
         array[lower(btrim(p_email)), auth.login_network(p_ip), auth.login_subject(p_ip, p_email)],
         array[p_email_limit, p_ip_limit, p_pair_limit],
         array[p_email_window, p_ip_window, p_pair_window]
$$;

/* Take one slot in each (bucket, subject) of an attempt, or in none of them.
   Returns null when the attempt is allowed (and now recorded in every key), else the number of
   seconds until each full key has a free slot again (the Retry-After). A refused attempt is not
   recorded, so a flood does not extend a lockout beyond its window. Never raises on a refusal:
   the caller's transaction commits either way. */
create or replace function auth.take_slots(p_buckets text[], p_subjects text[],
                                           p_limits integer[], p_windows interval[])
returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_wait integer;
begin
  if exists (select from unnest(p_limits) l where l is null or l < 1)
     or exists (select from unnest(p_windows) w where w is null or w <= interval '0') then
    raise exception 'rate limits must be positive' using errcode = '22023';
  end if;

  /* Create missing rows and lock every row of the attempt, in key order (no deadlock between
     two attempts sharing keys). The no-op update is what takes the lock: a concurrent
     auth.purge() cannot delete a row between this statement and the decision. */
  insert into data.rate_limits as r (bucket, subject)
  select k.bucket, k.subject from unnest(p_buckets, p_subjects) as k(bucket, subject)
   order by k.bucket, k.subject
  on conflict (bucket, subject) do update set expires_at = r.expires_at;

  /* The decision, in one statement over the locked rows: drop the hits that left their window,
     then append now() to every key (allowed) or to none (refused). */
  with keys as (
    select * from unnest(p_buckets, p_subjects, p_limits, p_windows) as k(bucket, subject, lim, win)
  ), live as (
    select r.bucket, r.subject, k.lim, k.win,
           array(select h from unnest(r.hits) as h where h > now() - k.win order by h) as hits
      from data.rate_limits r
      join keys k on k.bucket = r.bucket and k.subject = r.subject
  ), verdict as (
    -- a full key frees a slot when its oldest counted hit leaves the window
    select max(ceil(extract(epoch from l.hits[cardinality(l.hits) - l.lim + 1] + l.win - now())))::integer as wait
      from live l
     where cardinality(l.hits) >= l.lim
  ), recorded as (
    update data.rate_limits r
       set hits = case when v.wait is null then l.hits || now() else l.hits end,
           expires_at = case when v.wait is null then now() + l.win
                             else coalesce(l.hits[cardinality(l.hits)], now()) + l.win end
      from live l left join verdict v on true
     where r.bucket = l.bucket and r.subject = l.subject
    returning v.wait
  )
  select max(recorded.wait) into v_wait from recorded;

  return case when v_wait is null then null else greatest(v_wait, 1) end;
end
$$;

/* Give back the slots of a login attempt that turned out not to be a failure (success, or
   refused by auth_service for overload before the password was checked). A success clears the
   (ip, email) key entirely, as the original system did; the per-email and per-address keys lose
   one hit each.
   Lock order: every statement on data.rate_limits takes its rows in (bucket, subject) order, as
   auth.take_slots does ('login_email', 'login_ip', 'login_ip_email'); the reverse order deadlocked
   under a login storm (tests/db/test_rate_limit_locks.py plants it). */
create or replace function auth.refund_login(p_ip inet, p_email text, p_success boolean)
returns void
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_email text := lower(btrim(p_email));
begin
  update data.rate_limits set hits = hits[1:cardinality(hits) - 1]
   where bucket = 'login_email' and subject = v_email and cardinality(hits) > 0;
  update data.rate_limits set hits = hits[1:cardinality(hits) - 1]
   where bucket = 'login_ip' and subject = auth.login_network(p_ip) and cardinality(hits) > 0;
  if p_success then
    delete from data.rate_limits
     where bucket = 'login_ip_email' and subject = auth.login_subject(p_ip, v_email);
  else
    update data.rate_limits set hits = hits[1:cardinality(hits) - 1]
     where bucket = 'login_ip_email' and subject = auth.login_subject(p_ip, v_email)
       and cardinality(hits) > 0;
  end if;
end
$$;

/* A banned address (private.ip_banned) ends the call with SQLSTATE KB403, which auth_service
   answers 403 ip_banned (auth_service/pool.py); raised first, so nothing is written. */
create or replace function auth.refuse_banned(p_ip inet) returns void
language plpgsql stable set search_path = '' as $$
begin
  if private.ip_banned(p_ip) then
    raise exception 'ip_banned' using errcode = 'KB403';
  end if;
end
$$;

-- One attempt at POST /auth/register from this address; null when allowed, else Retry-After.
create or replace function auth.register_attempt(p_ip inet, p_limit integer, p_window interval)
returns integer
language plpgsql volatile security definer set search_path = '' as $$
begin
  perform auth.refuse_banned(p_ip);
  return auth.take_slots(array['register_ip'], array[coalesce(pg_catalog.host(p_ip), '-')],
                         array[p_limit], array[p_window]);
end
$$;

/* Remove what no longer counts: empty rate-limit rows, refresh tokens of ended sessions,
   sessions that ended more than p_retention ago, and account tokens expired that long ago. Safe to call from every process at once (only
   one runs; the others return zeros). */
create or replace function auth.purge(p_retention interval)
returns table (rate_limits bigint, refresh_tokens bigint, sessions bigint)
language plpgsql volatile security definer set search_path = '' as $$
begin
  if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('auth.purge')) then
    return query select 0::bigint, 0::bigint, 0::bigint;
    return;
  end if;
  with gone as (delete from data.rate_limits where expires_at < now() returning 1)
  select count(*) into rate_limits from gone;
  with gone as (
    delete from data.refresh_tokens t using data.sessions s
     where s.id = t.session_id and (s.revoked_at is not null or s.expires_at < now())
    returning 1)
  select count(*) into refresh_tokens from gone;
  with gone as (
    delete from data.sessions s
     where coalesce(s.revoked_at, s.expires_at) < now() - p_retention
    returning 1)
  select count(*) into sessions from gone;
  -- reset and verification tokens past their expiry can never be used again
  delete from data.account_tokens t where t.expires_at < now() - p_retention;
  return next;
end
$$;
