-- The upstream rate limit shared by every worker process (contract §8): a sliding-window log
-- per upstream, decided atomically under a row lock on the upstream's rules.

/* Ask for one request slot. Returns 0 when granted (the slot is logged), else how many seconds
   to wait before asking again. Windows are 1 s and 60 s times window_scale, plus margin_ms so
   that jitter between this grant and the request's arrival upstream cannot squeeze one more
   request into the upstream's own window. */
create or replace function ingest.acquire_slot(p_upstream text) returns double precision
language plpgsql volatile security definer set search_path = '' as $$
declare
  l      data.upstream_limits;
  v_now  timestamptz := pg_catalog.clock_timestamp();
  v_sec  interval;
  v_min  interval;
  v_t    timestamptz;
  v_wait double precision := 0;
begin
  select * into l from data.upstream_limits where upstream = p_upstream for update;
  if not found then
    raise exception 'unknown upstream %', p_upstream using errcode = 'KI003';
  end if;
  if not l.enabled then  -- the admin switch (rpc/admin_set_upstream_limits)
    raise exception 'upstream % is disabled', p_upstream using errcode = 'KI007';
  end if;
  if l.per_second is null and l.per_minute is null then
    return 0;
  end if;
  v_sec := pg_catalog.make_interval(secs => l.window_scale + l.margin_ms / 1000.0);
  v_min := pg_catalog.make_interval(secs => 60 * l.window_scale + l.margin_ms / 1000.0);
  if l.per_second is not null then
    select r.granted_at into v_t from data.upstream_requests r
     where r.upstream = p_upstream and r.granted_at > v_now - v_sec
     order by r.granted_at desc offset l.per_second - 1 limit 1;
    if found then
      v_wait := greatest(v_wait, extract(epoch from v_t + v_sec - v_now)::double precision);
    end if;
  end if;
  if l.per_minute is not null then
    select r.granted_at into v_t from data.upstream_requests r
     where r.upstream = p_upstream and r.granted_at > v_now - v_min
     order by r.granted_at desc offset l.per_minute - 1 limit 1;
    if found then
      v_wait := greatest(v_wait, extract(epoch from v_t + v_min - v_now)::double precision);
    end if;
  end if;
  if v_wait > 0 then
    return v_wait;
  end if;
  insert into data.upstream_requests (upstream, granted_at) values (p_upstream, v_now);
  delete from data.upstream_requests r
   where r.upstream = p_upstream and r.granted_at < v_now - v_min - interval '60 seconds';
  return 0;
end
$$;
comment on function ingest.acquire_slot(text) is 'Grant one upstream request slot (0) or say how many seconds to wait; shared by all workers.';

/* Operators and tests: set an upstream's limits (null = unlimited). */
create or replace function ingest.set_limits(p_upstream text, p_per_second integer, p_per_minute integer,
                                             p_window_scale numeric default 1, p_margin_ms integer default 250)
returns void
language sql volatile security definer set search_path = '' as $$
  insert into data.upstream_limits (upstream, per_second, per_minute, window_scale, margin_ms)
  values (p_upstream, p_per_second, p_per_minute, p_window_scale, p_margin_ms)
  on conflict (upstream) do update
     set per_second = excluded.per_second, per_minute = excluded.per_minute,
         window_scale = excluded.window_scale, margin_ms = excluded.margin_ms;
$$;
