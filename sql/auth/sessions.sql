-- Sessions: refresh-token rotation with reuse detection, and logout scopes (contract §3, §4).

/* Rotate a refresh token, in one transaction with the session row locked (two refreshes of one
   session run one after the other). First the per-ip refresh limit; then:
   - the session's current token: it is rotated -> outcome 'rotated';
   - the token the current one replaced, presented within p_grace of its rotation (two tabs, or
     a lost response): a fresh token supersedes the current one -> 'grace';
   - any other token of the session (older, or later than the grace): the whole session is
     revoked -> 'reused' (the revocation and its audit event commit; the caller answers 401);
   - unknown token, ended session or inactive account -> 'invalid'; throttled -> 'throttled'.
   The session id never changes; last_used_at and ip follow the refresh. */
create or replace function auth.refresh(p_token_hash bytea, p_new_hash bytea, p_ip inet,
                                        p_grace interval, p_limit integer, p_window interval,
                                        p_user_agent text)
returns table (outcome text, retry_after integer, user_id uuid, session_id uuid, email text)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_token data.refresh_tokens;
  v_current data.refresh_tokens;
  v_session data.sessions;
begin
  perform auth.refuse_banned(p_ip);
  retry_after := auth.take_slots(array['refresh_ip'], array[coalesce(pg_catalog.host(p_ip), '-')],
                                 array[p_limit], array[p_window]);
  if retry_after is not null then
    outcome := 'throttled';
    return next;
    return;
  end if;

  select t.session_id into session_id from data.refresh_tokens t where t.token_hash = p_token_hash;
  if session_id is null then
    outcome := 'invalid';
    return next;
    return;
  end if;
  select s.* into v_session from data.sessions s where s.id = refresh.session_id for update;
  -- re-read after the lock: a concurrent refresh of this session may have just committed
  select t.* into v_token from data.refresh_tokens t where t.token_hash = p_token_hash;
  if v_session.id is null or v_token.id is null or v_session.revoked_at is not null
     or v_session.expires_at <= now()
     or not exists (select 1 from data.users u where u.id = v_session.user_id and u.is_active) then
    outcome := 'invalid';
    session_id := null;
    return next;
    return;
  end if;

  select t.* into v_current from data.refresh_tokens t
   where t.session_id = v_session.id and t.rotated_at is null;

  if v_token.rotated_at is null then
    outcome := 'rotated';
  elsif v_current.parent_id = v_token.id and v_token.rotated_at > now() - p_grace then
    outcome := 'grace';
  else
    update data.sessions s set revoked_at = now(), revoked_reason = 'refresh_token_reused'
     where s.id = v_session.id;
    -- whoever presented it may be the thief or the owner: an anonymous actor
    perform auth.audit('auth.refresh_token_reused', null, v_session.user_id, v_session.id, p_ip, p_user_agent);
    outcome := 'reused';
    return next;
    return;
  end if;

  update data.refresh_tokens t set rotated_at = now() where t.id = v_current.id;
  insert into data.refresh_tokens (session_id, token_hash, parent_id)
  values (v_session.id, p_new_hash, v_token.id);
  update data.sessions s set last_used_at = now(), ip = coalesce(p_ip, s.ip) where s.id = v_session.id;
  user_id := v_session.user_id;
  select u.email into email from data.users u where u.id = v_session.user_id;
  return next;
end
$$;

/* Sign out. The session is the one of the access token (p_user_id, p_session_id) or, without
   one, the session of the refresh token. Scopes: 'local' revokes that session, 'others' every
   other session of the account, 'global' all of them. 'others' and 'global' act on the whole
   account, so they need a live session and, from a refresh token alone, its current token;
   they are audited (auth.logout_others, auth.logout_all). Idempotent; returns how many
   sessions were revoked. */
create or replace function auth.logout(p_user_id uuid, p_session_id uuid, p_token_hash bytea,
                                       p_scope text, p_ip inet, p_user_agent text)
returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_session_id uuid;
  v_user_id uuid;
  v_current boolean := false;
  v_count integer;
begin
  if p_scope is null or p_scope not in ('local', 'others', 'global') then
    raise exception 'unknown logout scope' using errcode = '22023';
  end if;
  if p_session_id is not null then
    select s.id, s.user_id, true into v_session_id, v_user_id, v_current
      from data.sessions s where s.id = p_session_id and s.user_id = p_user_id;
  end if;
  if v_session_id is null and p_token_hash is not null then
    select s.id, s.user_id, t.rotated_at is null into v_session_id, v_user_id, v_current
      from data.refresh_tokens t join data.sessions s on s.id = t.session_id
     where t.token_hash = p_token_hash;
  end if;
  if v_session_id is null then
    return 0;
  end if;
  if p_scope <> 'local' and not (v_current and auth.session_is_live(v_user_id, v_session_id)) then
    return 0;
  end if;
  update data.sessions s set revoked_at = now(), revoked_reason = 'logout_' || p_scope
   where s.user_id = v_user_id and s.revoked_at is null
     and case p_scope when 'local' then s.id = v_session_id
                      when 'others' then s.id <> v_session_id
                      else true end;
  get diagnostics v_count = row_count;
  if p_scope <> 'local' then
    perform auth.audit(case p_scope when 'others' then 'auth.logout_others' else 'auth.logout_all' end,
                       v_user_id, v_user_id, v_session_id, p_ip, p_user_agent,
                       jsonb_build_object('sessions_revoked', v_count));
  end if;
  return v_count;
end
$$;
