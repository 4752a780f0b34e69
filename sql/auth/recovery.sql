-- Password reset and email verification (contract §12). auth_service makes each token (256
-- random bits) and mails nothing itself: the token's SHA-256 goes to data.account_tokens and the
-- mail to the outbox (private.queue_mail), in the one transaction of the request.

-- A token's stored form; the same digest auth_service computes (tokens.refresh_token_hash).
create or replace function auth.token_digest(p_token text) returns bytea
language sql immutable set search_path = '' as $$
  select pg_catalog.sha256(pg_catalog.convert_to(p_token, 'UTF8'))
$$;

/* Issue a token of p_purpose for an account and queue the mail carrying its link. */
create or replace function auth.issue_token(p_user_id uuid, p_purpose text, p_email text, p_token text,
                                            p_ttl interval)
returns bigint
language plpgsql volatile security definer set search_path = '' as $$
begin
  insert into data.account_tokens (user_id, purpose, token_hash, expires_at)
  values (p_user_id, p_purpose, auth.token_digest(p_token), now() + p_ttl);
  return private.queue_mail(p_user_id, p_purpose, p_email, p_token);
end
$$;

/* POST /auth/password/forgot. Takes a slot per email and per client address (IPv6: its /64)
   whether or not the account exists, so neither the answer nor the limit tells the two apart;
   for an active account, issues a reset token and queues its mail. Returns null when allowed
   (the caller answers 202 either way), else the Retry-After seconds. */
create or replace function auth.forgot_password(p_ip inet, p_email text, p_token text, p_ttl interval,
                                                p_email_limit integer, p_email_window interval,
                                                p_ip_limit integer, p_ip_window interval)
returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_email text := lower(btrim(p_email));
  v_user_id uuid;
  v_retry integer;
begin
  v_retry := auth.take_slots(array['forgot_email', 'forgot_ip'], array[v_email, auth.login_network(p_ip)],
                             array[p_email_limit, p_ip_limit], array[p_email_window, p_ip_window]);
  if v_retry is not null then
    return v_retry;
  end if;
  select u.id into v_user_id from data.users u where u.email = v_email and u.is_active;
  if v_user_id is not null then
    perform auth.issue_token(v_user_id, 'password_reset', v_email, p_token, p_ttl);
  end if;
  return null;
end
$$;

-- The live (unused, unexpired) token of p_purpose with this hash, of an active account.
create or replace function auth.live_token_user(p_token_hash bytea, p_purpose text) returns uuid
language sql stable security definer set search_path = '' as $$
  select t.user_id from data.account_tokens t join data.users u on u.id = t.user_id
   where t.token_hash = p_token_hash and t.purpose = p_purpose
     and t.used_at is null and t.expires_at > now() and u.is_active
$$;

-- Step 1 of a reset, before the new password is hashed: is the token live? (cheap refusal)
create or replace function auth.reset_token_valid(p_token_hash bytea) returns boolean
language sql stable security definer set search_path = '' as $$
  select auth.live_token_user(p_token_hash, 'password_reset') is not null
$$;

/* Spend a live token of p_purpose: returns its account, or null when the token is unknown,
   used, expired or of an inactive account. The update is the check, so two concurrent uses of
   one token cannot both succeed. */
create or replace function auth.spend_token(p_token_hash bytea, p_purpose text) returns uuid
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_user_id uuid;
begin
  update data.account_tokens t set used_at = now()
   where t.token_hash = p_token_hash and t.purpose = p_purpose and t.used_at is null
     and t.expires_at > now()
     and exists (select 1 from data.users u where u.id = t.user_id and u.is_active)
  returning t.user_id into v_user_id;
  return v_user_id;
end
$$;

/* Step 2 of POST /auth/password/reset: spend the token, store the new hash, spend every other
   reset token of the account, revoke every session (the access tokens die at PostgREST's
   db-pre-request at once) and clear the account's failed sign-ins. The link reached the
   mailbox, so the address counts as verified. False when the token is not live. */
create or replace function auth.reset_password(p_token_hash bytea, p_new_hash text, p_ip inet,
                                               p_user_agent text)
returns boolean
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_user_id uuid := auth.spend_token(p_token_hash, 'password_reset');
  v_email text;
  v_revoked integer;
begin
  if v_user_id is null then
    return false;
  end if;
  update data.users u set password_hash = p_new_hash, email_verified_at = coalesce(u.email_verified_at, now())
   where u.id = v_user_id
  returning u.email into v_email;
  update data.account_tokens t set used_at = now()
   where t.user_id = v_user_id and t.purpose = 'password_reset' and t.used_at is null;
  update data.sessions s set revoked_at = now(), revoked_reason = 'password_reset'
   where s.user_id = v_user_id and s.revoked_at is null;
  get diagnostics v_revoked = row_count;
  delete from data.rate_limits r where r.bucket = 'login_email' and r.subject = v_email;
  perform auth.audit('auth.password_reset', v_user_id, v_user_id, null, p_ip, p_user_agent,
                     jsonb_build_object('sessions_revoked', v_revoked));
  return true;
end
$$;

/* POST /auth/email/verify: spend the token and mark the address verified (the first time
   counts). False when the token is not live. */
create or replace function auth.verify_email(p_token_hash bytea, p_ip inet, p_user_agent text)
returns boolean
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_user_id uuid := auth.spend_token(p_token_hash, 'email_verification');
begin
  if v_user_id is null then
    return false;
  end if;
  update data.users u set email_verified_at = coalesce(u.email_verified_at, now()) where u.id = v_user_id;
  perform auth.audit('auth.email_verified', v_user_id, v_user_id, null, p_ip, p_user_agent);
  return true;
end
$$;

/* POST /auth/email/verify/resend (Bearer of a live session): a new verification mail, one slot
   of the account's resend limit. outcome: 'queued', 'already_verified' (nothing sent; the
   answer is the same 202), 'throttled' (retry_after set) or 'invalid_session'. */
create or replace function auth.resend_verification(p_user_id uuid, p_session_id uuid, p_token text,
                                                    p_ttl interval, p_limit integer, p_window interval)
returns table (outcome text, retry_after integer)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_email text;
  v_verified_at timestamptz;
begin
  if not auth.session_is_live(p_user_id, p_session_id) then
    outcome := 'invalid_session';
    return next;
    return;
  end if;
  retry_after := auth.take_slots(array['verify_resend'], array[p_user_id::text], array[p_limit], array[p_window]);
  if retry_after is not null then
    outcome := 'throttled';
    return next;
    return;
  end if;
  select u.email, u.email_verified_at into v_email, v_verified_at from data.users u where u.id = p_user_id;
  if v_verified_at is not null then
    outcome := 'already_verified';
  else
    perform auth.issue_token(p_user_id, 'email_verification', v_email, p_token, p_ttl);
    outcome := 'queued';
  end if;
  return next;
end
$$;
