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
comment on column api.favorites.episodes_watched is 'Episodes watched, 0 (default) up to the title''s episodes_total when known.';
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

-- A list status from another site (AniList's names) or ours; null when unknown (api.import_list).
create or replace function private.import_list_status(status text) returns text
language sql immutable set search_path = '' as $$
  select case upper(coalesce(status, 'PLANNING'))
           when 'CURRENT' then 'watching' when 'REPEATING' then 'watching' when 'WATCHING' then 'watching'
           when 'PLANNING' then 'planned' when 'PLANNED' then 'planned'
           when 'COMPLETED' then 'completed' when 'PAUSED' then 'on_hold' when 'ON_HOLD' then 'on_hold'
           when 'DROPPED' then 'dropped' end
$$;

create function api.import_list(items jsonb)
returns table (item integer, anime_id uuid, matched_by text, list_status text)
language plpgsql volatile
set search_path = '' as $$
#variable_conflict use_column
declare
  caller uuid := private.uid();
  bad bigint;
begin
  if jsonb_typeof(items) is distinct from 'array' or jsonb_array_length(items) > 1000 then
    perform private.raise_error(400, 'invalid_import', 'items must be an array of at most 1000 entries.');
  end if;
  select min(e.ordinality) into bad
    from jsonb_array_elements(items) with ordinality e
   where jsonb_typeof(e.value) <> 'object' or private.import_list_status(e.value ->> 'status') is null
      or (e.value ->> 'mal_id') !~ '^[0-9]{1,9}$';
  if bad is not null then
    perform private.raise_error(400, 'invalid_import', format('Entry %s is not {mal_id?, title?, status?} '
      'with a known status; nothing was imported.', bad));
  end if;
  perform public.similarity('', '');  -- loads pg_trgm (see api.search_anime)
  perform set_config('pg_trgm.word_similarity_threshold', '0.6', true);
  return query
  with entries as (
    select e.ordinality::integer as item,
           nullif(e.value ->> 'mal_id', '')::integer as mal_id,
           nullif(private.search_normalize(e.value ->> 'title'), '') as title,
           private.import_list_status(e.value ->> 'status') as list_status
      from jsonb_array_elements(items) with ordinality e
  ),
  matched as (
    -- Shikimori ids are MyAnimeList ids, so an exact id wins; else the closest title (RLS: published only)
    select en.item, en.list_status,
           coalesce(by_id.id, by_title.id) as anime_id,
           case when by_id.id is not null then 'mal_id' when by_title.id is not null then 'title' end as matched_by
      from entries en
      left join lateral (select a.id from data.anime a where a.shikimori_id = en.mal_id) by_id on true
      left join lateral (
        -- catalog_search holds only published titles (and, unlike data.anime, uses its index under RLS)
        select s.anime_id as id from data.catalog_search s
         where by_id.id is null and en.title is not null
           and en.title operator(public.<%) s.doc
         order by public.word_similarity(en.title, s.doc) desc, s.score desc nulls last, s.anime_id
         limit 1) by_title on true
  ),
  stored as (
    insert into data.favorites as f (user_id, anime_id, list_status)
    select distinct on (m.anime_id) caller, m.anime_id, m.list_status
      from matched m
     where m.anime_id is not null
     order by m.anime_id, m.item
    on conflict (user_id, anime_id) do update set list_status = excluded.list_status
    returning f.anime_id
  )
  select m.item, m.anime_id, m.matched_by, case when m.anime_id is not null then m.list_status end
    from matched m
   order by m.item;
end
$$;
comment on function api.import_list(jsonb) is $$Import a list from another site (e.g. AniList)
items: [{mal_id?, title?, status?}] (at most 1000). Each entry is matched by MyAnimeList id (= Shikimori id)
or else by the closest title, and added to favorites with its list status (AniList CURRENT, PLANNING, COMPLETED,
PAUSED, DROPPED, REPEATING or our own names; default planned) in one transaction. Returns, per entry, the
matched anime_id (null when nothing matched) and how it matched.$$;

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
