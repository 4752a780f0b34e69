/* Admin resources (contract §5 "Admin"; reference: docs/admin-api.md). Every one needs an RBAC
   permission (§6), checked in SQL on each request:
   - views (GET): rows come from a gated owner-rights view in private/admin.sql that answers
     403 permission_denied without the permission. GETs run READ ONLY in PostgREST, so a
     denied read is not audited.
   - RPCs (POST): security definer, owned by kitsu_owner; the permission is checked first, and a
     refusal is written to data.audit_log and answered 403 through response.status, so the
     audit row commits (private.admin_denied_unless, whose answer the RPC returns). Other
     failures raise and change nothing.
   Anonymous callers have no grant on any of these: 401. */

-- Admin catalog --------------------------------------------------------------------------------

create view api.admin_anime with (security_invoker = true) as
select r.id, r.shikimori_id, r.title, r.title_ru, r.title_en, r.title_original, r.synonyms, r.kind,
       r.status, r.episodes_total, r.episodes_aired, r.score, r.rating, r.year, r.season, r.aired_on,
       r.released_on, r.next_episode_at, r.poster_url, r.description, r.genres, r.state,
       r.next_states, r.source, r.has_video, r.errors, r.has_errors, r.episodes_count,
       r.locked_fields, r.locked_by, r.locked_reason, r.locked_at, r.is_deleted, r.deleted_at,
       r.deleted_by, r.delete_reason, r.edited_fields, r.created_by, r.updated_by, r.created_at,
       r.updated_at, r.title_ru_generated
  from private.admin_anime r;
comment on view api.admin_anime is $$Admin catalog (permission anime.edit)
Every title in every state, soft-deleted ones too, with has_video and validation errors.
Filter, order and paginate as usual (e.g. ?state=eq.pending&has_errors=is.true&order=updated_at.desc;
Prefer: count=exact for the total). Without anime.edit: 403 permission_denied.$$;
comment on column api.admin_anime.id is 'Title id (uuid).';
comment on column api.admin_anime.shikimori_id is 'Shikimori id, when the title came from there.';
comment on column api.admin_anime.title is 'Main title (romaji).';
comment on column api.admin_anime.title_ru is 'Russian title.';
comment on column api.admin_anime.title_ru_generated is $$true when title_ru was generated (a transcription), not taken from a source or written by an editor: a name to check (filter title_ru_generated=is.true). Editing title_ru clears it.$$;
comment on column api.admin_anime.title_en is 'English title.';
comment on column api.admin_anime.title_original is 'Original (Japanese) title.';
comment on column api.admin_anime.synonyms is 'Other known titles.';
comment on column api.admin_anime.kind is 'tv, movie, ova, ona, special, tv_special, music, pv or cm.';
comment on column api.admin_anime.status is 'anons, ongoing or released.';
comment on column api.admin_anime.episodes_total is 'Planned number of episodes; null when unknown.';
comment on column api.admin_anime.episodes_aired is 'Episodes aired so far.';
comment on column api.admin_anime.score is 'Shikimori score, 0 to 10.';
comment on column api.admin_anime.rating is 'Age rating: none, g, pg, pg_13, r, r_plus or rx.';
comment on column api.admin_anime.year is 'Year of the first airing.';
comment on column api.admin_anime.season is 'winter, spring, summer or fall.';
comment on column api.admin_anime.aired_on is 'Date of the first airing.';
comment on column api.admin_anime.released_on is 'Date of the last episode.';
comment on column api.admin_anime.next_episode_at is 'When the next episode airs.';
comment on column api.admin_anime.poster_url is 'Absolute URL of the poster.';
comment on column api.admin_anime.description is 'Synopsis.';
comment on column api.admin_anime.genres is 'Genre names.';
comment on column api.admin_anime.state is 'draft, pending, published, broken or archived; only published, not deleted titles are public.';
comment on column api.admin_anime.next_states is 'States rpc/admin_update_anime may move this title to (besides staying).';
comment on column api.admin_anime.source is 'manual, parser or import: who wrote the row last.';
comment on column api.admin_anime.has_video is 'At least one live episode has at least one player.';
comment on column api.admin_anime.errors is 'Validation errors: missing_title, missing_description, missing_poster, no_video, published_without_video.';
comment on column api.admin_anime.has_errors is 'errors is not empty.';
comment on column api.admin_anime.episodes_count is 'Live (not deleted) episodes.';
comment on column api.admin_anime.locked_fields is 'Fields edits may not change (423) and ingest never overwrites.';
comment on column api.admin_anime.locked_by is 'Who locked fields last.';
comment on column api.admin_anime.locked_reason is 'Why (the last lock).';
comment on column api.admin_anime.locked_at is 'When fields were locked last; null when nothing is locked.';
comment on column api.admin_anime.is_deleted is 'Soft-deleted: hidden from the public catalog until restored.';
comment on column api.admin_anime.deleted_at is 'When it was soft-deleted.';
comment on column api.admin_anime.deleted_by is 'Who soft-deleted it.';
comment on column api.admin_anime.delete_reason is 'Why it was soft-deleted.';
comment on column api.admin_anime.edited_fields is 'Fields changed by hand; ingest never overwrites them.';
comment on column api.admin_anime.created_by is 'Who created it (null for ingest).';
comment on column api.admin_anime.updated_by is 'Who edited it last (null for ingest).';
comment on column api.admin_anime.created_at is 'When the row was created.';
comment on column api.admin_anime.updated_at is 'Last change of the row.';

create function api.admin_update_anime(id uuid, patch jsonb, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  caller uuid := private.uid();
  before_row data.anime;
  after_row data.anime;
  requested text[];
  unknown_fields text[];
  changed text[];
  locked text[];
  warnings text[] := '{}';
  audit_id bigint;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('anime.edit', 'rpc/admin_update_anime', admin_update_anime.id::text);
  if refusal is not null then return refusal; end if;
  if admin_update_anime.patch is null or jsonb_typeof(admin_update_anime.patch) <> 'object'
     or admin_update_anime.patch = '{}'::jsonb then
    perform private.raise_error(400, 'empty_patch', 'patch must be a JSON object with at least one field.');
  end if;
  requested := array(select k from jsonb_object_keys(admin_update_anime.patch) k order by k);
  unknown_fields := private.anime_unknown_fields(requested);
  if cardinality(unknown_fields) > 0 then
    perform private.raise_error(400, 'unknown_field',
      format('These fields cannot be edited: %s.', array_to_string(unknown_fields, ', ')),
      hint => 'Editable: ' || array_to_string(private.anime_editable_fields(), ', '));
  end if;
  if admin_update_anime.patch ? 'state' and coalesce(admin_update_anime.patch ->> 'state', '') <> all
       (array['draft', 'pending', 'published', 'broken', 'archived']) then
    perform private.raise_error(400, 'invalid_state',
      'state must be draft, pending, published, broken or archived.');
  end if;

  before_row := private.admin_anime_for_update(admin_update_anime.id);
  after_row := jsonb_populate_record(before_row, admin_update_anime.patch);
  changed := array(select k from unnest(requested) k
                    where to_jsonb(before_row) -> k is distinct from to_jsonb(after_row) -> k);

  locked := array(select k from unnest(changed) k where k = any (before_row.locked_fields));
  if cardinality(locked) > 0 then
    if private.has_permission('parser.override_lock') then
      warnings := warnings || 'lock_overridden'::text;
    else
      perform private.raise_error(423, 'field_locked',
        format('These fields are locked: %s.', array_to_string(locked, ', ')),
        details => array_to_string(locked, ','),
        hint => 'Unlock them first with rpc/admin_unlock_anime (permission anime.unlock).');
    end if;
  end if;

  if 'state' = any (changed) then
    if not after_row.state = any (private.anime_next_states(before_row.state)) then
      perform private.raise_error(409, 'invalid_transition',
        format('A %s title cannot become %s.', before_row.state, after_row.state),
        hint => 'Allowed from ' || before_row.state || ': '
                || array_to_string(private.anime_next_states(before_row.state), ', '));
    end if;
    if after_row.state = 'published' then
      refusal := private.admin_denied_unless('anime.publish', 'rpc/admin_update_anime', admin_update_anime.id::text);
      if refusal is not null then return refusal; end if;
      if not private.anime_has_video(before_row.id) then
        perform private.raise_error(409, 'publish_needs_video',
          'A title needs at least one episode with a player before it is published.');
      end if;
    end if;
  end if;

  if cardinality(changed) = 0 then
    return private.admin_anime_result(before_row.id, null, array['no_changes']);
  end if;

  update data.anime a
     set title = after_row.title, title_ru = after_row.title_ru, title_en = after_row.title_en,
         title_original = after_row.title_original, synonyms = after_row.synonyms,
         kind = after_row.kind, status = after_row.status, episodes_total = after_row.episodes_total,
         episodes_aired = after_row.episodes_aired, score = after_row.score, rating = after_row.rating,
         year = after_row.year, season = after_row.season, aired_on = after_row.aired_on,
         released_on = after_row.released_on, next_episode_at = after_row.next_episode_at,
         poster_url = after_row.poster_url, description = after_row.description,
         state = after_row.state,
         source = 'manual', updated_by = caller,
         -- a Russian title an editor wrote is not a generated one
         title_ru_generated = a.title_ru_generated and not 'title_ru' = any (changed),
         edited_fields = array(select distinct f from unnest(a.edited_fields || changed) f order by f)
   where a.id = before_row.id
  returning a.* into after_row;

  audit_id := private.audit('anime.update', 'anime', before_row.id::text,
                            private.jsonb_pick(to_jsonb(before_row), changed || array['source']),
                            private.jsonb_pick(to_jsonb(after_row), changed || array['source']),
                            admin_update_anime.reason);
  return private.admin_anime_result(before_row.id, audit_id, warnings);
end
$$;
comment on function api.admin_update_anime(uuid, jsonb, text) is $$Edit a title (permission anime.edit)
patch: the fields to change (see admin-api.md). state follows the state machine (next_states); publishing
also needs anime.publish and a video. Locked fields answer 423 unless the caller holds parser.override_lock.
Sets source=manual and updated_by, adds the changed fields to edited_fields, audits before/after with reason,
and returns {anime, audit_log_id, warnings}. Deleted titles: 410.$$;

create function api.admin_create_anime(fields jsonb, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  caller uuid := private.uid();
  given text[];
  unknown_fields text[];
  draft data.anime;
  created data.anime;
  audit_id bigint;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('anime.create', 'rpc/admin_create_anime', null);
  if refusal is not null then return refusal; end if;
  if admin_create_anime.fields is null or jsonb_typeof(admin_create_anime.fields) <> 'object' then
    perform private.raise_error(400, 'empty_patch', 'fields must be a JSON object.');
  end if;
  given := array(select k from jsonb_object_keys(admin_create_anime.fields) k order by k);
  unknown_fields := private.anime_unknown_fields(given);
  if cardinality(unknown_fields) > 0 then
    perform private.raise_error(400, 'unknown_field',
      format('These fields cannot be set: %s.', array_to_string(unknown_fields, ', ')),
      hint => 'Editable: ' || array_to_string(private.anime_editable_fields(), ', '));
  end if;
  draft := jsonb_populate_record(null::data.anime, admin_create_anime.fields);
  if coalesce(btrim(draft.title), '') = '' then
    perform private.raise_error(400, 'missing_title', 'A title needs a non-empty title.');
  end if;
  if coalesce(draft.state, 'draft') not in ('draft', 'pending') then
    perform private.raise_error(409, 'invalid_transition', 'A new title starts as draft or pending.');
  end if;

  insert into data.anime (title, title_ru, title_en, title_original, synonyms, kind, status,
                          episodes_total, episodes_aired, score, rating, year, season, aired_on,
                          released_on, next_episode_at, poster_url, description, state, source,
                          created_by, updated_by, edited_fields)
  values (draft.title, draft.title_ru, draft.title_en, draft.title_original,
          coalesce(draft.synonyms, '{}'), draft.kind, draft.status, draft.episodes_total,
          draft.episodes_aired, draft.score, draft.rating, draft.year, draft.season, draft.aired_on,
          draft.released_on, draft.next_episode_at, draft.poster_url, draft.description,
          coalesce(draft.state, 'draft'), 'manual', caller, caller, given)
  returning * into created;

  audit_id := private.audit('anime.create', 'anime', created.id::text, null, to_jsonb(created),
                            admin_create_anime.reason);
  return private.admin_anime_result(created.id, audit_id);
end
$$;
comment on function api.admin_create_anime(jsonb, text) is $$Create a title (permission anime.create)
fields: the same keys as admin_update_anime's patch; title is required; state draft (default) or pending.
The title is manual (source=manual, every given field in edited_fields). Returns {anime, audit_log_id, warnings}.$$;

create function api.admin_lock_anime(id uuid, fields text[] default null, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  target text[] := coalesce(admin_lock_anime.fields, private.anime_editable_fields());
  unknown_fields text[] := private.anime_unknown_fields(coalesce(admin_lock_anime.fields, '{}'));
  before_row data.anime;
  after_row data.anime;
  audit_id bigint;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('anime.lock', 'rpc/admin_lock_anime', admin_lock_anime.id::text);
  if refusal is not null then return refusal; end if;
  if cardinality(unknown_fields) > 0 or cardinality(target) = 0 then
    perform private.raise_error(400, 'unknown_field',
      format('These fields cannot be locked: %s.', coalesce(nullif(array_to_string(unknown_fields, ', '), ''), '(none given)')),
      hint => 'Lockable: ' || array_to_string(private.anime_editable_fields(), ', '));
  end if;
  before_row := private.admin_anime_for_update(admin_lock_anime.id);
  update data.anime a
     set locked_fields = array(select distinct f from unnest(a.locked_fields || target) f order by f),
         locked_by = private.uid(), locked_reason = nullif(btrim(admin_lock_anime.reason), ''),
         locked_at = now()
   where a.id = before_row.id
  returning a.* into after_row;
  audit_id := private.audit('anime.lock', 'anime', before_row.id::text,
                            jsonb_build_object('locked_fields', before_row.locked_fields),
                            jsonb_build_object('locked_fields', after_row.locked_fields),
                            admin_lock_anime.reason);
  return private.admin_anime_result(before_row.id, audit_id);
end
$$;
comment on function api.admin_lock_anime(uuid, text[], text) is $$Lock fields of a title (permission anime.lock)
fields: names from admin_update_anime's patch; omitted or null locks them all. Locked fields refuse edits
(423) and ingest never overwrites them. Audited. Returns {anime, audit_log_id, warnings}.$$;

create function api.admin_unlock_anime(id uuid, fields text[] default null, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  unknown_fields text[] := private.anime_unknown_fields(coalesce(admin_unlock_anime.fields, '{}'));
  before_row data.anime;
  after_row data.anime;
  remaining text[];
  audit_id bigint;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('anime.unlock', 'rpc/admin_unlock_anime', admin_unlock_anime.id::text);
  if refusal is not null then return refusal; end if;
  if cardinality(unknown_fields) > 0 then
    perform private.raise_error(400, 'unknown_field',
      format('These fields cannot be unlocked: %s.', array_to_string(unknown_fields, ', ')));
  end if;
  before_row := private.admin_anime_for_update(admin_unlock_anime.id);
  remaining := case when admin_unlock_anime.fields is null then '{}'::text[]
                    else array(select f from unnest(before_row.locked_fields) f
                                where f <> all (admin_unlock_anime.fields) order by f) end;
  if remaining = before_row.locked_fields then
    return private.admin_anime_result(before_row.id, null, array['no_changes']);
  end if;
  update data.anime a
     set locked_fields = remaining,
         locked_by = case when cardinality(remaining) = 0 then null else a.locked_by end,
         locked_reason = case when cardinality(remaining) = 0 then null else a.locked_reason end,
         locked_at = case when cardinality(remaining) = 0 then null else a.locked_at end
   where a.id = before_row.id
  returning a.* into after_row;
  audit_id := private.audit('anime.unlock', 'anime', before_row.id::text,
                            jsonb_build_object('locked_fields', before_row.locked_fields),
                            jsonb_build_object('locked_fields', after_row.locked_fields),
                            admin_unlock_anime.reason);
  return private.admin_anime_result(before_row.id, audit_id);
end
$$;
comment on function api.admin_unlock_anime(uuid, text[], text) is $$Unlock fields of a title (permission anime.unlock)
fields: the fields to unlock; omitted or null unlocks everything. Audited. Returns {anime, audit_log_id, warnings}.$$;

create function api.admin_delete_anime(id uuid, reason text)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  before_row data.anime;
  after_row data.anime;
  audit_id bigint;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('anime.delete', 'rpc/admin_delete_anime', admin_delete_anime.id::text);
  if refusal is not null then return refusal; end if;
  if coalesce(btrim(admin_delete_anime.reason), '') = '' then
    perform private.raise_error(400, 'reason_required', 'Say why the title is deleted (reason).');
  end if;
  before_row := private.admin_anime_for_update(admin_delete_anime.id, allow_deleted => true);
  if before_row.deleted_at is not null then
    return private.admin_anime_result(before_row.id, null, array['no_changes']);
  end if;
  update data.anime a
     set deleted_at = now(), deleted_by = private.uid(), delete_reason = btrim(admin_delete_anime.reason)
   where a.id = before_row.id
  returning a.* into after_row;
  audit_id := private.audit('anime.delete', 'anime', before_row.id::text,
                            private.jsonb_pick(to_jsonb(before_row), array['deleted_at', 'deleted_by', 'delete_reason']),
                            private.jsonb_pick(to_jsonb(after_row), array['deleted_at', 'deleted_by', 'delete_reason']),
                            admin_delete_anime.reason);
  return private.admin_anime_result(before_row.id, audit_id);
end
$$;
comment on function api.admin_delete_anime(uuid, text) is $$Soft-delete a title (permission anime.delete)
reason is required. The title leaves the public catalog at once and stays in admin_anime (is_deleted);
rpc/admin_restore_anime brings it back. Deleting a deleted title changes nothing. Audited.$$;

create function api.admin_restore_anime(id uuid, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  before_row data.anime;
  after_row data.anime;
  audit_id bigint;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('anime.delete', 'rpc/admin_restore_anime', admin_restore_anime.id::text);
  if refusal is not null then return refusal; end if;
  before_row := private.admin_anime_for_update(admin_restore_anime.id, allow_deleted => true);
  if before_row.deleted_at is null then
    return private.admin_anime_result(before_row.id, null, array['no_changes']);
  end if;
  update data.anime a
     set deleted_at = null, deleted_by = null, delete_reason = null
   where a.id = before_row.id
  returning a.* into after_row;
  audit_id := private.audit('anime.restore', 'anime', before_row.id::text,
                            private.jsonb_pick(to_jsonb(before_row), array['deleted_at', 'deleted_by', 'delete_reason']),
                            private.jsonb_pick(to_jsonb(after_row), array['deleted_at', 'deleted_by', 'delete_reason']),
                            admin_restore_anime.reason);
  return private.admin_anime_result(before_row.id, audit_id);
end
$$;
comment on function api.admin_restore_anime(uuid, text) is $$Restore a soft-deleted title (permission anime.delete)
It is public again if its state is published. Restoring a live title changes nothing. Audited.$$;

-- People and roles -----------------------------------------------------------------------------

create view api.admin_users with (security_invoker = true) as
select r.id, r.email, r.display_name, r.avatar_url, r.is_active, r.roles, r.permissions,
       r.live_sessions, r.last_seen_at, r.created_at, r.updated_at
  from private.admin_users r;
comment on view api.admin_users is $$People (permission admin.users.view)
One row per account with its roles and permissions. Without admin.users.view: 403 permission_denied.$$;
comment on column api.admin_users.id is 'User id.';
comment on column api.admin_users.email is 'Email, lower-case.';
comment on column api.admin_users.display_name is 'Name shown to others.';
comment on column api.admin_users.avatar_url is 'https URL of the avatar.';
comment on column api.admin_users.is_active is 'False: the account cannot sign in and holds no permission.';
comment on column api.admin_users.roles is 'RBAC roles held.';
comment on column api.admin_users.permissions is 'Permissions those roles grant.';
comment on column api.admin_users.live_sessions is 'Signed-in devices (sessions neither revoked nor expired).';
comment on column api.admin_users.last_seen_at is 'Last sign-in or token refresh on any device.';
comment on column api.admin_users.created_at is 'When the account was created.';
comment on column api.admin_users.updated_at is 'Last change of the account.';

create function api.admin_grant_role(user_id uuid, role text, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  before_roles text[];
  granted boolean := false;
  failed_constraint text;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('admin.roles.manage', 'rpc/admin_grant_role', admin_grant_role.user_id::text);
  if refusal is not null then return refusal; end if;
  if not exists (select 1 from data.roles r where r.name = admin_grant_role.role) then
    perform private.raise_error(404, 'role_not_found', 'No role has this name.');
  end if;
  if not exists (select 1 from data.users u where u.id = admin_grant_role.user_id) then
    perform private.raise_error(404, 'user_not_found', 'No user has this id.');
  end if;
  before_roles := private.user_role_names(admin_grant_role.user_id);
  begin
    insert into data.user_roles as ur (user_id, role, granted_by)
    values (admin_grant_role.user_id, admin_grant_role.role, private.uid())
    on conflict on constraint user_roles_pkey do nothing;
    granted := found;
  exception when foreign_key_violation then
    get stacked diagnostics failed_constraint = constraint_name;
    if failed_constraint <> 'user_roles_role_fkey' then
      raise;
    end if;
    /* The composite key (role, role_is_system = false) matched no role: the role exists (checked
       above), so it is a system role. Refused by the schema itself; kept as an audited 409. */
    return private.admin_refuse(409, 'system_role', 'System roles cannot be granted to a person.',
                                'security.escalation_attempt', 'user', admin_grant_role.user_id::text,
                                jsonb_build_object('role', admin_grant_role.role),
                                admin_grant_role.reason);
  end;
  return private.role_change_result('user_role.grant', admin_grant_role.user_id, admin_grant_role.role,
                                    granted, before_roles, admin_grant_role.reason);
end
$$;
comment on function api.admin_grant_role(uuid, text, text) is $$Grant a role to a person (permission admin.roles.manage)
Idempotent (changed=false when already held). System roles (parser_bot, worker_bot) are refused with an
audited 409 system_role. Returns {user_id, role, changed, roles, audit_log_id}.$$;

create function api.admin_revoke_role(user_id uuid, role text, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  before_roles text[];
  revoked boolean;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('admin.roles.manage', 'rpc/admin_revoke_role', admin_revoke_role.user_id::text);
  if refusal is not null then return refusal; end if;
  if admin_revoke_role.role = 'super_admin' then
    perform private.lock_super_admins();  -- concurrent removals run one after the other
  end if;
  before_roles := private.user_role_names(admin_revoke_role.user_id);
  delete from data.user_roles ur
   where ur.user_id = admin_revoke_role.user_id and ur.role = admin_revoke_role.role;
  revoked := found;
  if revoked and admin_revoke_role.role = 'super_admin' then
    perform private.refuse_without_super_admin();
  end if;
  return private.role_change_result('user_role.revoke', admin_revoke_role.user_id, admin_revoke_role.role,
                                    revoked, before_roles, admin_revoke_role.reason);
end
$$;
comment on function api.admin_revoke_role(uuid, text, text) is $$Revoke a role from a person (permission admin.roles.manage)
Takes effect on the person's next request. Idempotent (changed=false when not held). The last active
super_admin keeps the role (409 last_super_admin). Returns {user_id, role, changed, roles, audit_log_id}.$$;

-- Audit log ------------------------------------------------------------------------------------

create view api.admin_audit_log with (security_invoker = true) as
select r.id, r.created_at, r.actor_id, r.actor_type, r.action, r.entity_type, r.entity_id, r.before,
       r.after, r.reason, r.ip, r.user_agent, r.count, r.session_id
  from private.admin_audit_log r;
comment on view api.admin_audit_log is $$Audit log (permission audit.view)
Admin changes, ingest publishes, refused attempts and auth events (auth.*: sign-ins, refresh-token
reuse, logouts, password changes and resets, verified addresses), newest first with ?order=id.desc.
Filter e.g. ?entity_type=eq.anime&entity_id=eq.<id>, ?action=eq.security.permission_denied or
?action=like.auth.*. Without audit.view: 403.$$;
comment on column api.admin_audit_log.id is 'Entry id (increasing).';
comment on column api.admin_audit_log.created_at is 'When it happened.';
comment on column api.admin_audit_log.actor_id is 'The person who acted (null for system actors and anonymous callers).';
comment on column api.admin_audit_log.actor_type is 'user, system or anonymous.';
comment on column api.admin_audit_log.action is 'What happened, e.g. anime.update, user_role.grant, security.permission_denied.';
comment on column api.admin_audit_log.entity_type is 'Kind of thing acted on: anime, user, permission, ...';
comment on column api.admin_audit_log.entity_id is 'Its id (for security.permission_denied: the permission that was missing).';
comment on column api.admin_audit_log.before is 'The changed fields before (null on create and refusals).';
comment on column api.admin_audit_log.after is 'The changed fields after; for refusals, what was attempted.';
comment on column api.admin_audit_log.reason is 'Reason given by the actor.';
comment on column api.admin_audit_log.ip is 'Client address reported by the reverse proxy (X-Forwarded-For), when known.';
comment on column api.admin_audit_log.user_agent is 'Client user agent.';
comment on column api.admin_audit_log.count is 'How many times it happened: refusals of one caller for one action within a minute are one entry.';
comment on column api.admin_audit_log.session_id is 'Auth events: the session concerned (opened by a sign-in, revoked, or the caller''s).';
