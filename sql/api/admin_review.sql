/* Ingest review tools and genre editing (issue 13; docs/admin-api.md "Ingest review").
   Helpers: sql/private/admin_review.sql. */

create view api.admin_publish_preview with (security_invoker = true) as
select r.shikimori_id, r.anime_id, r.action, r.title, r.changes, r.kept_fields, r.run_id, r.fetched_at
  from private.admin_publish_preview r;
comment on view api.admin_publish_preview is $$What the next publish would write (permission admin.parser.settings)
One row per staged title waiting for a publish: insert (a new title) or update, with a field-by-field diff
between staging and the catalog. Nothing is written; rpc/admin_publish publishes.$$;
comment on column api.admin_publish_preview.shikimori_id is 'The staged title.';
comment on column api.admin_publish_preview.anime_id is 'The catalog title it would update; null for a new one.';
comment on column api.admin_publish_preview.action is 'insert or update.';
comment on column api.admin_publish_preview.title is 'The catalog title (or the staged one when new).';
comment on column api.admin_publish_preview.changes is '{field: {from, to}} for every content field the publish would change.';
comment on column api.admin_publish_preview.kept_fields is 'Fields that differ but stay as they are: edited or locked by hand.';
comment on column api.admin_publish_preview.run_id is 'The sync run that staged it (a run still in progress holds it back).';
comment on column api.admin_publish_preview.fetched_at is 'When it was fetched.';

create view api.admin_genres with (security_invoker = true) as
select r.id, r.name, r.name_ru, r.titles from private.admin_genres r;
comment on view api.admin_genres is $$Genres (permission anime.view), for rpc/admin_set_anime_genres$$;
comment on column api.admin_genres.id is 'Genre id (Shikimori''s).';
comment on column api.admin_genres.name is 'Name.';
comment on column api.admin_genres.name_ru is 'Russian name.';
comment on column api.admin_genres.titles is 'Titles carrying it.';

create function api.admin_set_anime_genres(id uuid, genre_ids integer[], reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  target data.anime;
  wanted integer[] := array(select distinct g from unnest(admin_set_anime_genres.genre_ids) g order by g);
  before_names text[];
  unknown integer[];
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('anime.edit', 'rpc/admin_set_anime_genres', admin_set_anime_genres.id::text);
  if refusal is not null then return refusal; end if;
  if admin_set_anime_genres.genre_ids is null then
    perform private.raise_error(400, 'empty_patch', 'genre_ids must be an array (empty: no genre).');
  end if;
  unknown := array(select g from unnest(wanted) g where not exists (select 1 from data.genres x where x.id = g));
  if cardinality(unknown) > 0 then
    perform private.raise_error(404, 'genre_not_found', format('No genre has the id %s.', array_to_string(unknown, ', ')));
  end if;
  target := private.admin_anime_for_update(admin_set_anime_genres.id);
  if 'genres' = any (target.locked_fields) or '*' = any (target.locked_fields) then
    perform private.raise_error(423, 'field_locked', 'The genres of this title are locked.', details => 'genres');
  end if;
  before_names := target.genres;
  if wanted = array(select ag.genre_id from data.anime_genres ag where ag.anime_id = target.id order by ag.genre_id) then
    return private.admin_anime_result(target.id, null, array['no_changes']);
  end if;
  delete from data.anime_genres ag where ag.anime_id = target.id and ag.genre_id <> all (wanted);
  insert into data.anime_genres (anime_id, genre_id) select target.id, g from unnest(wanted) g on conflict do nothing;
  -- like any hand edit: ingest keeps the genres from now on (ingest.keeps(..., 'genres'))
  update data.anime a
     set source = 'manual', updated_by = private.uid(),
         edited_fields = array(select distinct f from unnest(a.edited_fields || 'genres'::text) f order by f)
   where a.id = target.id;
  return private.admin_anime_result(target.id,
    private.audit('anime.genres', 'anime', target.id::text, jsonb_build_object('genres', before_names),
                  jsonb_build_object('genres', (select a.genres from data.anime a where a.id = target.id)),
                  admin_set_anime_genres.reason));
end
$$;
comment on function api.admin_set_anime_genres(uuid, integer[], text) is $$Set a title's genres (permission anime.edit)
genre_ids: the complete list (ids from admin_genres; 404 genre_not_found). The title's genres become edited by
hand, so ingest keeps them. 410 on a deleted title. Audited (anime.genres). Returns {anime, audit_log_id, warnings}.$$;

create view api.admin_upstream_limits with (security_invoker = true) as
select r.upstream, r.enabled, r.per_second, r.per_minute, r.window_scale, r.margin_ms, r.requests_last_minute
  from private.admin_upstream_limits r;
comment on view api.admin_upstream_limits is $$Request limits per upstream and their enable switch (permission admin.parser.settings)
Shared by every worker (ingest.acquire_slot). A disabled upstream refuses every request: its syncs fail with
<upstream>_disabled.$$;
comment on column api.admin_upstream_limits.upstream is 'shikimori or kodik.';
comment on column api.admin_upstream_limits.enabled is 'False: ingest sends this upstream nothing.';
comment on column api.admin_upstream_limits.per_second is 'Requests in any 1 s window; null = unlimited.';
comment on column api.admin_upstream_limits.per_minute is 'Requests in any 60 s window; null = unlimited.';
comment on column api.admin_upstream_limits.window_scale is 'Window length factor (tests shorten windows).';
comment on column api.admin_upstream_limits.margin_ms is 'Safety margin added to each window.';
comment on column api.admin_upstream_limits.requests_last_minute is 'Requests granted in the last minute, by every worker.';

create function api.admin_set_upstream_limits(upstream text, patch jsonb, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  before_row data.upstream_limits;
  after_row data.upstream_limits;
  ceiling record;
  changed text[];
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('admin.parser.settings', 'rpc/admin_set_upstream_limits', admin_set_upstream_limits.upstream);
  if refusal is not null then return refusal; end if;
  if admin_set_upstream_limits.patch is null or jsonb_typeof(admin_set_upstream_limits.patch) <> 'object'
     or admin_set_upstream_limits.patch = '{}'::jsonb then
    perform private.raise_error(400, 'empty_patch', 'patch must be a JSON object with at least one key.');
  end if;
  if not array(select jsonb_object_keys(admin_set_upstream_limits.patch)) <@ array['enabled', 'per_second', 'per_minute'] then
    perform private.raise_error(400, 'unknown_setting', 'Only enabled, per_second and per_minute can be changed.');
  end if;
  select * into before_row from data.upstream_limits l where l.upstream = admin_set_upstream_limits.upstream for update;
  if before_row.upstream is null then
    perform private.raise_error(404, 'upstream_not_found', 'No upstream has this name.');
  end if;
  after_row := jsonb_populate_record(before_row, admin_set_upstream_limits.patch);
  ceiling := private.upstream_ceiling(before_row.upstream);
  if coalesce(after_row.per_second > ceiling.per_second or after_row.per_minute > ceiling.per_minute
              or (ceiling.per_second is not null and (after_row.per_second is null or after_row.per_minute is null)), false) then
    perform private.raise_error(400, 'limit_above_upstream',
      format('%s allows at most %s requests per second and %s per minute.', before_row.upstream,
             ceiling.per_second, ceiling.per_minute));
  end if;
  changed := array(select k from jsonb_object_keys(admin_set_upstream_limits.patch) k
                    where to_jsonb(before_row) -> k is distinct from to_jsonb(after_row) -> k order by k);
  if cardinality(changed) = 0 then
    return jsonb_build_object('limits', to_jsonb(before_row), 'audit_log_id', null, 'warnings', jsonb_build_array('no_changes'));
  end if;
  update data.upstream_limits l
     set enabled = after_row.enabled, per_second = after_row.per_second, per_minute = after_row.per_minute
   where l.upstream = before_row.upstream
  returning * into after_row;
  return jsonb_build_object('limits', to_jsonb(after_row),
    'audit_log_id', private.audit('ingest.limits_update', 'upstream', before_row.upstream,
                                  private.jsonb_pick(to_jsonb(before_row), changed),
                                  private.jsonb_pick(to_jsonb(after_row), changed), admin_set_upstream_limits.reason),
    'warnings', '[]'::jsonb);
end
$$;
comment on function api.admin_set_upstream_limits(text, jsonb, text) is $$Change an upstream's limits or switch it off (permission admin.parser.settings)
patch keys: enabled, per_second, per_minute (positive, or null = unlimited; 400 23514). Shikimori's limits cannot
exceed what it tolerates (5/s, 90/min; 400 limit_above_upstream). Effective on the next request of every worker.
Audited (ingest.limits_update). Returns {limits, audit_log_id, warnings}.$$;

-- Merging a duplicate ----------------------------------------------------------------------------

create function api.admin_merge_anime(duplicate_id uuid, target_id uuid, reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  dup data.anime;
  target data.anime;
  moved jsonb := '{}';
  n integer;
  audit_id bigint;
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('anime.delete', 'rpc/admin_merge_anime', admin_merge_anime.duplicate_id::text);
  if refusal is not null then return refusal; end if;
  if admin_merge_anime.duplicate_id = admin_merge_anime.target_id then
    perform private.raise_error(409, 'merge_same_title', 'A title cannot be merged into itself.');
  end if;
  -- both rows locked, in id order (two merges of the same pair cannot deadlock)
  perform 1 from data.anime a where a.id in (admin_merge_anime.duplicate_id, admin_merge_anime.target_id)
    order by a.id for update;
  select * into dup from data.anime a where a.id = admin_merge_anime.duplicate_id;
  select * into target from data.anime a where a.id = admin_merge_anime.target_id;
  if dup.id is null or target.id is null then
    perform private.raise_error(404, 'anime_not_found', 'No title has this id.',
                                details => case when dup.id is null then 'duplicate_id' else 'target_id' end);
  end if;
  if target.deleted_at is not null then
    perform private.raise_error(410, 'merge_target_deleted', 'The title to merge into is deleted; restore it first.',
                                hint => 'rpc/admin_restore_anime');
  end if;
  if dup.deleted_at is not null then
    perform private.raise_error(410, 'anime_deleted', 'The duplicate is deleted already; restore it to merge it.',
                                details => 'duplicate_id', hint => 'rpc/admin_restore_anime');
  end if;
  if dup.shikimori_id is not null and target.shikimori_id is not null and dup.shikimori_id <> target.shikimori_id then
    perform private.raise_error(409, 'shikimori_id_conflict',
      format('Both titles carry a shikimori_id (%s and %s): they are different upstream titles.',
             dup.shikimori_id, target.shikimori_id));
  end if;
  -- each linked to its own staged upstream title (a match not published yet): the same
  if exists (select 1 from data.staging_anime sa where sa.anime_id = target.id)
     and exists (select 1 from data.staging_anime sa where sa.anime_id = dup.id) then
    perform private.raise_error(409, 'shikimori_id_conflict',
      'Both titles are matched to a staged upstream title: they are different upstream titles.',
      hint => 'rpc/admin_unmatch one of them first');
  end if;

  -- the upstream identity moves to the target (first off the duplicate: anime_shikimori_id_key)
  if dup.shikimori_id is not null then
    update data.anime a set shikimori_id = null where a.id = dup.id;
    update data.anime a set shikimori_id = dup.shikimori_id, updated_by = private.uid() where a.id = target.id;
  end if;
  -- staged upstream rows now publish into the target (a manual link, like rpc/admin_match)
  update data.staging_anime sa set anime_id = target.id, matched_by = 'manual', published_hash = null
   where sa.anime_id = dup.id;
  get diagnostics n = row_count;
  moved := moved || jsonb_build_object('staging', n);

  -- episodes the target lacks move whole; for a number both have, the duplicate's links of a
  -- translation the target's episode lacks move onto it (not onto a deleted episode or one
  -- whose links are locked); what is left stays with the deleted duplicate
  update data.episodes e set anime_id = target.id
   where e.anime_id = dup.id
     and not exists (select 1 from data.episodes t where t.anime_id = target.id and t.number = e.number);
  get diagnostics n = row_count;
  moved := moved || jsonb_build_object('episodes', n);
  update data.episode_sources es set episode_id = t.id
    from data.episodes d join data.episodes t on t.anime_id = target.id and t.number = d.number
   where es.episode_id = d.id and d.anime_id = dup.id
     and t.deleted_at is null and not ('sources' = any (t.locked_fields) or '*' = any (t.locked_fields))
     and not exists (select 1 from data.episode_sources x where x.episode_id = t.id and x.translation_id = es.translation_id);
  get diagnostics n = row_count;
  moved := moved || jsonb_build_object('players', n);

  -- favorites: one per person and title (keyed: moved as delete + insert); a person holding
  -- both keeps the target's row, with the larger episodes_watched and a score where it had none
  with gone as (
    delete from data.favorites f where f.anime_id = dup.id returning f.*
  ), kept as (
    insert into data.favorites as f (user_id, anime_id, list_status, created_at, updated_at, score, episodes_watched)
    select g.user_id, target.id, g.list_status, g.created_at, g.updated_at, g.score,
           least(g.episodes_watched, coalesce(target.episodes_total, g.episodes_watched))
      from gone g
    on conflict (user_id, anime_id) do update
       set episodes_watched = greatest(f.episodes_watched, excluded.episodes_watched),
           score = coalesce(f.score, excluded.score), created_at = least(f.created_at, excluded.created_at)
    returning (xmax = 0) as inserted
  )
  select moved || jsonb_build_object('favorites', count(*) filter (where inserted),
                                     'favorites_collapsed', count(*) filter (where not inserted))
    into moved from kept;

  -- progress: one per person and title; the later one wins
  with gone as (
    delete from data.watch_progress p where p.anime_id = dup.id returning p.*
  ), kept as (
    insert into data.watch_progress as p (user_id, anime_id, episode_number, episode_id, position_seconds,
                                          progress_percent, translation_id, last_watched_at, updated_at)
    select g.user_id, target.id, g.episode_number,
           (select e.id from data.episodes e where e.anime_id = target.id and e.number = g.episode_number),
           g.position_seconds, g.progress_percent, g.translation_id, g.last_watched_at, g.updated_at
      from gone g
    on conflict (user_id, anime_id) do update
       set episode_number = excluded.episode_number, episode_id = excluded.episode_id,
           position_seconds = excluded.position_seconds, progress_percent = excluded.progress_percent,
           translation_id = excluded.translation_id, last_watched_at = excluded.last_watched_at
     where excluded.last_watched_at > p.last_watched_at
    returning 1
  )
  select moved || jsonb_build_object('progress', count(*)) into moved from kept;
  with gone as (
    delete from data.watch_history h where h.anime_id = dup.id returning h.*
  ), kept as (
    insert into data.watch_history as h (user_id, anime_id, episode_number, position_seconds, progress_percent, watched_at)
    select g.user_id, target.id, g.episode_number, g.position_seconds, g.progress_percent, g.watched_at from gone g
    on conflict (user_id, anime_id, episode_number) do update
       set position_seconds = excluded.position_seconds, progress_percent = excluded.progress_percent,
           watched_at = excluded.watched_at
     where excluded.watched_at > h.watched_at
    returning 1
  )
  select moved || jsonb_build_object('history', count(*)) into moved from kept;

  -- relations and airings the target lacks
  update data.anime_relations r set anime_id = target.id
   where r.anime_id = dup.id
     and not exists (select 1 from data.anime_relations x where x.anime_id = target.id
                                                           and x.related_shikimori_id = r.related_shikimori_id);
  get diagnostics n = row_count;
  moved := moved || jsonb_build_object('relations', n);
  update data.schedule s set anime_id = target.id
   where s.anime_id = dup.id
     and not exists (select 1 from data.schedule x where x.anime_id = target.id and x.episode_number = s.episode_number);
  get diagnostics n = row_count;
  moved := moved || jsonb_build_object('schedule', n);

  update data.anime a
     set deleted_at = now(), deleted_by = private.uid(),
         delete_reason = left(format('merged into %s%s', target.id, ': ' || nullif(btrim(admin_merge_anime.reason), '')), 500)
   where a.id = dup.id;
  audit_id := private.audit('anime.merge', 'anime', target.id::text,
                            jsonb_build_object('duplicate_id', dup.id, 'duplicate_shikimori_id', dup.shikimori_id,
                                               'shikimori_id', target.shikimori_id),
                            jsonb_build_object('duplicate_id', dup.id, 'shikimori_id', coalesce(target.shikimori_id, dup.shikimori_id),
                                               'moved', moved),
                            admin_merge_anime.reason);
  return private.admin_anime_result(target.id, audit_id) || jsonb_build_object('merged', moved);
end
$$;
comment on function api.admin_merge_anime(uuid, uuid, text) is $$Merge a duplicate title into another (permission anime.delete)
For an auto-created duplicate of a title made by hand: in one transaction the target takes the duplicate's
shikimori_id and staged upstream rows (so ingest updates the target from now on), its episodes, player links,
favorites, watch progress and history, relations and airings where the target has none of its own (a person's
favorite or progress on both collapses into one), and the duplicate is soft-deleted. 409 merge_same_title,
404 anime_not_found, 410 merge_target_deleted / anime_deleted (the duplicate), 409 shikimori_id_conflict (both
carry, or are matched to, different upstream titles). Audited once (anime.merge, entity the target, after.moved = the counts).
Returns {anime: the target, merged, audit_log_id, warnings}.$$;

-- Player priorities --------------------------------------------------------------------------------

create view api.admin_player_priorities with (security_invoker = true) as
select r.kind, r.key, r.title, r.translation_type, r.priority, r.updated_by, r.updated_at
  from private.admin_player_priorities r;
comment on view api.admin_player_priorities is $$Which player an episode offers first (permission admin.parser.settings)
The old parser's translation and quality priorities: one row per ranked translation and quality, 1 first
(`order=kind,priority`). Change them with rpc/admin_set_player_priorities; the public episode_sources carry the
result (preference, preferred).$$;
comment on column api.admin_player_priorities.kind is 'translation or quality.';
comment on column api.admin_player_priorities.key is 'The translation id, or the quality (e.g. 1080p).';
comment on column api.admin_player_priorities.title is 'The translation''s name, or the quality.';
comment on column api.admin_player_priorities.translation_type is 'voice or subtitles (translations only).';
comment on column api.admin_player_priorities.priority is '1 = offered first; unlisted ones come after every listed one.';
comment on column api.admin_player_priorities.updated_by is 'Who set it.';
comment on column api.admin_player_priorities.updated_at is 'When.';

create function api.admin_set_player_priorities(translations integer[] default null, qualities text[] default null,
                                                reason text default null)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  before_doc jsonb;
  after_doc jsonb;
  wanted_qualities text[] := array(select lower(btrim(q)) from unnest(admin_set_player_priorities.qualities) q);
  unknown integer[];
  refusal jsonb;
begin
  refusal := private.admin_denied_unless('admin.parser.settings', 'rpc/admin_set_player_priorities', null);
  if refusal is not null then return refusal; end if;
  if admin_set_player_priorities.translations is null and admin_set_player_priorities.qualities is null then
    perform private.raise_error(400, 'empty_patch', 'Give translations, qualities or both (each the complete list, first = preferred).');
  end if;
  if cardinality(admin_set_player_priorities.translations) > 1000 or cardinality(wanted_qualities) > 1000 then
    perform private.raise_error(400, 'too_many_priorities', 'At most 1000 entries per list.');
  end if;
  if exists (select 1 from unnest(admin_set_player_priorities.translations) t group by t having count(*) > 1 or t is null)
     or exists (select 1 from unnest(wanted_qualities) q group by q having count(*) > 1 or q is null) then
    perform private.raise_error(400, 'duplicate_priority', 'Each translation and each quality may be listed once.');
  end if;
  if exists (select 1 from unnest(wanted_qualities) q where q !~ '^[a-z0-9][a-z0-9 ._-]{0,39}$') then
    perform private.raise_error(400, 'invalid_quality', 'A quality is 1 to 40 letters, digits, spaces, dots, dashes (e.g. 1080p).');
  end if;
  unknown := array(select t from unnest(admin_set_player_priorities.translations) t
                    where not exists (select 1 from data.translations x where x.id = t) order by t);
  if cardinality(unknown) > 0 then
    perform private.raise_error(404, 'translation_not_found',
      format('No translation has the id %s.', array_to_string(unknown, ', ')));
  end if;
  -- one editor at a time: the lists are replaced whole
  perform pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('kitsu.player_priorities'));
  before_doc := private.player_priorities_json();
  after_doc := jsonb_build_object(
    'translations', coalesce(to_jsonb(admin_set_player_priorities.translations), before_doc -> 'translations'),
    'qualities', case when admin_set_player_priorities.qualities is null then before_doc -> 'qualities'
                      else to_jsonb(wanted_qualities) end);
  if after_doc = before_doc then
    return jsonb_build_object('priorities', before_doc, 'audit_log_id', null,
                              'warnings', jsonb_build_array('no_changes'));
  end if;
  if after_doc -> 'translations' <> before_doc -> 'translations' then
    delete from data.translation_priorities;
    insert into data.translation_priorities (translation_id, priority, updated_by)
    select t.id, t.n, private.uid() from unnest(admin_set_player_priorities.translations) with ordinality t(id, n);
  end if;
  if after_doc -> 'qualities' <> before_doc -> 'qualities' then
    delete from data.quality_priorities;
    insert into data.quality_priorities (quality, priority, updated_by)
    select q.quality, q.n, private.uid() from unnest(wanted_qualities) with ordinality q(quality, n);
  end if;
  return jsonb_build_object('priorities', private.player_priorities_json(),
    'audit_log_id', private.audit('ingest.priorities_update', 'player_priorities', null, before_doc, after_doc,
                                  admin_set_player_priorities.reason),
    'warnings', '[]'::jsonb);
end
$$;
comment on function api.admin_set_player_priorities(integer[], text[], text) is $$Set which player an episode offers first (permission admin.parser.settings)
translations: Kodik translation ids, most preferred first; qualities: e.g. ["1080p", "720p"], most preferred first
(a player's quality counts by its resolution: "BDRip 1080p" is 1080p). Each given list replaces the old one
whole (an empty list clears it); an omitted one stays. Players are ordered by translation, then quality
(api.episode_sources preference / preferred). 400 empty_patch, duplicate_priority, invalid_quality,
too_many_priorities; 404 translation_not_found. Audited (ingest.priorities_update, before/after both lists).
Returns {priorities, audit_log_id, warnings}.$$;
