-- Public catalog: published, not deleted titles and what hangs off them. Views are
-- security_invoker, so data's RLS policies decide visibility for anon and web_user alike.

create view api.anime with (security_invoker = true) as
select a.id, a.shikimori_id, a.title, a.title_ru, a.title_en, a.title_original, a.synonyms,
       a.kind, a.status, a.episodes_total, a.episodes_aired, a.score, a.rating, a.year, a.season,
       a.aired_on, a.released_on, a.next_episode_at, a.poster_url, a.description,
       array(select coalesce(g.name_ru, g.name)
               from data.anime_genres ag join data.genres g on g.id = ag.genre_id
              where ag.anime_id = a.id order by g.name) as genres,
       a.updated_at
  from data.anime a
 where a.state = 'published' and a.deleted_at is null;
comment on view api.anime is $$Published catalog titles
One row per title. Embeds `episodes` and `schedule`. Unknown values are null.$$;
comment on column api.anime.id is 'Title id (uuid).';
comment on column api.anime.shikimori_id is 'Shikimori (= MyAnimeList) id, when the title came from there.';
comment on column api.anime.title is 'Main title (romaji).';
comment on column api.anime.title_ru is 'Russian title.';
comment on column api.anime.title_en is 'English title.';
comment on column api.anime.title_original is 'Original (Japanese) title.';
comment on column api.anime.synonyms is 'Other known titles.';
comment on column api.anime.kind is 'tv, movie, ova, ona, special, tv_special, music, pv or cm.';
comment on column api.anime.status is 'anons, ongoing or released.';
comment on column api.anime.episodes_total is 'Planned number of episodes; null when unknown.';
comment on column api.anime.episodes_aired is 'Episodes aired so far.';
comment on column api.anime.score is 'Shikimori score, 0 to 10.';
comment on column api.anime.rating is 'Age rating: none, g, pg, pg_13, r, r_plus or rx.';
comment on column api.anime.year is 'Year of the first airing.';
comment on column api.anime.season is 'Season of the first airing: winter, spring, summer or fall.';
comment on column api.anime.aired_on is 'Date of the first airing.';
comment on column api.anime.released_on is 'Date of the last episode.';
comment on column api.anime.next_episode_at is 'When the next episode airs (ongoing titles).';
comment on column api.anime.poster_url is 'Absolute URL of the poster.';
comment on column api.anime.description is 'Synopsis.';
comment on column api.anime.genres is 'Genre names.';
comment on column api.anime.updated_at is 'Last change of this row.';

create view api.episodes with (security_invoker = true) as
select e.id, e.anime_id, e.number, e.title, e.aired_at
  from data.episodes e
 where e.deleted_at is null;
comment on view api.episodes is $$Episodes of published titles
Embeds `anime` and `episode_sources`.$$;
comment on column api.episodes.id is 'Episode id (uuid).';
comment on column api.episodes.anime_id is 'The title this episode belongs to.';
comment on column api.episodes.number is 'Episode number, from 1.';
comment on column api.episodes.title is 'Episode title, when known.';
comment on column api.episodes.aired_at is 'When the episode aired, when known.';

create view api.episode_sources with (security_invoker = true) as
select s.episode_id, s.translation_id, t.title as translation_title, t.type as translation_type,
       s.quality, s.player_url
  from data.episode_sources s
  join data.translations t on t.id = s.translation_id;
comment on view api.episode_sources is $$How to play an episode
One Kodik player per translation; group by translation_type for voice / subtitles.$$;
comment on column api.episode_sources.episode_id is 'The episode.';
comment on column api.episode_sources.translation_id is 'Kodik translation id.';
comment on column api.episode_sources.translation_title is 'Name of the studio or team.';
comment on column api.episode_sources.translation_type is 'voice or subtitles.';
comment on column api.episode_sources.quality is 'Video quality, e.g. "BDRip 720p".';
comment on column api.episode_sources.player_url is 'Kodik player URL for an iframe.';

create view api.schedule with (security_invoker = true) as
select s.anime_id, s.episode_number, s.airs_at
  from data.schedule s
 where s.airs_at > now() - interval '1 day';
comment on view api.schedule is $$Upcoming airings
From the Shikimori calendar; includes the last day so just-aired episodes still show. Embeds `anime`.$$;
comment on column api.schedule.anime_id is 'The title.';
comment on column api.schedule.episode_number is 'The episode that airs.';
comment on column api.schedule.airs_at is 'When it airs.';

create function api.search_anime(q text, kind text default null, status text default null,
                                 year integer default null, season text default null,
                                 genre text default null)
returns setof api.anime
language plpgsql stable
set search_path = '' as $$
declare
  needle text := lower(btrim(q));
begin
  if needle is null or length(needle) < 2 then
    perform private.raise_error(400, 'query_too_short', 'Search needs at least 2 characters in q.');
  end if;
  -- typo tolerance: word_similarity >= 0.3 (default 0.6). similarity() first loads pg_trgm,
  -- which registers the setting; a SET clause on the function would need superuser.
  perform public.similarity('', '');
  perform set_config('pg_trgm.word_similarity_threshold', '0.3', true);
  return query
    select v.*
      from data.anime d
      join api.anime v on v.id = d.id
     where (needle operator(public.<%) private.anime_search_text(d.title, d.title_ru, d.title_en, d.title_original, d.synonyms)
            or private.anime_search_text(d.title, d.title_ru, d.title_en, d.title_original, d.synonyms)
               like '%' || replace(replace(needle, '%', '\%'), '_', '\_') || '%')
       and (search_anime.kind is null or d.kind = search_anime.kind)
       and (search_anime.status is null or d.status = search_anime.status)
       and (search_anime.year is null or d.year = search_anime.year)
       and (search_anime.season is null or d.season = search_anime.season)
       and (search_anime.genre is null or lower(search_anime.genre) = any (select lower(x) from unnest(v.genres) x))
     order by public.word_similarity(needle, private.anime_search_text(d.title, d.title_ru, d.title_en, d.title_original, d.synonyms)) desc,
              d.score desc nulls last, d.id;
end
$$;
comment on function api.search_anime(text, text, text, integer, text, text) is $$Search the catalog
Matches every title and synonym, tolerates typos (trigram similarity), ranked by relevance.
q needs at least 2 characters; kind, status, year, season and genre narrow the result.$$;
