/* Episode administration (issue 13; docs/admin-api.md "Episodes"), permissions episode.view,
   episode.create, episode.edit, episode.delete, episode.lock, episode.unlock. Same pattern as
   sql/api/admin.sql: the view reads a gated owner-rights view; the RPCs are security definer,
   check the permission first (audited 403), lock the row, refuse what they must (nothing
   changed), write, and audit exactly one row. Helpers: sql/private/admin_episodes.sql. */

create view api.admin_episodes with (security_invoker = true) as
select r.id, r.anime_id, r.anime_title, r.number, r.title, r.aired_at, r.source, r.sources,
       r.players_count, r.edited_fields, r.locked_fields, r.locked_by, r.locked_reason, r.locked_at,
       r.is_deleted, r.deleted_at, r.deleted_by, r.delete_reason, r.created_by, r.updated_by,
       r.created_at, r.updated_at
  from private.admin_episodes r;
comment on view api.admin_episodes is $$Admin episodes (permission episode.view)
Every episode of every title, deleted ones too, with its player links per translation (hidden and locked
ones included). E.g. ?anime_id=eq.<id>&order=number. Without episode.view: 403 permission_denied.$$;
comment on column api.admin_episodes.id is 'Episode id.';
comment on column api.admin_episodes.anime_id is 'The title.';
comment on column api.admin_episodes.anime_title is 'The title''s main title.';
comment on column api.admin_episodes.number is 'Episode number, from 1.';
comment on column api.admin_episodes.title is 'Episode title.';
comment on column api.admin_episodes.aired_at is 'When it aired.';
comment on column api.admin_episodes.source is 'manual, parser or import: who created it.';
comment on column api.admin_episodes.sources is 'Player links: [{translation_id, translation_title, translation_type, quality, player_url, source, locked, locked_by, hidden, hidden_by, updated_by, updated_at}].';
comment on column api.admin_episodes.players_count is 'Player links that are not hidden.';
comment on column api.admin_episodes.edited_fields is 'Fields changed by hand.';
comment on column api.admin_episodes.locked_fields is 'Locked: number, title, aired_at, sources (every link; ingest adds or changes none) or * (the whole row).';
comment on column api.admin_episodes.locked_by is 'Who locked last.';
comment on column api.admin_episodes.locked_reason is 'Why (the last lock).';
comment on column api.admin_episodes.locked_at is 'When; null when nothing is locked.';
comment on column api.admin_episodes.is_deleted is 'Soft-deleted: not public, ingest writes no link to it.';
comment on column api.admin_episodes.deleted_at is 'When it was soft-deleted.';
comment on column api.admin_episodes.deleted_by is 'Who soft-deleted it.';
comment on column api.admin_episodes.delete_reason is 'Why.';
comment on column api.admin_episodes.created_by is 'Who created it by hand (null for ingest).';
comment on column api.admin_episodes.updated_by is 'Who edited it last (null for ingest).';
comment on column api.admin_episodes.created_at is 'When the row was created.';
comment on column api.admin_episodes.updated_at is 'Last change of the row.';

create function api.admin_create_episode(anime_id uuid, number integer, title text default null,
                                         aired_at timestamptz default null, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  created data.episodes;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('episode.create', 'rpc/admin_create_episode', admin_create_episode.anime_id::text);
  if refusal is not null then return refusal; end if;
  perform private.admin_anime_for_update(admin_create_episode.anime_id);
  insert into data.episodes as e (anime_id, number, title, aired_at, source, created_by, updated_by, edited_fields)
  values (admin_create_episode.anime_id, admin_create_episode.number, admin_create_episode.title,
          admin_create_episode.aired_at, 'manual', private.uid(), private.uid(),
          array['number'] || case when admin_create_episode.title is not null then array['title'] else '{}' end
                          || case when admin_create_episode.aired_at is not null then array['aired_at'] else '{}' end)
  on conflict on constraint episodes_anime_number_key do nothing
  returning * into created;
  if created.id is null then
    perform private.raise_error(409, 'episode_exists', 'This title already has an episode with this number.');
  end if;
  return private.admin_episode_result(created.id,
    private.audit('episode.create', 'episode', created.id::text, null, to_jsonb(created), admin_create_episode.reason));
end
$$;
comment on function api.admin_create_episode(uuid, integer, text, timestamptz, text) is $$Create an episode by hand (permission episode.create)
number ≥ 1 (400 23514 otherwise), unique per title (409 episode_exists). The title must exist (404) and not be
deleted (410). source=manual, created_by the caller. Audited. Returns {episode, audit_log_id, warnings}.$$;

create function api.admin_update_episode(id uuid, patch jsonb, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  before_row data.episodes;
  after_row data.episodes;
  requested text[];
  changed text[];
  warnings text[];
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('episode.edit', 'rpc/admin_update_episode', admin_update_episode.id::text);
  if refusal is not null then return refusal; end if;
  if admin_update_episode.patch is null or jsonb_typeof(admin_update_episode.patch) <> 'object'
     or admin_update_episode.patch = '{}'::jsonb then
    perform private.raise_error(400, 'empty_patch', 'patch must be a JSON object with at least one field.');
  end if;
  requested := array(select k from jsonb_object_keys(admin_update_episode.patch) k order by k);
  if not requested <@ private.episode_editable_fields() then
    perform private.raise_error(400, 'unknown_field', 'Only number, title and aired_at of an episode can be edited.',
      hint => 'Player links: rpc/admin_fix_player, rpc/admin_hide_player');
  end if;
  before_row := private.admin_episode_for_update(admin_update_episode.id);
  after_row := jsonb_populate_record(before_row, admin_update_episode.patch);
  changed := array(select k from unnest(requested) k
                    where to_jsonb(before_row) -> k is distinct from to_jsonb(after_row) -> k);
  warnings := private.episode_refuse_locked(before_row, changed);
  if cardinality(changed) = 0 then
    return private.admin_episode_result(before_row.id, null, array['no_changes']);
  end if;
  begin
    update data.episodes e
       set number = after_row.number, title = after_row.title, aired_at = after_row.aired_at,
           updated_by = private.uid(), updated_at = now(),
           edited_fields = array(select distinct f from unnest(e.edited_fields || changed) f order by f)
     where e.id = before_row.id
    returning e.* into after_row;
  exception when unique_violation then
    perform private.raise_error(409, 'episode_exists', 'This title already has an episode with this number.');
  end;
  return private.admin_episode_audited('episode.update', before_row, after_row, changed,
                                       admin_update_episode.reason, warnings);
end
$$;
comment on function api.admin_update_episode(uuid, jsonb, text) is $$Edit an episode (permission episode.edit)
patch keys: number, title, aired_at. Locked fields: 423 field_locked (parser.override_lock overrides); deleted:
410 episode_deleted; a number taken: 409 episode_exists. Audited. Returns {episode, audit_log_id, warnings}.$$;

create function api.admin_lock_episode(id uuid, fields text[] default null, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  target text[] := coalesce(admin_lock_episode.fields, array['*']);
  before_row data.episodes;
  after_row data.episodes;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('episode.lock', 'rpc/admin_lock_episode', admin_lock_episode.id::text);
  if refusal is not null then return refusal; end if;
  if cardinality(target) = 0 or not target <@ (private.episode_lockable_fields() || '*'::text) then
    perform private.raise_error(400, 'unknown_field', 'These fields cannot be locked.',
      hint => 'Lockable: ' || array_to_string(private.episode_lockable_fields(), ', ') || ' (omitted: the whole row)');
  end if;
  before_row := private.admin_episode_for_update(admin_lock_episode.id);
  if target <@ before_row.locked_fields then
    return private.admin_episode_result(before_row.id, null, array['no_changes']);
  end if;
  update data.episodes e
     set locked_fields = array(select distinct f from unnest(e.locked_fields || target) f order by f),
         locked_by = private.uid(), locked_reason = nullif(btrim(admin_lock_episode.reason), ''),
         locked_at = now(), updated_at = now()
   where e.id = before_row.id
  returning e.* into after_row;
  return private.admin_episode_audited('episode.lock', before_row, after_row, array['locked_fields'],
                                       admin_lock_episode.reason);
end
$$;
comment on function api.admin_lock_episode(uuid, text[], text) is $$Lock an episode (permission episode.lock)
fields: number, title, aired_at, sources (every player link: ingest adds and changes none); omitted: the whole
row (*). Audited. Returns {episode, audit_log_id, warnings}.$$;

create function api.admin_unlock_episode(id uuid, fields text[] default null, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  before_row data.episodes;
  after_row data.episodes;
  remaining text[];
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('episode.unlock', 'rpc/admin_unlock_episode', admin_unlock_episode.id::text);
  if refusal is not null then return refusal; end if;
  before_row := private.admin_episode_for_update(admin_unlock_episode.id);
  remaining := case when admin_unlock_episode.fields is null then '{}'::text[]
                    else array(select f from unnest(before_row.locked_fields) f
                                where f <> all (admin_unlock_episode.fields) order by f) end;
  if remaining = before_row.locked_fields then
    return private.admin_episode_result(before_row.id, null, array['no_changes']);
  end if;
  update data.episodes e
     set locked_fields = remaining,
         locked_by = case when cardinality(remaining) = 0 then null else e.locked_by end,
         locked_reason = case when cardinality(remaining) = 0 then null else e.locked_reason end,
         locked_at = case when cardinality(remaining) = 0 then null else e.locked_at end,
         updated_at = now()
   where e.id = before_row.id
  returning e.* into after_row;
  return private.admin_episode_audited('episode.unlock', before_row, after_row, array['locked_fields'],
                                       admin_unlock_episode.reason);
end
$$;
comment on function api.admin_unlock_episode(uuid, text[], text) is $$Unlock an episode (permission episode.unlock)
fields: what to unlock (* is the whole-row lock); omitted: everything. Audited. Returns {episode, audit_log_id, warnings}.$$;

create function api.admin_delete_episode(id uuid, reason text)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  before_row data.episodes;
  after_row data.episodes;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('episode.delete', 'rpc/admin_delete_episode', admin_delete_episode.id::text);
  if refusal is not null then return refusal; end if;
  if coalesce(btrim(admin_delete_episode.reason), '') = '' then
    perform private.raise_error(400, 'reason_required', 'Say why the episode is deleted (reason).');
  end if;
  before_row := private.admin_episode_for_update(admin_delete_episode.id, allow_deleted => true);
  if before_row.deleted_at is not null then
    return private.admin_episode_result(before_row.id, null, array['no_changes']);
  end if;
  perform private.episode_refuse_locked(before_row, array['*']);
  update data.episodes e
     set deleted_at = now(), deleted_by = private.uid(), delete_reason = btrim(admin_delete_episode.reason),
         updated_at = now()
   where e.id = before_row.id
  returning e.* into after_row;
  return private.admin_episode_audited('episode.delete', before_row, after_row,
                                       array['deleted_at', 'deleted_by', 'delete_reason'], admin_delete_episode.reason);
end
$$;
comment on function api.admin_delete_episode(uuid, text) is $$Soft-delete an episode (permission episode.delete)
reason required. It leaves the public catalog at once; ingest writes no link to it. A whole-row lock refuses
it (423). Idempotent (no_changes). Audited. Returns {episode, audit_log_id, warnings}.$$;

create function api.admin_restore_episode(id uuid, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  before_row data.episodes;
  after_row data.episodes;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('episode.delete', 'rpc/admin_restore_episode', admin_restore_episode.id::text);
  if refusal is not null then return refusal; end if;
  before_row := private.admin_episode_for_update(admin_restore_episode.id, allow_deleted => true);
  if before_row.deleted_at is null then
    return private.admin_episode_result(before_row.id, null, array['no_changes']);
  end if;
  update data.episodes e
     set deleted_at = null, deleted_by = null, delete_reason = null, updated_at = now()
   where e.id = before_row.id
  returning e.* into after_row;
  return private.admin_episode_audited('episode.restore', before_row, after_row,
                                       array['deleted_at', 'deleted_by', 'delete_reason'], admin_restore_episode.reason);
end
$$;
comment on function api.admin_restore_episode(uuid, text) is $$Restore a soft-deleted episode (permission episode.delete)
Idempotent (no_changes). Audited. Returns {episode, audit_log_id, warnings}.$$;

-- One player link -------------------------------------------------------------------------------

create function api.admin_fix_player(episode_id uuid, translation_id integer, player_url text,
                                     quality text default null, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  episode data.episodes;
  before_link data.episode_sources;
  after_link data.episode_sources;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('episode.edit', 'rpc/admin_fix_player', admin_fix_player.episode_id::text);
  if refusal is not null then return refusal; end if;
  episode := private.admin_episode_for_update(admin_fix_player.episode_id);
  perform private.episode_refuse_locked(episode, array['sources']);
  if not exists (select 1 from data.translations t where t.id = admin_fix_player.translation_id) then
    perform private.raise_error(404, 'translation_not_found', 'No translation has this id.');
  end if;
  select * into before_link from data.episode_sources s
   where s.episode_id = episode.id and s.translation_id = admin_fix_player.translation_id for update;
  if before_link.locked_at is not null then
    perform private.raise_error(423, 'player_locked', 'This player link is locked.',
      hint => 'rpc/admin_lock_player with locked=false (permission episode.unlock)');
  end if;
  insert into data.episode_sources as s (episode_id, translation_id, quality, player_url, source, updated_by)
  values (episode.id, admin_fix_player.translation_id, admin_fix_player.quality, admin_fix_player.player_url,
          'manual', private.uid())
  on conflict on constraint episode_sources_pkey do update
     set player_url = excluded.player_url, quality = coalesce(excluded.quality, s.quality),
         source = 'manual', updated_by = excluded.updated_by, updated_at = now()
   where (s.player_url, s.quality, s.source) is distinct from
         (excluded.player_url, coalesce(excluded.quality, s.quality), 'manual')
  returning s.* into after_link;
  if after_link.episode_id is null then
    return private.admin_episode_result(episode.id, null, array['no_changes']);
  end if;
  return private.admin_episode_result(episode.id,
    private.audit('episode.player_fix', 'episode', episode.id::text, private.player_audit_doc(before_link),
                  private.player_audit_doc(after_link), admin_fix_player.reason));
end
$$;
comment on function api.admin_fix_player(uuid, integer, text, text, text) is $$Fix (or add) one player link (permission episode.edit)
Sets player_url (https; 400 23514 otherwise) and optionally quality of the episode's link for this translation;
the link becomes source=manual, which ingest never overwrites. 423 field_locked when the episode's links are
locked, 423 player_locked when this link is; 410 on a deleted episode. Audited. Returns {episode, audit_log_id, warnings}.$$;

create function api.admin_hide_player(episode_id uuid, translation_id integer, hidden boolean default true,
                                      reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('episode.edit', 'rpc/admin_hide_player', admin_hide_player.episode_id::text);
  if refusal is not null then return refusal; end if;
  return private.admin_set_player_flag(admin_hide_player.episode_id, admin_hide_player.translation_id, 'hidden',
                                       coalesce(admin_hide_player.hidden, true), admin_hide_player.reason);
end
$$;
comment on function api.admin_hide_player(uuid, integer, boolean, text) is $$Hide (or show again) one player link (permission episode.edit)
A hidden link leaves the public episode_sources at once and stays hidden across syncs. 404 player_not_found,
423 field_locked when the episode's links are locked, 410 on a deleted episode. Audited. Returns {episode, audit_log_id, warnings}.$$;

create function api.admin_lock_player(episode_id uuid, translation_id integer, locked boolean default true,
                                      reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  lock_it boolean := coalesce(admin_lock_player.locked, true);
  refusal jsonb;
begin
  refusal := private.admin_denied_unless(case when lock_it then 'episode.lock' else 'episode.unlock' end,
                                         'rpc/admin_lock_player', admin_lock_player.episode_id::text);
  if refusal is not null then return refusal; end if;
  return private.admin_set_player_flag(admin_lock_player.episode_id, admin_lock_player.translation_id, 'locked',
                                       lock_it, admin_lock_player.reason);
end
$$;
comment on function api.admin_lock_player(uuid, integer, boolean, text) is $$Lock (or unlock) one player link (permission episode.lock; unlocking: episode.unlock)
A locked link is never changed by ingest, and rpc/admin_fix_player refuses it (423 player_locked). 404
player_not_found, 410 on a deleted episode. Audited. Returns {episode, audit_log_id, warnings}.$$;

-- Review queue: links ingest keeps although upstream changed them -------------------------------

create view api.admin_player_conflicts with (security_invoker = true) as
select r.anime_id, r.anime_title, r.episode_id, r.number, r.translation_id, r.translation_title,
       r.catalog_url, r.upstream_url, r.catalog_quality, r.upstream_quality, r.kept_because,
       r.updated_by, r.updated_at, r.fetched_at
  from private.admin_player_conflicts r;
comment on view api.admin_player_conflicts is $$Conflicting player links (permission episode.view)
Links whose latest upstream version differs from the catalog's while ingest keeps the catalog's: fixed by hand,
locked, or on an episode whose links are locked. Resolve with rpc/admin_accept_upstream_player (or keep).$$;
comment on column api.admin_player_conflicts.anime_id is 'The title.';
comment on column api.admin_player_conflicts.anime_title is 'Its main title.';
comment on column api.admin_player_conflicts.episode_id is 'The episode.';
comment on column api.admin_player_conflicts.number is 'Episode number.';
comment on column api.admin_player_conflicts.translation_id is 'Kodik translation.';
comment on column api.admin_player_conflicts.translation_title is 'Its name.';
comment on column api.admin_player_conflicts.catalog_url is 'The link as the catalog serves it.';
comment on column api.admin_player_conflicts.upstream_url is 'The link upstream says now.';
comment on column api.admin_player_conflicts.catalog_quality is 'Quality in the catalog.';
comment on column api.admin_player_conflicts.upstream_quality is 'Quality upstream says.';
comment on column api.admin_player_conflicts.kept_because is 'fixed_by_hand, link_locked or episode_locked.';
comment on column api.admin_player_conflicts.updated_by is 'Who changed the catalog link last.';
comment on column api.admin_player_conflicts.updated_at is 'When.';
comment on column api.admin_player_conflicts.fetched_at is 'When upstream was read.';

create function api.admin_accept_upstream_player(episode_id uuid, translation_id integer, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  episode data.episodes;
  conflict private.admin_player_conflicts_all;
  before_link data.episode_sources;
  after_link data.episode_sources;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('episode.edit', 'rpc/admin_accept_upstream_player',
                                         admin_accept_upstream_player.episode_id::text);
  if refusal is not null then return refusal; end if;
  episode := private.admin_episode_for_update(admin_accept_upstream_player.episode_id);
  perform private.episode_refuse_locked(episode, array['sources']);
  before_link := private.admin_player_for_update(episode.id, admin_accept_upstream_player.translation_id);
  if before_link.locked_at is not null then
    perform private.raise_error(423, 'player_locked', 'This player link is locked.',
      hint => 'rpc/admin_lock_player with locked=false (permission episode.unlock)');
  end if;
  select * into conflict from private.admin_player_conflicts_all c
   where c.episode_id = episode.id and c.translation_id = before_link.translation_id;
  if conflict.episode_id is null then
    perform private.raise_error(404, 'conflict_not_found', 'Upstream agrees with this link (or has none for it).');
  end if;
  -- the link is ingest's again: this value now, later syncs' values from then on
  update data.episode_sources s
     set player_url = conflict.upstream_url, quality = conflict.upstream_quality, source = 'parser',
         updated_by = private.uid(), updated_at = now()
   where s.episode_id = episode.id and s.translation_id = before_link.translation_id
  returning s.* into after_link;
  return private.admin_episode_result(episode.id,
    private.audit('episode.player_accept_upstream', 'episode', episode.id::text, private.player_audit_doc(before_link),
                  private.player_audit_doc(after_link), admin_accept_upstream_player.reason));
end
$$;
comment on function api.admin_accept_upstream_player(uuid, integer, text) is $$Resolve a conflict in favour of upstream (permission episode.edit)
Writes upstream's link and quality and hands the link back to ingest (source=parser). 404 conflict_not_found,
423 field_locked / player_locked (unlock first), 410 on a deleted episode. Audited. Returns {episode, audit_log_id, warnings}.$$;
