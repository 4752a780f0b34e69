/* IP bans (issue 13; docs/admin-api.md "IP bans"), permissions security.ban.ip and
   security.unban.ip. A ban refuses its addresses at sign-in, registration and refresh
   (auth_service, 403 ip_banned) and on every PostgREST request (db-pre-request, 403 ip_banned),
   with the client address as the gateway saw it (private.client_ip). Helpers:
   sql/private/admin_security.sql. */

create view api.admin_ip_bans with (security_invoker = true) as
select r.id, r.network, r.reason, r.expires_at, r.active, r.created_by, r.created_at, r.updated_at,
       r.lifted_at, r.lifted_by, r.lift_reason
  from private.admin_ip_bans r;
comment on view api.admin_ip_bans is $$IP bans (permission security.ban.ip)
Every ban, lifted and expired ones too (active says whether it refuses requests now). E.g. ?active=is.true.$$;
comment on column api.admin_ip_bans.id is 'Ban id.';
comment on column api.admin_ip_bans.network is 'Banned address or network (CIDR).';
comment on column api.admin_ip_bans.reason is 'Why.';
comment on column api.admin_ip_bans.expires_at is 'When it ends by itself; null: never.';
comment on column api.admin_ip_bans.active is 'Refuses requests now: neither lifted nor expired.';
comment on column api.admin_ip_bans.created_by is 'Who banned.';
comment on column api.admin_ip_bans.created_at is 'When.';
comment on column api.admin_ip_bans.updated_at is 'Last change (a repeated ban updates reason and expiry).';
comment on column api.admin_ip_bans.lifted_at is 'When it was lifted; null while not.';
comment on column api.admin_ip_bans.lifted_by is 'Who lifted it.';
comment on column api.admin_ip_bans.lift_reason is 'Why it was lifted.';

create function api.admin_ban_ip(network text, reason text, expires_at timestamptz default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  target cidr;
  before_row data.ip_bans;
  after_row data.ip_bans;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('security.ban.ip', 'rpc/admin_ban_ip', left(admin_ban_ip.network, 64));
  if refusal is not null then return refusal; end if;
  begin
    target := btrim(admin_ban_ip.network)::cidr;
  exception when others then
    perform private.raise_error(400, 'invalid_network',
      'network must be an address or a CIDR network without host bits, e.g. 203.0.113.7 or 203.0.113.0/24.');
  end;
  if coalesce(btrim(admin_ban_ip.reason), '') = '' then
    perform private.raise_error(400, 'reason_required', 'Say why the address is banned (reason).');
  end if;
  if admin_ban_ip.expires_at is not null and admin_ban_ip.expires_at <= now() then
    perform private.raise_error(400, 'invalid_expiry', 'expires_at must be in the future (or null: no expiry).');
  end if;
  if target >>= private.client_ip() then
    perform private.raise_error(409, 'ban_includes_caller',
      'This ban would include the address you are calling from.');
  end if;
  select * into before_row from data.ip_bans b where b.network = target and b.lifted_at is null for update;
  if before_row.id is null then
    insert into data.ip_bans (network, reason, expires_at, created_by)
    values (target, btrim(admin_ban_ip.reason), admin_ban_ip.expires_at, private.uid())
    on conflict do nothing  -- ip_bans_network_unlifted_key
    returning * into after_row;
    if after_row.id is null then  -- a concurrent ban of the same network won
      perform private.raise_error(409, 'ban_exists', 'This network was banned meanwhile; list the bans and retry.');
    end if;
  elsif (before_row.reason, before_row.expires_at) is not distinct from (btrim(admin_ban_ip.reason), admin_ban_ip.expires_at) then
    return jsonb_build_object('ban', private.admin_ip_ban_json(before_row.id), 'audit_log_id', null,
                              'warnings', jsonb_build_array('no_changes'));
  else
    update data.ip_bans b set reason = btrim(admin_ban_ip.reason), expires_at = admin_ban_ip.expires_at, updated_at = now()
     where b.id = before_row.id
    returning * into after_row;
  end if;
  return jsonb_build_object('ban', private.admin_ip_ban_json(after_row.id),
    'audit_log_id', private.audit('security.ip_ban', 'ip_ban', after_row.id::text,
                                  case when before_row.id is not null then
                                    private.jsonb_pick(to_jsonb(before_row), array['network', 'reason', 'expires_at']) end,
                                  private.jsonb_pick(to_jsonb(after_row), array['network', 'reason', 'expires_at']),
                                  admin_ban_ip.reason),
    'warnings', '[]'::jsonb);
end
$$;
comment on function api.admin_ban_ip(text, text, timestamptz) is $$Ban an address or network (permission security.ban.ip)
network: an address or CIDR (400 invalid_network); reason required (400 reason_required); expires_at in the
future or null for no expiry (400 invalid_expiry). A ban that would include the caller's own address: 409
ban_includes_caller. Banning a network already banned updates its reason and expiry. Effective on the next
request. Audited (security.ip_ban). Returns {ban, audit_log_id, warnings}.$$;

create function api.admin_unban_ip(id bigint, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  before_row data.ip_bans;
  after_row data.ip_bans;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('security.unban.ip', 'rpc/admin_unban_ip', admin_unban_ip.id::text);
  if refusal is not null then return refusal; end if;
  select * into before_row from data.ip_bans b where b.id = admin_unban_ip.id for update;
  if before_row.id is null then
    perform private.raise_error(404, 'ban_not_found', 'No ban has this id.');
  end if;
  if before_row.lifted_at is not null then
    return jsonb_build_object('ban', private.admin_ip_ban_json(before_row.id), 'audit_log_id', null,
                              'warnings', jsonb_build_array('no_changes'));
  end if;
  update data.ip_bans b
     set lifted_at = now(), lifted_by = private.uid(),
         lift_reason = coalesce(nullif(btrim(admin_unban_ip.reason), ''), 'lifted'), updated_at = now()
   where b.id = before_row.id
  returning * into after_row;
  return jsonb_build_object('ban', private.admin_ip_ban_json(after_row.id),
    'audit_log_id', private.audit('security.ip_unban', 'ip_ban', after_row.id::text,
                                  jsonb_build_object('network', before_row.network, 'lifted_at', null),
                                  jsonb_build_object('network', after_row.network, 'lifted_at', after_row.lifted_at),
                                  admin_unban_ip.reason),
    'warnings', '[]'::jsonb);
end
$$;
comment on function api.admin_unban_ip(bigint, text) is $$Lift a ban (permission security.unban.ip)
Effective on the next request; the ban stays listed (lifted_at). 404 ban_not_found; lifting a lifted ban changes
nothing. Audited (security.ip_unban). Returns {ban, audit_log_id, warnings}.$$;
