/* People administration helpers (issue 13; docs/admin-api.md "People"): the super_admin guard
   and the gated row sources of api.admin_user_sessions, api.admin_roles and
   api.admin_role_permissions. */

/* Every change that can take super_admin away from someone (revoking the role, deactivating
   the account) first locks the super_admin role's row, so such changes run one after the
   other: the second one's "is one active super_admin left?" (its next statement, a fresh
   snapshot under READ COMMITTED) sees the first one's commit. Without the lock, two requests
   removing the last two super_admins would each see the other one still there. */
create or replace function private.lock_super_admins() returns void
language sql volatile set search_path = '' as $$
  select null::void from data.roles r where r.name = 'super_admin' for no key update
$$;

-- 409 last_super_admin unless an active account still holds super_admin (call after the change).
create or replace function private.refuse_without_super_admin() returns void
language plpgsql stable set search_path = '' as $$
begin
  if not exists (select 1 from data.user_roles ur join data.users u on u.id = ur.user_id
                  where ur.role = 'super_admin' and u.is_active) then
    perform private.raise_error(409, 'last_super_admin',
      'The last active super_admin can be neither deactivated nor lose the role.');
  end if;
end
$$;

create or replace view private.admin_user_sessions as
select s.id, s.user_id, s.created_at, s.last_used_at, s.expires_at, s.revoked_at, s.revoked_reason,
       s.user_agent, s.ip, private.session_live(s.revoked_at, s.expires_at) as live
  from data.sessions s
 where private.admin_gate('admin.users.manage');

-- Roles and what they grant: readable by whoever reads people (admin.users.view) or manages roles.
create or replace view private.admin_roles as
select r.name, r.is_system, r.description,
       array(select rp.permission from data.role_permissions rp where rp.role = r.name order by rp.permission) as permissions,
       (select count(*)::integer from data.user_roles ur where ur.role = r.name) as holders
  from data.roles r
 where private.admin_gate_any(array['admin.users.view', 'admin.roles.manage']);

create or replace view private.admin_permissions as
select p.name, p.description,
       array(select rp.role from data.role_permissions rp where rp.permission = p.name order by rp.role) as roles
  from data.permissions p
 where private.admin_gate_any(array['admin.users.view', 'admin.roles.manage']);

-- The person as admin_users shows them (the answer of the people RPCs).
create or replace function private.admin_user_json(user_id uuid) returns jsonb
language sql stable set search_path = '' as $$
  select to_jsonb(r) from private.admin_users_all r where r.id = admin_user_json.user_id
$$;
