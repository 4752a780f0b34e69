-- Signed-in resources. Only web_user has grants here, so anonymous callers get 401; RLS on
-- data.* limits every row to the caller.

create view api.me with (security_invoker = true) as
select u.id, u.email, u.display_name, u.avatar_url, u.created_at, u.email_verified_at,
       array(select ur.role from data.user_roles ur where ur.user_id = u.id order by ur.role) as roles,
       array(select distinct rp.permission
               from data.user_roles ur join data.role_permissions rp on rp.role = ur.role
              where ur.user_id = u.id order by rp.permission) as permissions
  from data.users u
 where u.id = private.uid();
comment on view api.me is $$The caller
One row; send Accept: application/vnd.pgrst.object+json. PATCH changes display_name and avatar_url only.$$;
comment on column api.me.id is 'User id.';
comment on column api.me.email is 'Email, lower-case.';
comment on column api.me.display_name is 'Name shown to others (1-64 characters).';
comment on column api.me.avatar_url is 'https URL of the avatar.';
comment on column api.me.created_at is 'When the account was created.';
comment on column api.me.email_verified_at is 'When the email address was verified (a verification or reset link was used); null until then.';
comment on column api.me.roles is 'RBAC roles held.';
comment on column api.me.permissions is 'Permissions those roles grant; the frontend gates admin pages on these.';

create view api.favorites with (security_invoker = true) as
select f.user_id, f.anime_id, f.list_status, f.score, f.episodes_watched, f.created_at, f.updated_at
  from data.favorites f
 -- a favorite whose title is no longer published is kept but not listed
 where exists (select 1 from data.anime a where a.id = f.anime_id);
alter view api.favorites alter column user_id set default private.uid();
alter view api.favorites alter column list_status set default 'planned';
alter view api.favorites alter column episodes_watched set default 0;
comment on view api.favorites is $$The caller's list
GET ?select=*,anime(*) embeds each title in one request. POST {anime_id} adds (the owner comes from
the token; with Prefer: resolution=ignore-duplicates or merge-duplicates a repeat is harmless);
PATCH list_status, score, episodes_watched (out of range: 400 naming the constraint); DELETE ?anime_id=eq.X removes.$$;
comment on column api.favorites.user_id is 'Always the caller (read-only).';
comment on column api.favorites.anime_id is 'The title.';
comment on column api.favorites.list_status is 'watching, planned (default), completed, on_hold or dropped.';
comment on column api.favorites.score is 'Personal score 1-10, null when not scored.';
comment on column api.favorites.episodes_watched is 'Episodes watched, 0 (default) up to the title''s episodes_total when known (lowering that total clamps this to it).';
comment on column api.favorites.created_at is 'When it was added.';
comment on column api.favorites.updated_at is 'Last change of list_status, score or episodes_watched.';

-- One request for a profile page's per-status counts instead of five (issue 10).
create view api.list_counts with (security_invoker = true) as
select f.list_status, count(*)::int as titles
  from api.favorites f
 group by f.list_status;
comment on view api.list_counts is $$The caller's list counted per status
One row per list_status that has titles; a status with none is absent.$$;
comment on column api.list_counts.list_status is 'watching, planned, completed, on_hold or dropped.';
comment on column api.list_counts.titles is 'Titles on the list with that status.';

create view api.continue_watching with (security_invoker = true) as
select wp.anime_id, wp.episode_id, wp.episode_number, wp.position_seconds, wp.progress_percent,
       wp.last_watched_at,
       -- one range of the (anime_id, number) key per row; episodes' own policy hides deleted ones
       (select count(*)::integer from data.episodes e
         where e.anime_id = wp.anime_id and e.number > wp.episode_number
           and (e.aired_at is null or e.aired_at <= now())) as new_episodes
  from data.watch_progress wp
 where exists (select 1 from data.anime a where a.id = wp.anime_id)
 order by wp.last_watched_at desc;
comment on view api.continue_watching is $$What to resume
Latest first. ?select=*,anime(*),episodes(*) embeds the title and the episode in the same request.$$;
comment on column api.continue_watching.anime_id is 'The title.';
comment on column api.continue_watching.episode_id is 'The episode, null when the catalog does not know it.';
comment on column api.continue_watching.episode_number is 'Episode number.';
comment on column api.continue_watching.position_seconds is 'Playback position in seconds.';
comment on column api.continue_watching.progress_percent is 'Share of the episode watched, 0-100.';
comment on column api.continue_watching.last_watched_at is 'When it was watched.';
comment on column api.continue_watching.new_episodes is 'Episodes aired after the one last watched (announced ones not yet aired do not count).';

create view api.watch_progress with (security_invoker = true) as
select wp.anime_id, wp.episode_number, wp.position_seconds, wp.progress_percent, wp.translation_id,
       wp.last_watched_at
  from data.watch_progress wp;
comment on view api.watch_progress is $$All of the caller's progress
One row per title: the latest episode and position. Write it with rpc/save_progress.$$;
comment on column api.watch_progress.anime_id is 'The title.';
comment on column api.watch_progress.episode_number is 'Latest episode watched.';
comment on column api.watch_progress.position_seconds is 'Playback position in seconds.';
comment on column api.watch_progress.progress_percent is 'Share of the episode watched, 0-100.';
comment on column api.watch_progress.translation_id is 'Translation chosen, when known.';
comment on column api.watch_progress.last_watched_at is 'When it was watched.';

create view api.watch_history with (security_invoker = true) as
select wh.anime_id, wh.episode_number, wh.position_seconds, wh.progress_percent, wh.watched_at
  from data.watch_history wh
 where exists (select 1 from data.anime a where a.id = wh.anime_id);
comment on view api.watch_history is $$The caller's per-episode history
One row per title and episode with when it was last watched (the profile heatmap). Written by
rpc/save_progress; DELETE forgets an entry.$$;
comment on column api.watch_history.anime_id is 'The title.';
comment on column api.watch_history.episode_number is 'Episode number.';
comment on column api.watch_history.position_seconds is 'Last playback position in seconds.';
comment on column api.watch_history.progress_percent is 'Share of the episode watched, 0-100.';
comment on column api.watch_history.watched_at is 'When it was last watched.';

create function api.save_progress(anime_id uuid, episode_number integer,
                                  position_seconds integer default null,
                                  progress_percent numeric default null,
                                  translation_id integer default null,
                                  watched_at timestamptz default null)
returns api.watch_progress
language plpgsql volatile
set search_path = '' as $$
#variable_conflict use_column
declare
  caller uuid := private.uid();
  at timestamptz := coalesce(save_progress.watched_at, now());
  stored api.watch_progress;
begin
  if save_progress.anime_id is null then
    perform private.raise_error(400, 'invalid_progress', 'anime_id is required.');
  elsif save_progress.episode_number is null or save_progress.episode_number < 1 then
    perform private.raise_error(400, 'invalid_progress', 'episode_number must be 1 or more.');
  elsif save_progress.position_seconds is null and save_progress.progress_percent is null then
    perform private.raise_error(400, 'invalid_progress', 'Send position_seconds, progress_percent or both.');
  elsif save_progress.position_seconds < 0 then
    perform private.raise_error(400, 'invalid_progress', 'position_seconds must be 0 or more.');
  elsif not (save_progress.progress_percent between 0 and 100) then
    perform private.raise_error(400, 'invalid_progress', 'progress_percent must be between 0 and 100.');
  elsif at > now() + interval '5 minutes' then
    perform private.raise_error(400, 'invalid_progress', 'watched_at is in the future.');
  end if;
  if save_progress.translation_id is not null
     and not exists (select 1 from data.translations t where t.id = save_progress.translation_id) then
    perform private.raise_error(400, 'invalid_progress', 'translation_id is unknown.');
  end if;
  -- a hidden or unknown title: 404 from the insert (private.require_published_anime)
  -- one statement; the where clause keeps a newer row when an older report arrives late
  insert into data.watch_progress as wp
         (user_id, anime_id, episode_number, episode_id, position_seconds, progress_percent,
          translation_id, last_watched_at)
  values (caller, save_progress.anime_id, save_progress.episode_number,
          (select e.id from data.episodes e
            where e.anime_id = save_progress.anime_id and e.number = save_progress.episode_number),
          save_progress.position_seconds, save_progress.progress_percent,
          save_progress.translation_id, at)
  on conflict (user_id, anime_id) do update
     set episode_number = excluded.episode_number, episode_id = excluded.episode_id,
         position_seconds = excluded.position_seconds, progress_percent = excluded.progress_percent,
         translation_id = coalesce(excluded.translation_id, wp.translation_id),
         last_watched_at = excluded.last_watched_at, updated_at = now()
   where wp.last_watched_at <= excluded.last_watched_at;

  insert into data.watch_history as wh
         (user_id, anime_id, episode_number, position_seconds, progress_percent, watched_at)
  values (caller, save_progress.anime_id, save_progress.episode_number,
          save_progress.position_seconds, save_progress.progress_percent, at)
  on conflict (user_id, anime_id, episode_number) do update
     set position_seconds = excluded.position_seconds, progress_percent = excluded.progress_percent,
         watched_at = excluded.watched_at
   where wh.watched_at <= excluded.watched_at;

  select w.* into stored from api.watch_progress w where w.anime_id = save_progress.anime_id;
  return stored;
end
$$;
comment on function api.save_progress(uuid, integer, integer, numeric, integer, timestamptz) is $$Save playback progress
Validates (episode_number >= 1, position_seconds >= 0, progress_percent 0-100, at least one of the two),
upserts in one statement and returns the stored row. An older watched_at never overwrites a newer one:
such a call answers 200 with the newer row. Unknown or unpublished titles are 404.$$;

-- A list status from another site (AniList's or Shikimori's names) or ours; null when unknown
-- (api.import_list). Rewatching is watching again: our lists have no status of their own for it.
create or replace function private.import_list_status(status text) returns text
language sql immutable set search_path = '' as $$
  select case upper(coalesce(status, 'PLANNING'))
           when 'CURRENT' then 'watching' when 'REPEATING' then 'watching' when 'WATCHING' then 'watching'
           when 'REWATCHING' then 'watching'
           when 'PLANNING' then 'planned' when 'PLANNED' then 'planned'
           when 'COMPLETED' then 'completed' when 'PAUSED' then 'on_hold' when 'ON_HOLD' then 'on_hold'
           when 'DROPPED' then 'dropped' end
$$;

-- The entries of a list export as one array, or null when the shape is none we read: an array
-- (ours or Shikimori's export) as it is; AniList's MediaListCollection ({data: {MediaListCollection:
-- {lists: [{entries: [...]}]}}}, the collection alone, or just {lists}) flattened list by list.
create or replace function private.import_list_entries(export jsonb) returns jsonb
language sql immutable set search_path = '' as $$
  select case
           when jsonb_typeof(c) = 'array' then c
           when jsonb_typeof(c -> 'lists') = 'array' then
             (select coalesce(jsonb_agg(e.value order by l.ordinality, e.ordinality), '[]')
                from jsonb_array_elements(c -> 'lists') with ordinality l
               cross join lateral jsonb_array_elements(
                       case jsonb_typeof(l.value -> 'entries') when 'array' then l.value -> 'entries'
                            else '[]' end) with ordinality e)
         end
    from (select coalesce(export #> '{data,MediaListCollection}', export -> 'MediaListCollection', export) as c) x
$$;

-- What turns an export's scores into 1-10: AniList names its format in the collection's
-- user.mediaListOptions.scoreFormat; null when the export does not say (then an AniList entry's
-- score above 10 is read as out of 100, its POINT_100, and every other score as out of 10).
create or replace function private.import_list_score_scale(export jsonb) returns numeric
language sql immutable set search_path = '' as $$
  select case coalesce(export #>> '{data,MediaListCollection,user,mediaListOptions,scoreFormat}',
                       export #>> '{MediaListCollection,user,mediaListOptions,scoreFormat}',
                       export #>> '{user,mediaListOptions,scoreFormat}')
           when 'POINT_100' then 0.1 when 'POINT_10_DECIMAL' then 1 when 'POINT_10' then 1
           when 'POINT_5' then 2 when 'POINT_3' then 10 / 3.0 end
$$;

-- One entry read from any accepted shape: ours {mal_id, title, status}; Shikimori's {target_id,
-- target_type, target_title, target_title_ru, status, score, episodes}; AniList's {status, score,
-- progress, media: {idMal, title: {romaji, english, native}}}. problem says why it cannot be
-- imported (null when it can); score_given / episodes_given say whether the entry carries them
-- (an absent field keeps what the favorite already has).
create or replace function private.import_list_read(
  entry jsonb, score_scale numeric,
  out mal_id integer, out names text[], out list_status text, out score integer, out score_given boolean,
  out episodes integer, out episodes_given boolean, out problem text)
language plpgsql immutable set search_path = '' as $$
declare
  id_text text;
  score_text text;
  scaled numeric;
  episodes_text text;
begin
  if jsonb_typeof(entry) is distinct from 'object' then
    problem := 'not_an_object'; return;
  elsif lower(entry ->> 'target_type') <> 'anime' then  -- Shikimori exports manga and ranobe too
    problem := 'not_anime'; return;
  end if;
  id_text := nullif(coalesce(entry ->> 'mal_id', entry ->> 'target_id', entry #>> '{media,idMal}',
                             entry ->> 'idMal'), '');
  if id_text !~ '^[0-9]{1,9}$' then
    problem := 'invalid_id'; return;
  end if;
  mal_id := id_text::integer;
  names := array(select distinct n.name
                   from unnest(array[entry ->> 'title', entry ->> 'target_title', entry ->> 'target_title_ru',
                                     entry #>> '{media,title,romaji}', entry #>> '{media,title,english}',
                                     entry #>> '{media,title,native}']) t(raw)
                  cross join lateral (select private.search_normalize(t.raw) as name) n
                  where n.name <> '');
  if mal_id is null and cardinality(names) = 0 then
    problem := 'no_id_or_title'; return;
  end if;
  list_status := private.import_list_status(entry ->> 'status');
  if list_status is null then
    problem := 'unknown_status'; return;
  end if;
  score_text := entry ->> 'score';
  score_given := score_text is not null;
  if score_text !~ '^[0-9]{1,3}(\.[0-9]+)?$' then
    problem := 'invalid_score'; return;
  end if;
  -- an AniList entry of an export that does not name its format: above 10 it is out of 100
  scaled := score_text::numeric * coalesce(score_scale,
              case when entry ? 'media' and score_text::numeric > 10 then 0.1 else 1 end);
  if scaled > 10 then
    problem := 'invalid_score'; return;
  end if;
  score := case when scaled > 0 then greatest(round(scaled), 1) end;  -- 0 is "not scored" everywhere
  episodes_text := coalesce(entry ->> 'episodes', entry ->> 'progress', entry ->> 'episodes_watched');
  episodes_given := episodes_text is not null;
  if episodes_text !~ '^[0-9]{1,6}$' then
    problem := 'invalid_episodes'; return;
  end if;
  episodes := coalesce(episodes_text::integer, 0);
end
$$;

-- The published title an entry means: its MyAnimeList id (= Shikimori id), else a title one of its
-- names equals (the one most of its names equal), else the closest title by trigram similarity
-- (pg_trgm.word_similarity_threshold, set by api.import_list). Two equally good titles: ambiguous.
-- Runs as the caller: RLS shows published titles only, so a hidden one is not_found like an unknown.
create or replace function private.import_list_match(mal_id integer, names text[],
                                                     out anime_id uuid, out matched_by text, out match text)
language plpgsql stable set search_path = '' as $$
declare
  ids uuid[];
  strengths numeric[];
begin
  if mal_id is not null then
    select a.id into anime_id from data.anime a where a.shikimori_id = mal_id;
    if found then
      matched_by := 'mal_id'; match := 'matched'; return;
    end if;
  end if;
  if cardinality(names) > 0 then
    -- the keys hold every normalised name followed by '|' (sql/private/catalog_search.sql)
    select array_agg(h.anime_id order by h.hits desc, h.anime_id), array_agg(h.hits order by h.hits desc, h.anime_id)
      into ids, strengths
      from (select k.anime_id, count(distinct k.key)::numeric as hits
              from data.catalog_search_keys k
             where k.key = any (array(select n || '|' from unnest(names) n))
             group by k.anime_id order by hits desc, k.anime_id limit 2) h;
    if ids is null then
      select array_agg(c.id order by c.closeness desc, c.id), array_agg(c.closeness order by c.closeness desc, c.id)
        into ids, strengths
        from (select s.anime_id as id, max(public.word_similarity(n.name, s.doc))::numeric as closeness
                from unnest(names) n(name)
                cross join lateral (
                  -- catalog_search holds only published titles (and, unlike data.anime, uses its index under RLS)
                  select s.anime_id, s.doc from data.catalog_search s
                   where n.name operator(public.<%) s.doc
                   order by public.word_similarity(n.name, s.doc) desc, s.score desc nulls last, s.anime_id
                   limit 2) s
               group by s.anime_id order by closeness desc, s.anime_id limit 2) c;
    end if;
    if ids is not null then
      matched_by := 'title';
      if cardinality(ids) > 1 and strengths[1] = strengths[2] then
        match := 'ambiguous'; return;
      end if;
      anime_id := ids[1]; match := 'matched'; return;
    end if;
  end if;
  match := 'not_found';
end
$$;

create function api.import_list(items jsonb)
returns table (item integer, match text, action text, reason text, anime_id uuid, matched_by text,
               list_status text, score integer, episodes_watched integer)
language plpgsql volatile
set search_path = '' as $$
#variable_conflict use_column
declare
  caller uuid := private.uid();
  entries jsonb := private.import_list_entries(items);
  scale numeric := private.import_list_score_scale(items);
begin
  if entries is null or jsonb_array_length(entries) > 2000 then
    perform private.raise_error(400, 'invalid_import', 'items must be a list export (an array, or AniList''s '
      'MediaListCollection) of at most 2000 entries; nothing was imported.');
  end if;
  perform public.similarity('', '');  -- loads pg_trgm (see api.search_anime)
  perform set_config('pg_trgm.word_similarity_threshold', '0.6', true);
  return query
  with readable as (
    select e.ordinality::integer as item, r.*
      from jsonb_array_elements(entries) with ordinality e
     cross join lateral private.import_list_read(e.value, scale) r
  ),
  matched as (
    select r.*, m.anime_id, m.matched_by, m.match,
           min(r.item) filter (where m.match = 'matched') over (partition by m.anime_id) as first_item
      from readable r
      left join lateral private.import_list_match(r.mal_id, r.names) m on r.problem is null
  ),
  checked as (
    select m.*, a.episodes_total, coalesce(m.problem,
             case when m.match <> 'matched' then m.match
                  when m.item <> m.first_item then 'duplicate'  -- the first entry of a title wins
                  when m.episodes > a.episodes_total then 'episodes_exceed_total' end) as reason
      from matched m
      left join data.anime a on a.id = m.anime_id
  ),
  -- what the caller's list holds now; a field the entry does not carry keeps its value
  target as (
    select c.item, c.anime_id, c.list_status,
           case when c.score_given or f.anime_id is null then c.score else f.score end as score,
           case when c.episodes_given or f.anime_id is null then c.episodes else f.episodes_watched end as episodes_watched,
           f.anime_id is not null as existed,
           (f.list_status, f.score, f.episodes_watched) as was
      from checked c
      left join data.favorites f on f.user_id = caller and f.anime_id = c.anime_id
     where c.reason is null
  ),
  stored as (
    insert into data.favorites as f (user_id, anime_id, list_status, score, episodes_watched)
    select caller, t.anime_id, t.list_status, t.score, t.episodes_watched from target t
    on conflict (user_id, anime_id) do update
       set list_status = excluded.list_status, score = excluded.score, episodes_watched = excluded.episodes_watched
     -- an unchanged entry writes nothing: a re-import leaves the list (and updated_at) as it was
     where (f.list_status, f.score, f.episodes_watched)
           is distinct from (excluded.list_status, excluded.score, excluded.episodes_watched)
    returning f.anime_id
  )
  select c.item, c.match,
         case when c.reason is not null then 'skipped' when not t.existed then 'imported'
              when t.was is not distinct from (t.list_status, t.score, t.episodes_watched) then 'unchanged'
              else 'updated' end,
         c.reason, c.anime_id, c.matched_by, t.list_status, t.score, t.episodes_watched
    from checked c
    left join target t on t.item = c.item
   order by c.item;
end
$$;
comment on function api.import_list(jsonb) is $$Import a list from another site (Shikimori, AniList) or ours
items: a Shikimori list export (JSON array of {target_id, target_type, target_title, target_title_ru, status,
score, episodes}; planned, watching, rewatching, completed, on_hold, dropped), an AniList MediaListCollection
({data: {MediaListCollection: {lists: [{entries: [{status, score, progress, media: {idMal, title: {romaji,
english, native}}}]}], user: {mediaListOptions: {scoreFormat}}}}}, or the collection alone), or an array of
{mal_id?, title?, status?, score?, episodes?}; at most 2000 entries, one transaction. Each entry is matched by
MyAnimeList id (= Shikimori id), else by a title equal to one of its names, else the closest title. Per entry:
match (matched, ambiguous, not_found; null when the entry is unreadable), action (imported, updated, unchanged,
skipped), reason when skipped (not_an_object, not_anime, invalid_id, no_id_or_title, unknown_status,
invalid_score, invalid_episodes, not_found, ambiguous, duplicate, episodes_exceed_total) and what is stored.
Scores 0 mean not scored; importing the same export again changes nothing.$$;

create view api.sessions with (security_invoker = true) as
select s.id, s.created_at, s.last_used_at, s.user_agent, s.ip, s.id = private.sid() as current
  from data.sessions s
 where private.session_live(s.revoked_at, s.expires_at);
comment on view api.sessions is $$The caller's signed-in devices
DELETE ?id=eq.X signs that device out: its tokens stop working on their next request.$$;
comment on column api.sessions.id is 'Session id (the sid claim of its tokens).';
comment on column api.sessions.created_at is 'When the device signed in.';
comment on column api.sessions.last_used_at is 'Last sign-in or token refresh.';
comment on column api.sessions.user_agent is 'User agent seen at sign-in.';
comment on column api.sessions.ip is 'Client address seen at sign-in or the last refresh.';
comment on column api.sessions.current is 'True for the session of the token making this request.';

create or replace function private.revoke_own_session() returns trigger
language plpgsql set search_path = '' as $$
begin
  -- runs as the caller: RLS lets web_user revoke only its own sessions
  update data.sessions set revoked_at = now(), revoked_reason = 'revoked_by_user'
   where id = old.id and revoked_at is null;
  return old;
end
$$;
create trigger sessions_revoke instead of delete on api.sessions
  for each row execute function private.revoke_own_session();
