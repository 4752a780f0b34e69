-- Auth events in the audit log (issue 11): written by the auth functions themselves, in the
-- transaction of the change they record, with the client's address and user agent and the
-- session concerned. Never a password, hash or token: only ids, the email tried, and counts.

/* Append one auth event. p_actor_id: who acted (null = an anonymous client, e.g. a failed
   sign-in); p_user_id: the account concerned (entity 'user'). With p_coalesce_key, events of
   one key within a minute are one row with a count (throttled sign-ins: a flood must not
   flood the log), as refusals of admin writes are (private.audit_row). */
create or replace function auth.audit(p_action text, p_actor_id uuid, p_user_id uuid, p_session_id uuid,
                                      p_ip inet, p_user_agent text, p_after jsonb default null,
                                      p_coalesce_key text default null)
returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  insert into data.audit_log as l (actor_id, actor_type, action, entity_type, entity_id, after, ip,
                                   user_agent, session_id, coalesce_key)
  values (p_actor_id, case when p_actor_id is null then 'anonymous' else 'user' end, p_action, 'user',
          p_user_id::text, p_after, p_ip, pg_catalog.left(p_user_agent, 512), p_session_id, p_coalesce_key)
  on conflict (coalesce_key, date_bin('1 minute', created_at, timestamptz '2000-01-01 00:00:00+00'))
     where coalesce_key is not null
  do update set count = l.count + 1;
end
$$;

/* A sign-in whose password did not verify (or whose account changed meanwhile): audited with
   the account when the email names one. Its failed-login slot was taken by auth.login_attempt. */
create or replace function auth.sign_in_failed(p_ip inet, p_email text, p_user_agent text) returns void
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_email text := lower(btrim(p_email));
begin
  perform auth.audit('auth.sign_in_failed', null,
                     (select u.id from data.users u where u.email = v_email), null, p_ip, p_user_agent,
                     jsonb_build_object('email', pg_catalog.left(v_email, 320)));
end
$$;
