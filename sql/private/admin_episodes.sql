/* Episode administration helpers (issue 13; docs/admin-api.md "Episodes"): the editable fields,
   locks, the gated row source behind api.admin_episodes, and the answer of every episode RPC.
   Same pattern as sql/private/admin.sql, whose helpers (admin_gate, admin_denied_unless, audit,
   jsonb_pick) are reused.

   Locks: data.episodes.locked_fields names episode fields, `sources` (every player link of the
   episode) or `*` (the whole row: nothing may change, ingest adds no link). One link is locked
   on data.episode_sources (locked_at). Ingest keeps `sources`/`*`-locked episodes' links, locked
   links and links fixed by hand (source = manual): ingest.publish_players. */

-- Fields of an episode an editor may set (keys of admin_update_episode's patch).
create or replace function private.episode_editable_fields() returns text[]
language sql immutable parallel safe set search_path = '' as $$
  select array['number', 'title', 'aired_at']
$$;

-- What a lock may name: those fields and `sources` (all player links); no names = `*`.
create or replace function private.episode_lockable_fields() returns text[]
language sql immutable parallel safe set search_path = '' as $$
  select private.episode_editable_fields() || 'sources'::text
$$;

-- Is this field (or, for `sources`, every link) of an episode locked?
create or replace function private.episode_field_locked(locked_fields text[], field text) returns boolean
language sql immutable parallel safe set search_path = '' as $$
  select field = any (locked_fields) or '*' = any (locked_fields)
$$;

-- The admin view of episodes (every one, deleted too) with their player links per translation,
-- ungated: read by the RPCs' answers, and by private.admin_episodes (gated). No grant.
create or replace view private.admin_episodes_all as
select e.id, e.anime_id, a.title as anime_title, e.number, e.title, e.aired_at, e.source,
       coalesce((select jsonb_agg(jsonb_build_object(
                  'translation_id', s.translation_id, 'translation_title', t.title,
                  'translation_type', t.type, 'quality', s.quality, 'player_url', s.player_url,
                  'source', s.source, 'locked', s.locked_at is not null, 'locked_by', s.locked_by,
                  'hidden', s.hidden_at is not null, 'hidden_by', s.hidden_by,
                  'updated_by', s.updated_by, 'updated_at', s.updated_at) order by s.translation_id)
                   from data.episode_sources s join data.translations t on t.id = s.translation_id
                  where s.episode_id = e.id), '[]'::jsonb) as sources,
       (select count(*)::integer from data.episode_sources s
         where s.episode_id = e.id and s.hidden_at is null) as players_count,
       e.edited_fields, e.locked_fields, e.locked_by, e.locked_reason, e.locked_at,
       e.deleted_at is not null as is_deleted, e.deleted_at, e.deleted_by, e.delete_reason,
       e.created_by, e.updated_by, e.created_at, e.updated_at
  from data.episodes e
  join data.anime a on a.id = e.anime_id;

create or replace view private.admin_episodes as
select r.* from private.admin_episodes_all r where private.admin_gate('episode.view');

-- {episode, audit_log_id, warnings}: the answer of every episode RPC.
create or replace function private.admin_episode_result(episode_id uuid, audit_log_id bigint,
                                                        warnings text[] default '{}')
returns jsonb
language sql stable set search_path = '' as $$
  select jsonb_build_object('episode', (select to_jsonb(r) from private.admin_episodes_all r
                                         where r.id = admin_episode_result.episode_id),
                            'audit_log_id', admin_episode_result.audit_log_id,
                            'warnings', to_jsonb(admin_episode_result.warnings))
$$;

-- A changed episode: one audit row with before/after of `fields`, then the RPC's answer.
create or replace function private.admin_episode_audited(action text, before_row data.episodes, after_row data.episodes,
                                                         fields text[], reason text, warnings text[] default '{}')
returns jsonb
language sql volatile set search_path = '' as $$
  select private.admin_episode_result(before_row.id,
           private.audit(action, 'episode', before_row.id::text, private.jsonb_pick(to_jsonb(before_row), fields),
                         private.jsonb_pick(to_jsonb(after_row), fields), reason),
           warnings)
$$;

-- The episode to change, locked for this transaction: 404 when unknown, 410 when soft-deleted.
create or replace function private.admin_episode_for_update(episode_id uuid, allow_deleted boolean default false)
returns data.episodes
language plpgsql volatile set search_path = '' as $$
declare
  target data.episodes;
begin
  select * into target from data.episodes e where e.id = admin_episode_for_update.episode_id for update;
  perform private.refuse_gone('episode', target.id, target.deleted_at, admin_episode_for_update.allow_deleted);
  return target;
end
$$;

-- 423 when any of these fields of the episode is locked (unless the caller may override locks).
create or replace function private.episode_refuse_locked(target data.episodes, fields text[]) returns text[]
language plpgsql stable set search_path = '' as $$
declare
  locked text[] := array(select f from unnest(fields) f where private.episode_field_locked(target.locked_fields, f));
begin
  if cardinality(locked) = 0 then
    return '{}';
  end if;
  if private.has_permission('parser.override_lock') then
    return array['lock_overridden'];
  end if;
  perform private.raise_error(423, 'field_locked',
    format('These fields of the episode are locked: %s.', array_to_string(locked, ', ')),
    details => array_to_string(locked, ','),
    hint => 'Unlock them first with rpc/admin_unlock_episode (permission episode.unlock).');
  return '{}';
end
$$;

-- One player link of a live episode, locked for this transaction (404 link_not_found).
create or replace function private.admin_player_for_update(episode_id uuid, translation_id integer)
returns data.episode_sources
language plpgsql volatile set search_path = '' as $$
declare
  link data.episode_sources;
begin
  select * into link from data.episode_sources s
   where s.episode_id = admin_player_for_update.episode_id
     and s.translation_id = admin_player_for_update.translation_id
     for update;
  if not found then
    perform private.raise_error(404, 'player_not_found', 'This episode has no player of this translation.');
  end if;
  return link;
end
$$;

-- A player link as the audit log shows it.
create or replace function private.player_audit_doc(link data.episode_sources) returns jsonb
language sql immutable set search_path = '' as $$
  select case when link.episode_id is not null then
    jsonb_build_object('translation_id', link.translation_id, 'player_url', link.player_url,
                       'quality', link.quality, 'source', link.source,
                       'locked', link.locked_at is not null, 'hidden', link.hidden_at is not null) end
$$;

/* Hide / show or lock / unlock one player link of a live episode (the body of
   api.admin_hide_player and api.admin_lock_player, after their permission check). Hiding is an
   edit of the episode's links, so a `sources` / `*` lock refuses it (423); locking is not.
   Audited episode.player_hide / _show / _lock / _unlock; {episode, audit_log_id, warnings}. */
create or replace function private.admin_set_player_flag(episode_id uuid, translation_id integer, flag text,
                                                         value boolean, reason text)
returns jsonb
language plpgsql volatile set search_path = '' as $$
declare
  episode data.episodes := private.admin_episode_for_update(admin_set_player_flag.episode_id);
  before_link data.episode_sources;
  after_link data.episode_sources;
begin
  if flag = 'hidden' then
    perform private.episode_refuse_locked(episode, array['sources']);
  end if;
  before_link := private.admin_player_for_update(episode.id, admin_set_player_flag.translation_id);
  if (case flag when 'hidden' then before_link.hidden_at else before_link.locked_at end is not null) = value then
    return private.admin_episode_result(episode.id, null, array['no_changes']);
  end if;
  update data.episode_sources s
     set hidden_at = case when flag = 'hidden' then case when value then now() end else s.hidden_at end,
         hidden_by = case when flag = 'hidden' then case when value then private.uid() end else s.hidden_by end,
         locked_at = case when flag = 'locked' then case when value then now() end else s.locked_at end,
         locked_by = case when flag = 'locked' then case when value then private.uid() end else s.locked_by end,
         updated_by = case when flag = 'hidden' then private.uid() else s.updated_by end,
         updated_at = case when flag = 'hidden' then now() else s.updated_at end
   where s.episode_id = episode.id and s.translation_id = before_link.translation_id
  returning s.* into after_link;
  return private.admin_episode_result(episode.id,
    private.audit('episode.player_' || case when flag = 'hidden' then case when value then 'hide' else 'show' end
                                            else case when value then 'lock' else 'unlock' end end,
                  'episode', episode.id::text, private.player_audit_doc(before_link),
                  private.player_audit_doc(after_link), admin_set_player_flag.reason));
end
$$;

/* The review queue of conflicting player links: upstream (the latest staged Kodik data) says
   something else than the catalog for a link ingest keeps — fixed by hand, locked, or on an
   episode whose links are locked. Ungated source; private.admin_player_conflicts is gated. */
create or replace view private.admin_player_conflicts_all as
select e.anime_id, a.title as anime_title, e.id as episode_id, e.number, se.translation_id,
       se.translation_title, s.player_url as catalog_url, x.url as upstream_url,
       s.quality as catalog_quality, se.quality as upstream_quality,
       case when '*' = any (e.locked_fields) or 'sources' = any (e.locked_fields) then 'episode_locked'
            when s.locked_at is not null then 'link_locked'
            else 'fixed_by_hand' end as kept_because,
       s.updated_by, s.updated_at, se.fetched_at
  from data.staging_episodes se
  join data.anime a on a.id = coalesce((select sa.anime_id from data.staging_anime sa where sa.shikimori_id = se.shikimori_id),
                                       (select c.id from data.anime c where c.shikimori_id = se.shikimori_id))
 cross join jsonb_each_text(se.episodes) x(num, url)
  join data.episodes e on e.anime_id = a.id and e.number = x.num::integer
  join data.episode_sources s on s.episode_id = e.id and s.translation_id = se.translation_id
 where e.deleted_at is null
   and (s.player_url, s.quality) is distinct from (x.url, se.quality)
   and (s.source = 'manual' or s.locked_at is not null
        or '*' = any (e.locked_fields) or 'sources' = any (e.locked_fields));

create or replace view private.admin_player_conflicts as
select r.* from private.admin_player_conflicts_all r where private.admin_gate('episode.view');
