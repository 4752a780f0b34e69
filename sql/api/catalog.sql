-- Public catalog: published, not deleted titles and what hangs off them. Views are
-- security_invoker, so data's RLS policies decide visibility for anon and web_user alike.

create view api.anime with (security_invoker = true) as
select a.id, a.shikimori_id, a.title, a.title_ru, a.title_ru_generated, a.title_en, a.title_original, a.synonyms,
       a.kind, a.status, a.episodes_total, a.episodes_aired, a.score, a.rating, a.year, a.season,
       a.aired_on, a.released_on, a.next_episode_at, a.poster_url, a.description,
       a.genres, s.genre_ids, a.updated_at
  from data.anime a
  -- genre_ids from the search table, whose GIN index serves anon and web_user (its policy is
  -- `true`; under anime_public_read the non-LEAKPROOF @> could not use an index). Joined on its
  -- key, so PostgreSQL drops the join when a query does not read genre_ids.
  left join data.catalog_search s on s.anime_id = a.id
 where a.state = 'published' and a.deleted_at is null;
comment on view api.anime is $$Published catalog titles
One row per title. Embeds `episodes`, `schedule` and `related`. Unknown values are null.
Browse filters, each served by an index: genres `genre_ids=cs.{1,4}` (all of them; ids from
`/genres`); airing now `status=eq.ongoing&order=score.desc.nullslast,id`; this season
`year=eq.2026&season=eq.fall&order=score.desc.nullslast,id`; top rated
`order=score.desc.nullslast,id`; recently updated `order=updated_at.desc,id.desc`.$$;
comment on column api.anime.id is 'Title id (uuid).';
comment on column api.anime.shikimori_id is 'Shikimori (= MyAnimeList) id, when the title came from there.';
comment on column api.anime.title is 'Main title (romaji).';
comment on column api.anime.title_ru is 'Russian title.';
comment on column api.anime.title_ru_generated is $$true when title_ru was generated (a transcription of the romaji made where the source has no Russian title), not taken from a source or written by an editor.$$;
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
comment on column api.anime.genre_ids is 'Genre ids (see genres), ascending; filter with genre_ids=cs.{id,...}.';
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
       s.quality, s.player_url,
       private.player_preference(s.translation_id, s.quality) as preference,
       -- no other player of the episode comes before it (RLS hides hidden ones here too)
       not exists (select 1 from data.episode_sources o
                    where o.episode_id = s.episode_id and o.translation_id <> s.translation_id
                      and (private.player_preference(o.translation_id, o.quality), o.translation_id)
                          < (private.player_preference(s.translation_id, s.quality), s.translation_id)) as preferred
  from data.episode_sources s
  join data.translations t on t.id = s.translation_id;
comment on view api.episode_sources is $$How to play an episode
One Kodik player per translation; group by translation_type for voice / subtitles. The order to offer them in:
`order=preference,translation_id` (embedded: `episode_sources(*)&episode_sources.order=preference,translation_id`);
`preferred` marks the one to start with. Set by admins (translation, then quality priorities).$$;
comment on column api.episode_sources.episode_id is 'The episode.';
comment on column api.episode_sources.translation_id is 'Kodik translation id.';
comment on column api.episode_sources.translation_title is 'Name of the studio or team.';
comment on column api.episode_sources.translation_type is 'voice or subtitles.';
comment on column api.episode_sources.quality is 'Video quality, e.g. "BDRip 720p".';
comment on column api.episode_sources.player_url is 'Kodik player URL for an iframe.';
comment on column api.episode_sources.preference is 'Lower plays first: the translation''s priority, then the quality''s (unlisted ones last); ties by translation_id.';
comment on column api.episode_sources.preferred is 'The player of this episode to offer first (exactly one per episode).';

create view api.schedule with (security_invoker = true) as
select s.anime_id, s.episode_number, s.airs_at
  from data.schedule s
 where s.airs_at >= now() - interval '30 days';
comment on view api.schedule is $$Announced airings
Every episode the Shikimori calendar announced, each its own row, from 30 days back. A week:
`airs_at=gte.2026-12-07T00:00:00Z&airs_at=lt.2026-12-14T00:00:00Z&order=airs_at,anime_id`
(index on airs_at). Embeds `anime`.$$;
comment on column api.schedule.anime_id is 'The title.';
comment on column api.schedule.episode_number is 'The episode that airs.';
comment on column api.schedule.airs_at is 'When it airs (or aired).';

create view api.related with (security_invoker = true) as
select r.anime_id, r.relation, b.id as related_id, b.title, b.title_ru, b.title_ru_generated, b.kind, b.status, b.year,
       b.season, b.score, b.poster_url
  from data.anime_relations r
  -- the related title by its Shikimori id (unique index); RLS shows only published ones
  join data.anime b on b.shikimori_id = r.related_shikimori_id;
comment on view api.related is $$Related titles
Sequels, prequels, side stories and the rest of a title's franchise, from Shikimori, each with
the related title's card. Embedded in a title page: `anime?id=eq.X&select=*,episodes(*),related(*)`.
Only titles published in this catalog are listed.$$;
comment on column api.related.anime_id is 'The title whose relation this is.';
comment on column api.related.relation is $$How the related title relates to it, as Shikimori names it: sequel, prequel, side_story, parent_story, summary, full_story, alternative_setting, alternative_version, spin_off, adaptation, character or other.$$;
comment on column api.related.related_id is 'The related title (an anime id).';
comment on column api.related.title is 'Its main title (romaji).';
comment on column api.related.title_ru is 'Its Russian title.';
comment on column api.related.title_ru_generated is 'Its Russian title was generated (see anime.title_ru_generated).';
comment on column api.related.kind is 'Its kind (tv, movie, ova, ...).';
comment on column api.related.status is 'Its status: anons, ongoing or released.';
comment on column api.related.year is 'Year of its first airing.';
comment on column api.related.season is 'Season of its first airing.';
comment on column api.related.score is 'Its Shikimori score.';
comment on column api.related.poster_url is 'Its poster.';

create view api.genres with (security_invoker = true) as
select g.id, g.name, g.name_ru, g.anime_count
  from data.genres g;
comment on view api.genres is $$Genres
With the number of published titles in each. Filter titles by genre with `anime?genre_ids=cs.{id}`
or `rpc/search_anime?genres={name,...}`.$$;
comment on column api.genres.id is 'Genre id (Shikimori''s number).';
comment on column api.genres.name is 'Genre name (English).';
comment on column api.genres.name_ru is 'Russian name.';
comment on column api.genres.anime_count is 'Published titles with this genre.';

/* Search, as one inlinable SQL query: PostgREST's limit and offset reach the index scans, so a
   search costs what its page costs, not what all its matches cost. Tiers, best first: 0 a name is
   q, 1 a name starts with q, 2 a name contains q (what the old ILIKE found), 3 a typo (5+
   characters); each title once, in its best tier; within a tier by score, then id (stable pages).
   How each tier stays bounded:
   - 0 and 1 walk the btree of data.catalog_search_keys in rank order (2-letter q: these only);
   - 2: the 2,000 best-ranked titles are walked in rank order (a page of a common q is full after
     a few hundred of them); only when that does not fill the page (a rare q, a deep page) does
     the trigram index give the matches ranked after them, which are then sorted;
   - 3: only when no title passing the filters has a name containing q (then q holds a typo):
     the titles with all of q's words corrected to the catalog's own (private.search_terms),
     found by the trigram index, at most 100, closest to q first.
   The tiers are one UNION ALL without an outer ORDER BY: Append returns its branches in order and
   each branch is ordered, whereas an outer sort would read every branch to its end. Parallel
   plans, which may reorder an Append, are off for these tables (parallel_workers = 0); the
   ranking tests would see it. Filters (kind, status, year, season, rating, min_score, genres)
   apply inside every tier, on columns of the search table (private.search_passes).
   Another sort than relevance orders the 1,000 most relevant matches (Meilisearch's
   maxTotalHits, for the same reason: an order over every match of a common q would read them
   all), with the id as the last key so pages are stable. The matches CTE is read lazily by
   whichever branch the sort picks (the other one's one-time filter is false and never pulls).
   The page's rows are read through api.anime (RLS applies) by a select-list subquery, evaluated
   only for the rows PostgREST takes. Every branch reads data.catalog_search*, whose rows are all
   public, so RLS cannot keep the trigram conditions out of the index. */
create function api.search_anime(q text, kind text default null, status text default null,
                                 year integer default null, season text default null,
                                 genre text default null, rating text default null,
                                 min_score numeric default null, genres text[] default null,
                                 sort text default 'relevance')
returns setof api.anime
language sql stable as $$
  with t as materialized (select * from private.search_terms(q)),
  o as materialized (select * from private.search_options(sort, genre, genres)),
  -- tier 3's corrections: read only by that tier, so computed only when it is reached
  typo as materialized (select * from private.search_typos((select t.needle from t))),
  -- the rank key of the 2,000th title: tier 2 walks the titles up to it, the trigram index the rest
  horizon as materialized (
    select coalesce(s.score, -1) as score, s.anime_id
      from data.catalog_search s
     order by s.score desc nulls last, s.anime_id
     offset 1999 limit 1),
  -- tiers 0-2: every title with a name that contains q
  better as (
    select c.anime_id, c.score, c.year
      from (
        (select k.anime_id, s.score, s.kind, s.status, s.year, s.season, s.rating, s.genre_ids
           from data.catalog_search_keys k
           join data.catalog_search s on s.anime_id = k.anime_id
          where k.key = (select t.exact_key from t)
          order by k.score desc nulls last, k.anime_id)
        union all
        -- tier 1 for a q of 2-3 characters: its key, walked in rank order (a page fills early)
        (select k.anime_id, s.score, s.kind, s.status, s.year, s.season, s.rating, s.genre_ids
           from data.catalog_search_keys k
           join data.catalog_search s on s.anime_id = k.anime_id
          where k.key = (select t.prefix_key from t)
            and length((select t.needle from t)) <= 3
            and strpos(s.doc, (select t.exact from t)) = 0  -- not already in tier 0
          order by k.score desc nulls last, k.anime_id)
        union all
        -- tier 1 for a longer q: the whole names starting with it, a range of the C-collated key
        -- index, so the cost follows the matches, not every title sharing q's first 3 letters
        -- (23,000 of them at a million titles). Ranked on the keys, which carry their title's
        -- score, before each document is read by its key (lateral, offset 0: the planner cannot
        -- guess the range's size and would scan them all): the nested loop keeps that order and
        -- stops with the page, instead of reading every match's document to sort them (39,000
        -- names start with 'gekijouban' at a million titles).
        (select s.anime_id, s.score, s.kind, s.status, s.year, s.season, s.rating, s.genre_ids
           from (select k.anime_id, k.score
                   from data.catalog_search_keys k
                  where k.key >= (select t.needle from t)
                    and k.key < (select t.needle || chr(1114111) from t)
                    and length((select t.needle from t)) > 3
                  group by k.anime_id, k.score
                  order by k.score desc nulls last, k.anime_id) p
           cross join lateral (select d.anime_id, d.score, d.kind, d.status, d.year, d.season, d.rating,
                                      d.genre_ids, d.doc
                                 from data.catalog_search d where d.anime_id = p.anime_id offset 0) s
          where strpos(s.doc, (select t.exact from t)) = 0)  -- not already in tier 0
        union all
        -- tier 2, first the 2,000 best-ranked titles, read in rank order from the rank index
        -- (which includes the document and the filter columns): a page of a common q is full
        -- after a few hundred
        (select w.anime_id, w.score, w.kind, w.status, w.year, w.season, w.rating, w.genre_ids
           from (select s.anime_id, s.score, s.kind, s.status, s.year, s.season, s.rating, s.genre_ids, s.doc
                   from data.catalog_search s
                  where (select t.contains from t)
                  order by s.score desc nulls last, s.anime_id
                  limit 2000) w
          where strpos(w.doc, (select t.needle from t)) > 0
            and strpos(w.doc, (select t.starts from t)) = 0)
        union all
        -- then the matches ranked after those, from the trigram index: reached only by rare q
        -- (the page is not full yet) or deep pages. score * 1 is no index's order, so the
        -- planner keeps the trigram index and sorts what it found.
        (select s.anime_id, s.score, s.kind, s.status, s.year, s.season, s.rating, s.genre_ids
           from data.catalog_search s, horizon h
          where (select t.contains_indexed from t)
            and s.doc like (select t.contains_like from t)  -- q's start: then all of q
            and strpos(s.doc, (select t.needle from t)) > 0
            and strpos(s.doc, (select t.starts from t)) = 0
            and (coalesce(s.score, -1) < h.score or (coalesce(s.score, -1) = h.score and s.anime_id > h.anime_id))
          order by s.score * 1 desc nulls last, s.anime_id)
      ) c
     where private.search_passes(c.kind, c.status, c.year, c.season, c.rating, c.score, c.genre_ids,
                                 search_anime.kind, search_anime.status, search_anime.year, search_anime.season,
                                 search_anime.rating, search_anime.min_score, (select o.genre_ids from o))),
  -- tier 3, typos: only when no title (that passes the filters) has a name containing q, as
  -- Typesense's typo_tokens_threshold (default 1) does. A q that names something is answered by
  -- what it names, not padded with look-alikes; the better tiers read from the CTE's rows, so
  -- asking costs nothing. The titles with every word of q corrected (private.search_terms), at
  -- most 100, closest first: the best of a title's names by how well q matches a part of it
  -- (word_similarity) plus how much of it q is (similarity), so a two-letter typo of a short name
  -- beats long names that merely hold a short look-alike word.
  matches as (
    (select b.anime_id, b.score, b.year from better b)
    union all
    (select f.anime_id, f.score, f.year
       from (select c.anime_id, c.score, c.year,
                    (select max(public.word_similarity((select t.needle from t), n)
                                + public.similarity((select t.needle from t), n))
                       from unnest(string_to_array(btrim(c.doc, '|'), '|')) n) as closeness
               from (select s.anime_id, s.score, s.year, s.doc
                       -- at most 2,000 documents with a word of the group the index is asked
                       -- about (a short word is inside many longer ones: 'agare', 13,488 at a
                       -- million titles), then checked for every group and the filters
                       from (select s.anime_id, s.score, s.year, s.doc, s.kind, s.status, s.season, s.rating,
                                    s.genre_ids
                               from data.catalog_search s
                              where not exists (select 1 from better)
                                and (select y.fuzzy from typo y)
                                -- one index scan per word of the group (at most 3; a missing one is null)
                                and (s.doc like (select y.fuzzy_likes[1] from typo y)
                                     or s.doc like (select y.fuzzy_likes[2] from typo y)
                                     or s.doc like (select y.fuzzy_likes[3] from typo y))
                              limit 2000) s
                      where not exists (select 1 from unnest((select y.fuzzy_groups from typo y)) g where s.doc !~ g)
                        and private.search_passes(s.kind, s.status, s.year, s.season, s.rating, s.score, s.genre_ids,
                                                  search_anime.kind, search_anime.status, search_anime.year,
                                                  search_anime.season, search_anime.rating, search_anime.min_score,
                                                  (select o.genre_ids from o))) c
              -- closeness costs ~60 us a title (every name, twice): for the 100 best-ranked
              -- (all of them, unless q's words are common ones: 'specials', 'movie')
              order by c.score desc nulls last, c.anime_id
              limit 100) f
      order by f.closeness desc, f.score desc nulls last, f.anime_id))
  select (hit.anime).*
    from (
      select (select v from api.anime v where v.id = r.anime_id) as anime
        from (
          (select m.anime_id from matches m where (select o.sort_key from o) = 'relevance')
          union all
          (select b.anime_id
             from (select m.anime_id, m.score, m.year from matches m
                    where (select o.sort_key from o) <> 'relevance' limit 1000) b
             -- the title's own columns only for the sorts that need them (one-time filter)
             left join lateral (select a.aired_on, a.title, a.updated_at from data.anime a
                                 where a.id = b.anime_id
                                   and (select o.sort_key from o) in ('year', 'title', 'updated')) a on true
            order by case when (select o.sort_key from o) = 'score' then b.score end desc nulls last,
                     case when (select o.sort_key from o) = 'year' then b.year end desc nulls last,
                     case when (select o.sort_key from o) = 'year' then a.aired_on end desc nulls last,
                     case when (select o.sort_key from o) = 'title' then a.title end,
                     case when (select o.sort_key from o) = 'updated' then a.updated_at end desc,
                     b.anime_id)
        ) r
      offset 0) hit
   where (hit.anime).id is not null
$$;
comment on function api.search_anime(text, text, text, integer, text, text, text, numeric, text[], text) is $$Search the catalog
Matches every title and synonym in every script (romaji, English, Russian, Japanese), tolerates
typos when nothing contains q (words of 5 or more characters, up to two letters each). Ranked exact name, then prefix, then contains,
then typo; ties by score, then id. q needs 2 to 200 characters.
Filters, all combined: kind, status, year, season, rating, min_score (score >= it), genres
(text[] of genre names, Russian names or ids; all must match; genre: one more).
sort: relevance (default), score (best first), year (newest first, then aired date), title
(A to Z) or updated (latest change first); another sort than relevance orders the 1,000 most
relevant matches. Pages (limit/offset) are stable: every order ends with the id.$$;
