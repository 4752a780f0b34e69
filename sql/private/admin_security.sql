/* IP bans (issue 13; docs/admin-api.md "IP bans"): the one definition of "this address is
   banned", used by private.pre_request (every PostgREST request), the auth functions (sign-in,
   registration, refresh) and the admin RPCs; and the gated row source of api.admin_ip_bans. */

-- Is this client address inside an unlifted, unexpired ban? Security definer: the web roles
-- call it from pre_request and hold no grant on data.ip_bans. Null (unknown address): no.
create or replace function private.ip_banned(ip inet) returns boolean
language sql stable security definer set search_path = '' as $$
  select ip_banned.ip is not null
     and exists (select 1 from data.ip_bans b
                  where b.lifted_at is null and b.network >>= ip_banned.ip
                    and (b.expires_at is null or b.expires_at > now()))
$$;

create or replace view private.admin_ip_bans_all as
select b.id, b.network, b.reason, b.expires_at,
       b.lifted_at is null and (b.expires_at is null or b.expires_at > now()) as active,
       b.created_by, b.created_at, b.updated_at, b.lifted_at, b.lifted_by, b.lift_reason
  from data.ip_bans b;

create or replace view private.admin_ip_bans as
select r.* from private.admin_ip_bans_all r where private.admin_gate('security.ban.ip');

create or replace function private.admin_ip_ban_json(ban_id bigint) returns jsonb
language sql stable set search_path = '' as $$
  select to_jsonb(r) from private.admin_ip_bans_all r where r.id = admin_ip_ban_json.ban_id
$$;
