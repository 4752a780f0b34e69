/* Admin helpers: the anime state machine, validation, field locks, request context for the
   audit log, and the gated row sources behind the admin views (docs/admin-api.md).

   Why the row sources are owner-rights views in `private`: the api views are security_invoker
   like every api view (H1), but web_user must not see unpublished titles through RLS (the public
   views rely on anime_public_read) and must hold no grant on data.audit_log (catalog lint). So
   each api admin view reads a private view owned by kitsu_owner (which reads past RLS) whose
   WHERE is private.admin_gate(<permission>): that qualifier names no column, so the planner
   runs it once, as a gating filter, before any row is read, and it raises 403 without the
   permission. Unlike a security definer function, a view is inlined, so PostgREST's filters,
   order and limit reach the tables' indexes (20k titles: milliseconds, not a full rebuild).
   Reads are GETs, which PostgREST runs READ ONLY: a denied read cannot write an audit row.
   Denied writes (the api.admin_* RPCs) are audited; see private.admin_refuse.

   Functions called inside these views run as the caller (web_user), so the views reference
   tables directly and call only pure helpers. Helpers that read tables without being security
   definer are only called from security definer api functions (so they run as kitsu_owner) and
   are granted to nobody. Code: re-applied with create or replace; changing a view's columns or
   a function's return type needs a drop first. */

/* A title's content: the fields ingest writes from a staged payload (whose keys are these
   column names, see ingest.shikimori_payload) and editors may change or lock. One list, read by
   ingest.publish, the admin RPCs and their hints. */
create or replace function private.anime_content_fields() returns text[]
language sql immutable parallel safe set search_path = '' as $$
  select array['title', 'title_ru', 'title_en', 'title_original', 'synonyms', 'kind', 'status',
               'episodes_total', 'episodes_aired', 'score', 'rating', 'year', 'season', 'aired_on',
               'released_on', 'next_episode_at', 'poster_url', 'description']
$$;

-- Fields an admin may edit (keys of the patch of api.admin_update_anime) and lock.
create or replace function private.anime_editable_fields() returns text[]
language sql immutable parallel safe set search_path = '' as $$
  select private.anime_content_fields() || 'state'::text
$$;

-- The state machine of original-system §1.5; staying in the same state is always allowed.
create or replace function private.anime_next_states(from_state text) returns text[]
language sql immutable parallel safe set search_path = '' as $$
  select case from_state
           when 'draft'     then array['pending', 'broken', 'archived']
           when 'pending'   then array['published', 'draft', 'broken', 'archived']
           when 'published' then array['archived', 'broken']
           when 'broken'    then array['draft', 'pending', 'archived']
           when 'archived'  then array['draft']
           else '{}'::text[]
         end
$$;

-- "Has video": at least one live episode with at least one player that is not hidden.
create or replace function private.anime_has_video(anime_id uuid) returns boolean
language sql stable set search_path = '' as $$
  select exists (select 1
                   from data.episodes e
                   join data.episode_sources s on s.episode_id = e.id
                  where e.anime_id = anime_has_video.anime_id and e.deleted_at is null
                    and s.hidden_at is null)
$$;

-- Validation errors of a title, as stable codes the admin UI translates.
create or replace function private.anime_errors(title text, description text, poster_url text,
                                                state text, has_video boolean) returns text[]
language sql immutable parallel safe set search_path = '' as $$
  select array_remove(array[
    case when coalesce(btrim(title), '') = '' then 'missing_title' end,
    case when coalesce(btrim(description), '') = '' then 'missing_description' end,
    case when coalesce(btrim(poster_url), '') = '' then 'missing_poster' end,
    case when not has_video then 'no_video' end,
    case when state = 'published' and not has_video then 'published_without_video' end
  ], null)
$$;

-- The admin view of titles (every state, deleted too), ungated: read by the security definer
-- RPCs for their answers, and by private.admin_anime (gated) for api.admin_anime. No grant.
create or replace view private.admin_anime_all as
select a.id, a.shikimori_id, a.title, a.title_ru, a.title_en, a.title_original, a.synonyms,
       a.kind, a.status, a.episodes_total, a.episodes_aired, a.score, a.rating, a.year, a.season,
       a.aired_on, a.released_on, a.next_episode_at, a.poster_url, a.description,
       a.genres,
       a.state, private.anime_next_states(a.state) as next_states, a.source,
       /* has_video written out three times rather than joined laterally: as select-list
          expressions they are evaluated after ORDER BY ... LIMIT, so a page costs 30 lookups,
          not one per title. A scalar subquery, not exists(): the planner may turn exists() into
          a hash of every episode. (Not private.anime_has_video: inside a view a function runs
          as the caller, under RLS.) */
       coalesce((select true from data.episodes ep join data.episode_sources s on s.episode_id = ep.id
                  where ep.anime_id = a.id and ep.deleted_at is null and s.hidden_at is null limit 1), false) as has_video,
       private.anime_errors(a.title, a.description, a.poster_url, a.state,
         coalesce((select true from data.episodes ep join data.episode_sources s on s.episode_id = ep.id
                  where ep.anime_id = a.id and ep.deleted_at is null and s.hidden_at is null limit 1), false)) as errors,
       private.anime_errors(a.title, a.description, a.poster_url, a.state,
         coalesce((select true from data.episodes ep join data.episode_sources s on s.episode_id = ep.id
                  where ep.anime_id = a.id and ep.deleted_at is null and s.hidden_at is null limit 1), false)) <> '{}' as has_errors,
       (select count(*)::integer from data.episodes ep
         where ep.anime_id = a.id and ep.deleted_at is null) as episodes_count,
       a.locked_fields, a.locked_by, a.locked_reason, a.locked_at,
       a.deleted_at is not null as is_deleted, a.deleted_at, a.deleted_by, a.delete_reason,
       a.edited_fields, a.created_by, a.updated_by, a.created_at, a.updated_at,
       a.title_ru_generated  -- last: added in migration 0039 (create or replace only appends)
  from data.anime a;

create or replace function private.admin_anime_json(anime_id uuid) returns jsonb
language sql stable set search_path = '' as $$
  select to_jsonb(r) from private.admin_anime_all r where r.id = admin_anime_json.anime_id
$$;

-- The title to change, locked for this transaction: 404 when unknown, 410 when soft-deleted.
create or replace function private.admin_anime_for_update(anime_id uuid, allow_deleted boolean default false)
returns data.anime
language plpgsql volatile set search_path = '' as $$
declare
  target data.anime;
begin
  select * into target from data.anime a where a.id = admin_anime_for_update.anime_id for update;
  perform private.refuse_gone('anime', target.id, target.deleted_at, admin_anime_for_update.allow_deleted);
  return target;
end
$$;

/* The refusals of a row an admin RPC changes: 404 <kind>_not_found when it was not found (id
   null), 410 <kind>_deleted when soft-deleted (unless allowed: restore, delete). */
create or replace function private.refuse_gone(kind text, id uuid, deleted_at timestamptz, allow_deleted boolean)
returns void
language plpgsql stable set search_path = '' as $$
declare
  noun text := case kind when 'anime' then 'title' else kind end;
begin
  if id is null then
    perform private.raise_error(404, kind || '_not_found', format('No %s has this id.', noun));
  end if;
  if deleted_at is not null and not allow_deleted then
    perform private.raise_error(410, kind || '_deleted', format('This %s is deleted; restore it first.', noun),
                                hint => format('rpc/admin_restore_%s', kind));
  end if;
end
$$;

-- Field names outside the editable list (400 unknown_field when not empty).
create or replace function private.anime_unknown_fields(fields text[]) returns text[]
language sql immutable parallel safe set search_path = '' as $$
  select array(select f from unnest(fields) f where f is null or f <> all (private.anime_editable_fields()) order by f)
$$;

-- The answer of every anime RPC: {anime, audit_log_id, warnings}; warnings = validation errors.
create or replace function private.admin_anime_result(anime_id uuid, audit_log_id bigint,
                                                      warnings text[] default '{}')
returns jsonb
language sql stable set search_path = '' as $$
  select jsonb_build_object(
           'anime', r.doc, 'audit_log_id', admin_anime_result.audit_log_id,
           'warnings', to_jsonb(admin_anime_result.warnings
                                || array(select jsonb_array_elements_text(r.doc -> 'errors'))))
    from (select private.admin_anime_json(admin_anime_result.anime_id) as doc) r
$$;

-- Keys of a jsonb object kept to the listed ones (the before/after of an audited change).
create or replace function private.jsonb_pick(doc jsonb, keys text[]) returns jsonb
language sql immutable parallel safe set search_path = '' as $$
  select coalesce(jsonb_object_agg(k, doc -> k), '{}'::jsonb) from unnest(keys) k
$$;

-- Request context for the audit log: PostgREST exposes headers (lower-case keys), not the peer.
create or replace function private.request_header(name text) returns text
language sql stable set search_path = '' as $$
  select nullif(current_setting('request.headers', true), '')::jsonb ->> lower(name)
$$;

/* The client address: the right-most X-Forwarded-For entry. The gateway (contract §10) writes
   that header itself, overwriting what the client sent, and auth_service reads the same entry
   from its trusted proxies (auth_service/web.py client_ip). Without the gateway in front of
   PostgREST the header is client-controlled, so the audit log treats it as a hint. */
create or replace function private.client_ip() returns inet
language plpgsql stable set search_path = '' as $$
declare
  hops text[] := pg_catalog.string_to_array(private.request_header('x-forwarded-for'), ',');
begin
  return nullif(btrim(hops[cardinality(hops)]), '')::inet;
exception when others then
  return null;  -- a malformed header must not fail the audited request
end
$$;

/* Append one audit row for the caller (actor from the JWT, ip and user agent from headers).
   With a coalesce_key (refusals, private.admin_refuse) a second entry of the same key within the
   same minute adds to the first row's count instead: one upsert on audit_log_coalesce_idx, so
   concurrent refusals never race; the row keeps the first attempt's details. */
create or replace function private.audit_row(action text, entity_type text, entity_id text,
                                             before jsonb, after jsonb, reason text,
                                             coalesce_key text) returns bigint
language sql volatile set search_path = '' as $$
  insert into data.audit_log as l (actor_id, actor_type, action, entity_type, entity_id, before, after,
                                   reason, ip, user_agent, coalesce_key)
  values (private.uid(), case when private.uid() is null then 'anonymous' else 'user' end,
          audit_row.action, audit_row.entity_type, audit_row.entity_id, audit_row.before, audit_row.after,
          nullif(btrim(audit_row.reason), ''), private.client_ip(),
          left(private.request_header('user-agent'), 512), audit_row.coalesce_key)
  on conflict (coalesce_key, date_bin('1 minute', created_at, timestamptz '2000-01-01 00:00:00+00'))
     where coalesce_key is not null
  do update set count = l.count + 1
  returning id
$$;

create or replace function private.audit(action text, entity_type text, entity_id text,
                                         before jsonb, after jsonb, reason text) returns bigint
language sql volatile set search_path = '' as $$
  select private.audit_row(audit.action, audit.entity_type, audit.entity_id, audit.before,
                           audit.after, audit.reason, null)
$$;

-- The longest prefix of value within max_bytes bytes (UTF-8), whole characters only.
create or replace function private.cut_text(value text, max_bytes integer) returns text
language plpgsql immutable parallel safe set search_path = '' as $$
declare
  n integer := least(length(value), max_bytes);
begin
  while octet_length(left(value, n)) > max_bytes loop
    n := n - greatest(1, (octet_length(left(value, n)) - max_bytes) / 4);
  end loop;
  return left(value, n);
end
$$;

/* What a refusal stores of the caller's arguments: at most 1 KiB (contract §11), so a refused
   call cannot write megabytes into the audit log. Small attempts are kept as they are; a larger
   one keeps its short scalar values (at most 4 of 64 bytes: the resource, ids), and the start of
   its JSON text as "excerpt" (250 bytes, at most 500 once escaped), with its size in "bytes". */
create or replace function private.audit_excerpt(attempt jsonb) returns jsonb
language sql immutable parallel safe set search_path = '' as $$
  select case
           when attempt is null or octet_length(attempt::text) <= 1024 then attempt
           else coalesce((select jsonb_object_agg(k.key, k.value)
                            from (select e.key, e.value from pg_catalog.jsonb_each(attempt) e
                                   where jsonb_typeof(attempt) = 'object'
                                     and jsonb_typeof(e.value) in ('string', 'number', 'boolean', 'null')
                                     and octet_length(e.key) <= 32 and octet_length(e.value::text) <= 64
                                   order by e.key limit 4) k), '{}'::jsonb)
                || jsonb_build_object('truncated', true, 'bytes', octet_length(attempt::text),
                                      'excerpt', private.cut_text(attempt::text, 250))
         end
$$;

/* A refused admin write that must leave a trace. raise would roll the audit row back with the
   request, so instead: write the row, set the HTTP status through the response.status GUC and
   return the error body; PostgREST commits (db-tx-end = commit) and answers with that status.
   Call it before the request has changed anything else: everything done so far is committed.
   The attempt is cut (private.audit_excerpt) and the reason to 128 bytes; refusals of one
   caller for one action (audit action, entity, and the resource when the attempt names one)
   within a minute are one row with a count. */
create or replace function private.admin_refuse(status integer, code text, message text,
                                                action text, entity_type text, entity_id text,
                                                attempt jsonb, reason text default null)
returns jsonb
language plpgsql volatile set search_path = '' as $$
begin
  perform private.audit_row(admin_refuse.action, admin_refuse.entity_type, admin_refuse.entity_id,
                            null, private.audit_excerpt(admin_refuse.attempt),
                            private.cut_text(admin_refuse.reason, 128),
                            concat_ws(' ', coalesce(private.uid()::text, 'anonymous'), admin_refuse.action,
                                      admin_refuse.entity_type, admin_refuse.entity_id,
                                      admin_refuse.attempt ->> 'resource'));
  perform set_config('response.status', admin_refuse.status::text, true);
  return jsonb_build_object('code', admin_refuse.code, 'message', admin_refuse.message,
                            'details', null, 'hint', null);
end
$$;

-- The caller lacks `permission` for `resource`: audited 403 (security.permission_denied).
create or replace function private.admin_denied(permission text, resource text, target text)
returns jsonb
language sql volatile set search_path = '' as $$
  select private.admin_refuse(403, 'permission_denied',
                              format('This needs the permission %s.', admin_denied.permission),
                              'security.permission_denied', 'permission', admin_denied.permission,
                              jsonb_build_object('resource', admin_denied.resource,
                                                 'target', admin_denied.target))
$$;

/* The permission check of an admin RPC: null when the caller holds `permission`, else the
   audited 403 of private.admin_denied. It cannot end the RPC itself (a raise would roll the
   audit row back), so the RPC returns what it gets:
     refusal := private.admin_denied_unless('anime.edit', 'rpc/admin_update_anime', id::text);
     if refusal is not null then return refusal; end if; */
create or replace function private.admin_denied_unless(permission text, resource text, target text)
returns jsonb
language sql volatile set search_path = '' as $$
  select case when not private.has_permission(admin_denied_unless.permission)
              then private.admin_denied(admin_denied_unless.permission, admin_denied_unless.resource,
                                        admin_denied_unless.target) end
$$;

/* A refused admin read, counted: runs on the loopback connection of
   autonomous.count_refused_read (sql/autonomous.sql), as kitsu_owner, in its own transaction,
   because the refusing GET's read-only transaction is rolled back. One coalesced audit row per
   caller, resource and minute (private.audit_row's upsert): action security.read_denied,
   entity permission/<the missing one>, after {resource}, count = how many. The caller's
   subject and headers are set for this transaction so actor, ip and user agent are taken as
   for every other audit row. Granted to nobody. */
create or replace function private.record_refused_read(caller uuid, resource text, permission text,
                                                       ip text, user_agent text) returns bigint
language plpgsql volatile set search_path = '' as $$
begin
  perform set_config('request.jwt.claims', jsonb_build_object('sub', record_refused_read.caller)::text, true);
  perform set_config('request.headers', jsonb_strip_nulls(jsonb_build_object(
    'x-forwarded-for', record_refused_read.ip, 'user-agent', record_refused_read.user_agent))::text, true);
  return private.audit_row('security.read_denied', 'permission', record_refused_read.permission, null,
                           jsonb_build_object('resource', record_refused_read.resource), null,
                           concat_ws(' ', record_refused_read.caller::text, 'security.read_denied',
                                     record_refused_read.resource));
end
$$;

/* Gate of the admin views: true with one of the permissions, else 403 permission_denied. The
   refusal is raised (a GET is read-only and rolled back on the 403), so it is counted on a
   second connection first (autonomous.count_refused_read, which never fails); the names the
   count keeps are the first of the permissions and the request's path. Where that function
   does not exist (a database set up without a superuser) the read is refused uncounted. */
create or replace function private.admin_gate_any(permissions text[]) returns boolean
language plpgsql stable set search_path = '' as $$
begin
  if not exists (select 1 from unnest(admin_gate_any.permissions) p where private.has_permission(p)) then
    begin
      perform autonomous.count_refused_read(admin_gate_any.permissions[1]);
    exception when undefined_function or invalid_schema_name or insufficient_privilege then
      null;
    end;
    perform private.raise_error(403, 'permission_denied',
      case when cardinality(admin_gate_any.permissions) = 1
           then format('This needs the permission %s.', admin_gate_any.permissions[1])
           else format('This needs one of the permissions %s.', array_to_string(admin_gate_any.permissions, ', ')) end);
  end if;
  return true;
end
$$;

create or replace function private.admin_gate(permission text) returns boolean
language sql stable set search_path = '' as $$
  select private.admin_gate_any(array[admin_gate.permission])
$$;

-- The gated row sources (owner rights; see the header). web_user may select from these only.
create or replace view private.admin_anime as
select r.* from private.admin_anime_all r where private.admin_gate('anime.view');

create or replace view private.admin_users_all as
select u.id, u.email, u.display_name, u.avatar_url, u.is_active,
       array(select ur.role from data.user_roles ur where ur.user_id = u.id order by ur.role) as roles,
       array(select distinct rp.permission
               from data.user_roles ur join data.role_permissions rp on rp.role = ur.role
              where ur.user_id = u.id order by rp.permission) as permissions,
       (select count(*)::integer from data.sessions s
         where s.user_id = u.id and private.session_live(s.revoked_at, s.expires_at)) as live_sessions,
       (select max(s.last_used_at) from data.sessions s where s.user_id = u.id) as last_seen_at,
       u.created_at, u.updated_at
  from data.users u;

create or replace view private.admin_users as
select r.* from private.admin_users_all r where private.admin_gate('admin.users.view');

create or replace view private.admin_audit_log as
select l.id, l.created_at, l.actor_id, l.actor_type, l.action, l.entity_type, l.entity_id,
       l.before, l.after, l.reason, l.ip, l.user_agent, l.count, l.session_id
  from data.audit_log l
 where private.admin_gate('audit.view');

-- The roles a person holds, sorted (the before/after of role grants and revocations).
create or replace function private.user_role_names(user_id uuid) returns text[]
language sql stable set search_path = '' as $$
  select array(select ur.role from data.user_roles ur
                where ur.user_id = user_role_names.user_id order by ur.role)
$$;

-- The answer of a role grant or revocation, audited when something changed:
-- {user_id, role, changed, roles, audit_log_id}.
create or replace function private.role_change_result(action text, user_id uuid, role text, changed boolean,
                                                      before_roles text[], reason text) returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
  roles text[] := private.user_role_names(role_change_result.user_id);
  audit_id bigint;
begin
  if changed then
    audit_id := private.audit(action, 'user', role_change_result.user_id::text,
                              jsonb_build_object('roles', before_roles), jsonb_build_object('roles', roles), reason);
  end if;
  return jsonb_build_object('user_id', role_change_result.user_id, 'role', role_change_result.role,
                            'changed', changed, 'roles', to_jsonb(roles), 'audit_log_id', audit_id);
end
$$;
