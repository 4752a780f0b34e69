/* Ingest review helpers (issue 13; docs/admin-api.md "Ingest review"): the publish preview, a
   field-by-field diff between what is staged and the catalog, computed with the rules of
   ingest.publish_titles (fields edited or locked by hand are kept, not written). */

/* Every staged title a publish would write (pending, not unmatched), with what would change.
   The staged payload goes through the same jsonb_populate_record as the publish, so both
   sides have the catalog's types and compare exactly. Inlined keep rule (ingest.keeps): this
   view's expressions run as the caller, who may not execute ingest.*. */
create or replace view private.admin_publish_preview_all as
select sa.shikimori_id, a.id as anime_id,
       case when a.id is null then 'insert' else 'update' end as action,
       coalesce(a.title, staged.doc ->> 'title') as title,
       coalesce((select jsonb_object_agg(f, jsonb_build_object('from', to_jsonb(a) -> f, 'to', staged.doc -> f) order by f)
                   from unnest(private.anime_content_fields()) f
                  where (to_jsonb(a) -> f) is distinct from (staged.doc -> f)
                    and not coalesce(f = any (a.edited_fields) or f = any (a.locked_fields) or '*' = any (a.locked_fields), false)),
                '{}'::jsonb) as changes,
       array(select f from unnest(private.anime_content_fields()) f
              where (to_jsonb(a) -> f) is distinct from (staged.doc -> f)
                and coalesce(f = any (a.edited_fields) or f = any (a.locked_fields) or '*' = any (a.locked_fields), false)
              order by f) as kept_fields,
       sa.run_id, sa.fetched_at
  from data.staging_anime sa
  left join data.anime a on a.id = sa.anime_id
                         or (sa.anime_id is null and sa.matched_by is null and a.shikimori_id = sa.shikimori_id)
 cross join lateral (select to_jsonb(jsonb_populate_record(null::data.anime,
                              private.jsonb_pick(sa.payload, private.anime_content_fields()))) as doc) staged
 where sa.published_hash is distinct from sa.content_hash
   and sa.matched_by is distinct from 'unmatched';

create or replace view private.admin_publish_preview as
select r.* from private.admin_publish_preview_all r where private.admin_gate('admin.parser.settings');

create or replace view private.admin_genres as
select g.id, g.name, g.name_ru,
       (select count(*)::integer from data.anime_genres ag where ag.genre_id = g.id) as titles
  from data.genres g
 where private.admin_gate('anime.view');

-- Per-upstream limits and the enable switch, with the requests granted in the last minute.
create or replace view private.admin_upstream_limits as
select l.upstream, l.enabled, l.per_second, l.per_minute, l.window_scale, l.margin_ms,
       (select count(*)::integer from data.upstream_requests r
         where r.upstream = l.upstream and r.granted_at > now() - interval '1 minute') as requests_last_minute
  from data.upstream_limits l
 where private.admin_gate('admin.parser.settings');

/* The most an admin may allow per upstream: what the upstream itself tolerates (contract §8:
   Shikimori 5/s and 90/min); null = no ceiling known. */
create or replace function private.upstream_ceiling(upstream text, out per_second integer, out per_minute integer)
language sql immutable parallel safe set search_path = '' as $$
  select case upstream when 'shikimori' then 5 end, case upstream when 'shikimori' then 90 end
$$;

/* Player priorities (the old parser's preferred_translation_priority / preferred_quality_priority).
   The key a quality is ranked by: its resolution ("BDRip 1080p" -> 1080p), else the whole
   quality in lower case. */
create or replace function private.quality_key(quality text) returns text
language sql immutable parallel safe as $$
  select coalesce(substring(lower(quality) from '([0-9]{3,4}p)'), nullif(lower(btrim(quality)), ''))
$$;

/* How early a player is offered (lower first): its translation's priority, then its quality's;
   unlisted ones after every listed one (1001). No SET clause, so it is inlined into
   api.episode_sources and runs as the caller (the priority tables are public). */
create or replace function private.player_preference(translation_id integer, quality text) returns integer
language sql stable parallel safe as $$
  select coalesce((select tp.priority from data.translation_priorities tp
                    where tp.translation_id = player_preference.translation_id), 1001) * 1024
       + coalesce((select qp.priority from data.quality_priorities qp
                    where qp.quality = private.quality_key(player_preference.quality)), 1001)
$$;

-- The priorities as one document (the before/after of their audit rows).
create or replace function private.player_priorities_json() returns jsonb
language sql stable set search_path = '' as $$
  select jsonb_build_object(
    'translations', coalesce((select jsonb_agg(tp.translation_id order by tp.priority) from data.translation_priorities tp), '[]'),
    'qualities', coalesce((select jsonb_agg(qp.quality order by qp.priority) from data.quality_priorities qp), '[]'))
$$;

create or replace view private.admin_player_priorities_all as
select 'translation'::text as kind, tp.translation_id::text as key, t.title, t.type as translation_type,
       tp.priority, tp.updated_by, tp.updated_at
  from data.translation_priorities tp join data.translations t on t.id = tp.translation_id
union all
select 'quality', qp.quality, qp.quality, null, qp.priority, qp.updated_by, qp.updated_at
  from data.quality_priorities qp;

create or replace view private.admin_player_priorities as
select r.* from private.admin_player_priorities_all r where private.admin_gate('admin.parser.settings');
