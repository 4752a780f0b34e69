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
