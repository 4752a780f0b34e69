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
