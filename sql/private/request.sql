-- Request context and the error helper. Every function here is code: `make migrate`
-- re-applies it with create or replace.

create or replace function private.jwt_claims() returns jsonb
language sql stable set search_path = '' as $$
  -- nullif: on a pooled connection a GUC set earlier reads back as '' rather than NULL.
  select coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb, '{}'::jsonb)
$$;

create or replace function private.uid() returns uuid
language sql stable set search_path = '' as $$
  select nullif(private.jwt_claims() ->> 'sub', '')::uuid
$$;

create or replace function private.sid() returns uuid
language sql stable set search_path = '' as $$
  select nullif(private.jwt_claims() ->> 'sid', '')::uuid
$$;


-- The one definition of a live session: not revoked and not expired. No SET clause, so it is
-- inlined where it is used and its conditions still reach the indexes. (Columns, not the row:
-- web_user may read only some of data.sessions' columns.)
create or replace function private.session_live(revoked_at timestamptz, expires_at timestamptz) returns boolean
language sql stable as $$
  select revoked_at is null and expires_at > now()
$$;

-- Headers every PostgREST response should carry (contract §4, §10). auth_service sends the same
-- list (auth_service/web.py SECURITY_HEADERS); tests/test_rule_owners.py proves they agree.
create or replace function private.security_headers() returns jsonb
language sql immutable set search_path = '' as $$
  select jsonb_build_object(
    'X-Content-Type-Options', 'nosniff',
    'X-Frame-Options', 'DENY',
    'Referrer-Policy', 'no-referrer',
    'Content-Security-Policy', 'default-src ''none''; frame-ancestors ''none''',
    'Cross-Origin-Resource-Policy', 'same-site')
$$;

/* Raise a project error (catalogue: docs/errors.md). PostgREST turns sqlstate PGRST into an
   HTTP response with this status, body {code, message, details, hint} and these headers; a
   plain raise would lose the security headers because the transaction rolls back. */
create or replace function private.raise_error(status integer, code text, message text,
                                               details text default null, hint text default null)
returns void
language plpgsql stable set search_path = '' as $$
begin
  raise sqlstate 'PGRST' using
    message = json_build_object('code', code, 'message', message, 'details', details, 'hint', hint)::text,
    detail = json_build_object('status', status, 'headers', private.security_headers())::text;
end
$$;

-- Does the caller hold this exact permission through an active account? (RBAC, contract §6)
create or replace function private.has_permission(permission text) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
    select 1
      from data.user_roles ur
      join data.role_permissions rp on rp.role = ur.role
      join data.users u on u.id = ur.user_id
     where ur.user_id = private.uid()
       and rp.permission = has_permission.permission
       and u.is_active)
$$;

-- The response.headers value for successful responses: the security headers, plus no-store for
-- signed-in callers (their rows must not sit in shared caches). Immutable, so it folds to a constant.
create or replace function private.response_headers(signed_in boolean) returns text
language sql immutable set search_path = '' as $$
  select (select jsonb_agg(jsonb_build_object(key, value)) from jsonb_each(private.security_headers()))
         || case when signed_in then '[{"Cache-Control": "private, no-store"}]'::jsonb else '[]'::jsonb end
$$;

/* db-pre-request: runs before every PostgREST request, as the request's role.
   - Only anon and web_user may be used: PostgREST 12 would SET ROLE to whatever role the
     token names if authenticator can, including authenticator itself.
   - A web_user token must name a live session (sid): logging out or revoking a device
     refuses its access tokens on the next request, before they expire.
   - A banned client address (private.ip_banned, with the address the gateway saw:
     private.client_ip) is refused with 403 ip_banned, signed in or not.
   - Sets the security headers on every successful response (errors carry them through
     private.raise_error), and the caching headers of anonymous catalog reads. */
create or replace function private.pre_request() returns void
language plpgsql stable set search_path = '' as $$
declare
  -- parsed once: this runs on every request, so each helper call counts
  claims jsonb := private.jwt_claims();
  caller uuid;
  session uuid;
begin
  if coalesce(claims ->> 'role', 'anon') not in ('anon', 'web_user') or current_user not in ('anon', 'web_user') then
    perform private.raise_error(401, 'invalid_token', 'This token cannot be used here.');
  end if;
  if private.ip_banned(private.client_ip()) then
    perform private.raise_error(403, 'ip_banned', 'Requests from this address are blocked.');
  end if;
  if current_user = 'anon' then
    perform set_config('response.headers', (private.response_headers(false)::jsonb
                                            || coalesce(private.catalog_cache_headers(), '[]'))::text, true);
    return;
  end if;
  caller := nullif(claims ->> 'sub', '')::uuid;
  session := nullif(claims ->> 'sid', '')::uuid;
  if caller is null or session is null then
    perform private.raise_error(401, 'invalid_token', 'The token names no user or session.');
  end if;
  -- RLS limits this to the caller's own session and account; a deactivated account's
  -- tokens stop working at once, like a revoked session's
  if not exists (select 1 from data.sessions s join data.users u on u.id = s.user_id
                  where s.id = session and s.user_id = caller
                    and private.session_live(s.revoked_at, s.expires_at) and u.is_active) then
    perform private.raise_error(401, 'session_expired', 'This session has ended; sign in again.');
  end if;
  perform set_config('response.headers', private.response_headers(true), true);
end
$$;
