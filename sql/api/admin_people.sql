/* People, roles and permissions (issue 13; docs/admin-api.md "People"), permission
   admin.users.manage for changes and sessions; roles and permissions are readable with
   admin.users.view or admin.roles.manage. Helpers: sql/private/admin_people.sql. */

create view api.admin_user_sessions with (security_invoker = true) as
select r.id, r.user_id, r.created_at, r.last_used_at, r.expires_at, r.revoked_at, r.revoked_reason,
       r.user_agent, r.ip, r.live
  from private.admin_user_sessions r;
comment on view api.admin_user_sessions is $$A person's sessions (permission admin.users.manage)
Every session (device) of every account, ended ones too: ?user_id=eq.<id>&live=is.true&order=last_used_at.desc.$$;
comment on column api.admin_user_sessions.id is 'Session id (the sid of its access tokens).';
comment on column api.admin_user_sessions.user_id is 'Whose session.';
comment on column api.admin_user_sessions.created_at is 'Sign-in time.';
comment on column api.admin_user_sessions.last_used_at is 'Last sign-in or refresh.';
comment on column api.admin_user_sessions.expires_at is 'When refreshing stops working.';
comment on column api.admin_user_sessions.revoked_at is 'When it was ended; null while not.';
comment on column api.admin_user_sessions.revoked_reason is 'Why it ended (logout, reuse, admin, deactivated, ...).';
comment on column api.admin_user_sessions.user_agent is 'Client user agent at sign-in.';
comment on column api.admin_user_sessions.ip is 'Client address of the last sign-in or refresh.';
comment on column api.admin_user_sessions.live is 'Neither revoked nor expired.';

create view api.admin_roles with (security_invoker = true) as
select r.name, r.is_system, r.description, r.permissions, r.holders from private.admin_roles r;
comment on view api.admin_roles is $$Roles and what each grants (permission admin.users.view or admin.roles.manage)$$;
comment on column api.admin_roles.name is 'Role name.';
comment on column api.admin_roles.is_system is 'A system actor''s role (parser_bot, worker_bot): never granted to a person.';
comment on column api.admin_roles.description is 'What the role is for.';
comment on column api.admin_roles.permissions is 'Permissions the role grants.';
comment on column api.admin_roles.holders is 'How many people hold it.';

create view api.admin_permissions with (security_invoker = true) as
select p.name, p.description, p.roles from private.admin_permissions p;
comment on view api.admin_permissions is $$The 25 RBAC permissions and the roles granting each (permission admin.users.view or admin.roles.manage)$$;
comment on column api.admin_permissions.name is 'Permission name (exact, no wildcards).';
comment on column api.admin_permissions.description is 'What it allows.';
comment on column api.admin_permissions.roles is 'Roles granting it.';

create function api.admin_set_user_active(user_id uuid, active boolean, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  before_row data.users;
  revoked integer := 0;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('admin.users.manage', 'rpc/admin_set_user_active', admin_set_user_active.user_id::text);
  if refusal is not null then return refusal; end if;
  if admin_set_user_active.active is null then
    perform private.raise_error(400, 'invalid_active', 'active must be true or false.');
  end if;
  if not admin_set_user_active.active and admin_set_user_active.user_id = private.uid() then
    perform private.raise_error(409, 'cannot_deactivate_self', 'You cannot deactivate your own account.');
  end if;
  perform private.lock_super_admins();
  select * into before_row from data.users u where u.id = admin_set_user_active.user_id for update;
  if before_row.id is null then
    perform private.raise_error(404, 'user_not_found', 'No user has this id.');
  end if;
  if before_row.is_active = admin_set_user_active.active then
    return jsonb_build_object('user', private.admin_user_json(before_row.id), 'sessions_revoked', 0,
                              'audit_log_id', null, 'warnings', jsonb_build_array('no_changes'));
  end if;
  update data.users u set is_active = admin_set_user_active.active, updated_at = now() where u.id = before_row.id;
  if not admin_set_user_active.active then
    perform private.refuse_without_super_admin();
    -- every session at once: tokens die on their next request, refresh tokens stop working
    update data.sessions s set revoked_at = now(), revoked_reason = 'deactivated'
     where s.user_id = before_row.id and s.revoked_at is null;
    get diagnostics revoked = row_count;
  end if;
  return jsonb_build_object('user', private.admin_user_json(before_row.id), 'sessions_revoked', revoked,
    'audit_log_id', private.audit(case when admin_set_user_active.active then 'user.reactivate' else 'user.deactivate' end,
                                  'user', before_row.id::text, jsonb_build_object('is_active', before_row.is_active),
                                  jsonb_build_object('is_active', admin_set_user_active.active, 'sessions_revoked', revoked),
                                  admin_set_user_active.reason),
    'warnings', '[]'::jsonb);
end
$$;
comment on function api.admin_set_user_active(uuid, boolean, text) is $$Deactivate or reactivate an account (permission admin.users.manage)
Deactivating revokes every session at once (its tokens get 401 on their next request) and the account cannot
sign in; the last active super_admin cannot be deactivated (409 last_super_admin), nor can the caller
(409 cannot_deactivate_self). Audited (user.deactivate / user.reactivate). Returns {user, sessions_revoked, audit_log_id, warnings}.$$;

create function api.admin_update_user(user_id uuid, display_name text, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  before_row data.users;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('admin.users.manage', 'rpc/admin_update_user', admin_update_user.user_id::text);
  if refusal is not null then return refusal; end if;
  select * into before_row from data.users u where u.id = admin_update_user.user_id for update;
  if before_row.id is null then
    perform private.raise_error(404, 'user_not_found', 'No user has this id.');
  end if;
  if before_row.display_name is not distinct from nullif(btrim(admin_update_user.display_name), '') then
    return jsonb_build_object('user', private.admin_user_json(before_row.id), 'audit_log_id', null,
                              'warnings', jsonb_build_array('no_changes'));
  end if;
  update data.users u set display_name = nullif(btrim(admin_update_user.display_name), ''), updated_at = now()
   where u.id = before_row.id;
  return jsonb_build_object('user', private.admin_user_json(before_row.id),
    'audit_log_id', private.audit('user.update', 'user', before_row.id::text,
                                  jsonb_build_object('display_name', before_row.display_name),
                                  jsonb_build_object('display_name', nullif(btrim(admin_update_user.display_name), '')),
                                  admin_update_user.reason),
    'warnings', '[]'::jsonb);
end
$$;
comment on function api.admin_update_user(uuid, text, text) is $$Change a person's display name (permission admin.users.manage)
1 to 64 characters, or empty/null to clear it (400 23514 otherwise). Audited (user.update). Returns {user, audit_log_id, warnings}.$$;

create function api.admin_revoke_sessions(user_id uuid, session_id uuid default null, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  ended uuid[];
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('admin.users.manage', 'rpc/admin_revoke_sessions', admin_revoke_sessions.user_id::text);
  if refusal is not null then return refusal; end if;
  if not exists (select 1 from data.users u where u.id = admin_revoke_sessions.user_id) then
    perform private.raise_error(404, 'user_not_found', 'No user has this id.');
  end if;
  with revoked as (
    update data.sessions s set revoked_at = now(), revoked_reason = 'admin'
     where s.user_id = admin_revoke_sessions.user_id and s.revoked_at is null
       and (admin_revoke_sessions.session_id is null or s.id = admin_revoke_sessions.session_id)
    returning s.id
  )
  select coalesce(array_agg(r.id order by r.id), '{}') into ended from revoked r;
  if cardinality(ended) = 0 then
    return jsonb_build_object('revoked', '[]'::jsonb, 'audit_log_id', null, 'warnings', jsonb_build_array('no_changes'));
  end if;
  return jsonb_build_object('revoked', to_jsonb(ended),
    'audit_log_id', private.audit('user.sessions_revoke', 'user', admin_revoke_sessions.user_id::text, null,
                                  jsonb_build_object('sessions', to_jsonb(ended)), admin_revoke_sessions.reason),
    'warnings', '[]'::jsonb);
end
$$;
comment on function api.admin_revoke_sessions(uuid, uuid, text) is $$End a person's sessions (permission admin.users.manage)
session_id: that one; omitted: every live one. Their access tokens get 401 on the next request and their refresh
tokens stop working. Audited (user.sessions_revoke). Returns {revoked (session ids), audit_log_id, warnings}.$$;
