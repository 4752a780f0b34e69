-- Accounts: registration, sign-in and password change. auth_service verifies and hashes
-- passwords (CPU-bound, off the database); every state change is one call to one function
-- here, i.e. one transaction. Emails are normalised here as data.users requires.

-- A new session (one per sign-in, i.e. per device) with its first refresh token.
create or replace function auth.open_session(p_user_id uuid, p_ip inet, p_user_agent text,
                                             p_refresh_hash bytea, p_session_ttl interval)
returns uuid
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_session_id uuid;
begin
  insert into data.sessions (user_id, expires_at, user_agent, ip)
  values (p_user_id, now() + p_session_ttl, left(p_user_agent, 512), p_ip)
  returning id into v_session_id;
  insert into data.refresh_tokens (session_id, token_hash) values (v_session_id, p_refresh_hash);
  return v_session_id;
end
$$;

/* Create an account, its first session and its email-verification mail (contract §12: an
   unverified account can sign in). Returns no row when the email is taken (the caller answers
   409 email_taken; the registration rate limit was taken before hashing). */
create or replace function auth.register(p_email text, p_password_hash text, p_ip inet,
                                         p_user_agent text, p_refresh_hash bytea,
                                         p_session_ttl interval, p_verification_token text,
                                         p_verification_ttl interval)
returns table (user_id uuid, session_id uuid, email text)
language plpgsql volatile security definer set search_path = '' as $$
begin
  insert into data.users as u (email, password_hash)
  values (lower(btrim(p_email)), p_password_hash)
  on conflict on constraint users_email_key do nothing
  returning u.id, u.email into user_id, email;
  if user_id is null then
    return;
  end if;
  session_id := auth.open_session(user_id, p_ip, p_user_agent, p_refresh_hash, p_session_ttl);
  perform auth.issue_token(user_id, 'email_verification', email, p_verification_token, p_verification_ttl);
  return next;
end
$$;

/* Step 1 of a sign-in: take a slot in the failed-login limits of email, of the client address
   (so one client cycling through emails is refused before anything is hashed, and one password
   sprayed over many accounts is too) and of (ip, email); when allowed return the hash to verify. The slot is taken before the password is
   checked, so concurrent attempts cannot race past the limit; auth.login gives it back on
   success. Unknown and inactive accounts return a null hash (the caller verifies a dummy
   hash, so both cases take the same time). Throttled: retry_after is set, nothing else, and
   the event is audited (one row per address, email and minute, with a count). */
create or replace function auth.login_attempt(p_ip inet, p_email text,
                                              p_pair_limit integer, p_pair_window interval,
                                              p_email_limit integer, p_email_window interval,
                                              p_ip_limit integer, p_ip_window interval,
                                              p_user_agent text)
returns table (retry_after integer, user_id uuid, password_hash text)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_email text := lower(btrim(p_email));
begin
  perform auth.refuse_banned(p_ip);
  select auth.take_slots(k.buckets, k.subjects, k.limits, k.windows) into retry_after
    from auth.login_keys(p_ip, v_email, p_pair_limit, p_pair_window, p_email_limit, p_email_window,
                         p_ip_limit, p_ip_window) k;
  if retry_after is null then
    select u.id, u.password_hash into user_id, password_hash
      from data.users u where u.email = v_email and u.is_active;
  else
    perform auth.audit('auth.sign_in_throttled', null, (select u.id from data.users u where u.email = v_email),
                       null, p_ip, p_user_agent, jsonb_build_object('email', pg_catalog.left(v_email, 320)),
                       'auth.sign_in_throttled ' || auth.login_subject(p_ip, v_email));
  end if;
  return next;
end
$$;

/* Step 2 of a successful sign-in: open the session, give the failed-login slot back, and store
   p_new_hash when the verified hash needed an upgrade (outdated argon2 parameters or a legacy
   bcrypt hash). p_verified_hash makes it a compare-and-swap: if the password changed since it
   was read, no row is returned and the caller answers invalid_credentials. */
create or replace function auth.login(p_user_id uuid, p_verified_hash text, p_new_hash text,
                                      p_ip inet, p_user_agent text, p_refresh_hash bytea,
                                      p_session_ttl interval)
returns table (session_id uuid, email text)
language plpgsql volatile security definer set search_path = '' as $$
begin
  if p_new_hash is not null then
    update data.users u set password_hash = p_new_hash
     where u.id = p_user_id and u.password_hash = p_verified_hash and u.is_active
    returning u.email into email;
  else
    select u.email into email from data.users u
     where u.id = p_user_id and u.password_hash = p_verified_hash and u.is_active
       for share;
  end if;
  if email is null then
    return;
  end if;
  perform auth.refund_login(p_ip, email, true);
  session_id := auth.open_session(p_user_id, p_ip, p_user_agent, p_refresh_hash, p_session_ttl);
  perform auth.audit('auth.sign_in', p_user_id, p_user_id, session_id, p_ip, p_user_agent);
  return next;
end
$$;

-- Is this session of this user live (not revoked, not expired, active account)?
create or replace function auth.session_is_live(p_user_id uuid, p_session_id uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
    select 1 from data.sessions s join data.users u on u.id = s.user_id
     where s.id = p_session_id and s.user_id = p_user_id and u.is_active
       and private.session_live(s.revoked_at, s.expires_at))
$$;

/* Step 1 of a password change (Bearer of a live session): the current password is checked
   like a sign-in, so it takes a failed-login slot of the account's email. Returns no row
   when the session is not live; retry_after when throttled; else the hash to verify. */
create or replace function auth.password_attempt(p_user_id uuid, p_session_id uuid, p_ip inet,
                                                 p_pair_limit integer, p_pair_window interval,
                                                 p_email_limit integer, p_email_window interval,
                                                 p_ip_limit integer, p_ip_window interval)
returns table (retry_after integer, email text, password_hash text)
language plpgsql volatile security definer set search_path = '' as $$
begin
  if not auth.session_is_live(p_user_id, p_session_id) then
    return;
  end if;
  select u.email, u.password_hash into email, password_hash from data.users u where u.id = p_user_id;
  select auth.take_slots(k.buckets, k.subjects, k.limits, k.windows) into retry_after
    from auth.login_keys(p_ip, email, p_pair_limit, p_pair_window, p_email_limit, p_email_window,
                         p_ip_limit, p_ip_window) k;
  if retry_after is not null then
    password_hash := null;
  end if;
  return next;
end
$$;

/* Step 2 of a password change: store the new hash (compare-and-swap on the verified one) and
   revoke every other session of the account; the caller's session stays. False when the
   session ended or the password changed meanwhile. */
create or replace function auth.change_password(p_user_id uuid, p_session_id uuid,
                                                p_verified_hash text, p_new_hash text, p_ip inet,
                                                p_user_agent text)
returns boolean
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_email text;
  v_revoked integer;
begin
  if not auth.session_is_live(p_user_id, p_session_id) then
    return false;
  end if;
  update data.users u set password_hash = p_new_hash
   where u.id = p_user_id and u.password_hash = p_verified_hash and u.is_active
  returning u.email into v_email;
  if v_email is null then
    return false;
  end if;
  perform auth.refund_login(p_ip, v_email, true);
  update data.sessions s set revoked_at = now(), revoked_reason = 'password_changed'
   where s.user_id = p_user_id and s.id <> p_session_id and s.revoked_at is null;
  get diagnostics v_revoked = row_count;
  perform auth.audit('auth.password_changed', p_user_id, p_user_id, p_session_id, p_ip, p_user_agent,
                     jsonb_build_object('sessions_revoked', v_revoked));
  return true;
end
$$;
