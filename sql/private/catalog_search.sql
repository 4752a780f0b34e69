-- The catalog's search documents and stored genre names, kept in the same transaction as every
-- write of a title (ingest publish, admin edits, genre links). Code: re-applied by `make migrate`.
--
-- Why a table of its own: data.anime is row-secured, and pg_trgm's operators are not LEAKPROOF,
-- so under anime_public_read PostgreSQL may not use them as index conditions and scans every row.
-- data.catalog_search holds only published titles (public data, policy `true`), so its trigram
-- index serves anon and web_user like it serves the owner.

-- lower case, accents folded (Shōnen = shonen, ё = е), runs of spaces and '|' to one space;
-- Cyrillic and kana are kept as they are.
create or replace function private.search_normalize(value text) returns text
language sql immutable parallel safe set search_path = '' as $$
  select pg_catalog.btrim(pg_catalog.regexp_replace(
           pg_catalog.lower(public.unaccent('public.unaccent'::regdictionary, value)), '[|[:space:]]+', ' ', 'g'))
$$;

-- '|name|name|...|': every title and synonym, normalised. The '|' around each name lets
-- one trigram index answer "a name is q" (like '%|q|%'), "starts with q" ('%|q%') and "contains q".
create or replace function private.search_document(title text, title_ru text, title_en text,
                                                   title_original text, synonyms text[]) returns text
language sql immutable parallel safe set search_path = '' as $$
  -- one unaccent and two regex passes for the whole title: names are joined first (a '|' inside
  -- a name becomes a space, inside a synonym it splits it), then normalised as search_normalize does
  select pg_catalog.regexp_replace(pg_catalog.regexp_replace(
           pg_catalog.lower(public.unaccent('public.unaccent'::regdictionary,
             '|' || concat_ws('|', replace(title, '|', ' '), replace(title_ru, '|', ' '), replace(title_en, '|', ' '),
                              replace(title_original, '|', ' '), pg_catalog.array_to_string(synonyms, '|')) || '|')),
           '[[:space:]]+', ' ', 'g'), ' ?\| ?', '|', 'g')
$$;

-- After a statement wrote data.anime: published titles get (or keep) their document, the others
-- leave the search (and take their keys along). Rows whose searchable fields did not change cost
-- one comparison.
create or replace function private.catalog_search_sync() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  rekeyed uuid[];
begin
  delete from data.catalog_search s
   using changed c
   where s.anime_id = c.id and not (c.state = 'published' and c.deleted_at is null);
  with fresh as materialized (
    select c.id, private.search_document(c.title, c.title_ru, c.title_en, c.title_original, c.synonyms) as doc,
           c.score, c.kind, c.status, c.year, c.season, c.rating, c.genres, c.genre_ids
      from changed c
     where c.state = 'published' and c.deleted_at is null),
  -- the keys carry the score they are ranked by: rewrite them when the names or the score change
  rekey as (
    select f.id from fresh f left join data.catalog_search s on s.anime_id = f.id
     where s.anime_id is null or s.doc <> f.doc or s.score is distinct from f.score),
  written as (
    insert into data.catalog_search as s (anime_id, doc, score, kind, status, year, season, rating, genres, genre_ids)
    select * from fresh
    on conflict (anime_id) do update
       set doc = excluded.doc, score = excluded.score, kind = excluded.kind, status = excluded.status,
           year = excluded.year, season = excluded.season, rating = excluded.rating, genres = excluded.genres,
           genre_ids = excluded.genre_ids
     where (s.doc, s.score, s.kind, s.status, s.year, s.season, s.rating, s.genres, s.genre_ids)
           is distinct from (excluded.doc, excluded.score, excluded.kind, excluded.status,
                             excluded.year, excluded.season, excluded.rating, excluded.genres, excluded.genre_ids)
    returning 1)
  select array(select id from rekey) into rekeyed from (select count(*) from written) w;
  if cardinality(rekeyed) = 0 then
    return null;
  end if;
  delete from data.catalog_search_keys k where k.anime_id = any (rekeyed);
  insert into data.catalog_search_keys (key, anime_id, score)
  select distinct k.key, s.anime_id, s.score
    from unnest(rekeyed) r(id)  -- a join, not "= any (rekeyed)": that compares every pair
    join data.catalog_search s on s.anime_id = r.id
   cross join unnest(string_to_array(btrim(s.doc, '|'), '|')) n(name)
   cross join lateral (values (left(n.name, 2)), (left(n.name, 3)), (n.name || '|')) k(key)
   where length(n.name) >= 2
   order by 1;  -- in index order: the rank index takes them ~25 % faster
  -- the words typos are corrected to; never removed (a word whose titles left matches nothing,
  -- and the few it adds do not slow the lookup, one btree range per word)
  insert into data.catalog_search_words (word)
  select distinct w.word
    from unnest(rekeyed) r(id)
    join data.catalog_search s on s.anime_id = r.id
   cross join private.search_words(replace(s.doc, '|', ' ')) w(word)
   order by 1
  on conflict do nothing;
  return null;
end
$$;
-- a document that leaves the search takes its keys along
create or replace function private.catalog_search_removed() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  delete from data.catalog_search_keys k using removed r where k.anime_id = r.anime_id;
  return null;
end
$$;
create or replace trigger catalog_search_removed after delete on data.catalog_search
  referencing old table as removed for each statement execute function private.catalog_search_removed();

create or replace trigger anime_search_inserted after insert on data.anime
  referencing new table as changed for each statement execute function private.catalog_search_sync();
create or replace trigger anime_search_updated after update on data.anime
  referencing new table as changed for each statement execute function private.catalog_search_sync();

-- data.anime.genres: the display names (Russian, else the name) of a title's genres, in genre
-- name order; data.anime.genre_ids: their ids, ascending (private.genre_ids). The one definition; ingest.publish fills it for new titles with the same function.
-- (No SET clause, so PostgreSQL inlines it into the statements that call it: names are qualified.)
create or replace function private.genre_names(genre_ids integer[]) returns text[]
language sql stable as $$
  select coalesce(array_agg(coalesce(g.name_ru, g.name) order by g.name), '{}')
    from data.genres g where g.id = any (genre_ids)
$$;

create or replace function private.genre_ids(genre_ids integer[]) returns integer[]
language sql immutable parallel safe set search_path = '' as $$
  select array(select distinct g from unnest(genre_ids) g order by g)
$$;

-- Recomputed for the titles a statement touched; titles whose genres did not change are not
-- written (a publish that filled them already costs one comparison each).
create or replace function private.anime_genres_refresh(titles uuid[]) returns void
language sql security definer set search_path = '' as $$
  update data.anime a
     set genres = g.names, genre_ids = g.ids
    from (select t.id, private.genre_names(l.ids) as names, private.genre_ids(l.ids) as ids
            from unnest(titles) t(id)
           cross join lateral (select array(select ag.genre_id from data.anime_genres ag
                                             where ag.anime_id = t.id) as ids) l) g
   where a.id = g.id and (a.genres, a.genre_ids) is distinct from (g.names, g.ids)
$$;

create or replace function private.anime_genres_changed() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if tg_op = 'INSERT' then
    perform private.anime_genres_refresh(array(select distinct anime_id from added));
  elsif tg_op = 'DELETE' then
    perform private.anime_genres_refresh(array(select distinct anime_id from removed));
  else
    perform private.anime_genres_refresh(array(select anime_id from added union select anime_id from removed));
  end if;
  return null;
end
$$;
create or replace trigger anime_genres_inserted after insert on data.anime_genres
  referencing new table as added for each statement execute function private.anime_genres_changed();
create or replace trigger anime_genres_deleted after delete on data.anime_genres
  referencing old table as removed for each statement execute function private.anime_genres_changed();
create or replace trigger anime_genres_updated after update on data.anime_genres
  referencing old table as removed new table as added for each statement execute function private.anime_genres_changed();

-- a renamed genre renames itself on every title that has it
create or replace function private.genre_renamed() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform private.anime_genres_refresh(array(select ag.anime_id from data.anime_genres ag where ag.genre_id = new.id));
  return null;
end
$$;
create or replace trigger genre_renamed after update of name, name_ru on data.genres
  for each row execute function private.genre_renamed();

-- data.genres.anime_count: data.catalog_search holds exactly the published titles, so its rows
-- entering, leaving or changing genres move the counts, by the difference (concurrent writers
-- add up; a statement that changes no genre writes nothing).
create or replace function private.genre_counts_move(gained integer[], lost integer[]) returns void
language sql security definer set search_path = '' as $$
  update data.genres g
     set anime_count = g.anime_count + d.delta
    from (select x.id, sum(x.delta) as delta
            from (select unnest(gained), 1 union all select unnest(lost), -1) x(id, delta)
           group by x.id having sum(x.delta) <> 0) d
   where g.id = d.id
$$;

create or replace function private.genre_counts_changed() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if tg_op = 'INSERT' then
    perform private.genre_counts_move(array(select unnest(a.genre_ids) from added a), '{}');
  elsif tg_op = 'DELETE' then
    perform private.genre_counts_move('{}', array(select unnest(r.genre_ids) from removed r));
  else  -- the rows whose genres changed (anime_id is the key and never changes)
    perform private.genre_counts_move(
      array(select unnest(a.genre_ids) from added a join removed r using (anime_id) where a.genre_ids <> r.genre_ids),
      array(select unnest(r.genre_ids) from added a join removed r using (anime_id) where a.genre_ids <> r.genre_ids));
  end if;
  return null;
end
$$;
create or replace trigger catalog_search_genres_inserted after insert on data.catalog_search
  referencing new table as added for each statement execute function private.genre_counts_changed();
create or replace trigger catalog_search_genres_deleted after delete on data.catalog_search
  referencing old table as removed for each statement execute function private.genre_counts_changed();
create or replace trigger catalog_search_genres_updated after update on data.catalog_search
  referencing old table as removed new table as added for each statement execute function private.genre_counts_changed();

/* What api.search_anime needs from q, computed once per call: the normalised needle and the
   keys and patterns of its tiers 0-2. 2 to 200 characters, else 400. Tier 1 walks the titles
   with a name starting with q's first 3 characters (2 for a 2-letter q) and, for a longer q,
   checks the rest; tier 2 (contains) needs 3 characters. Tier 3's corrections are
   private.search_typos, asked only when that tier is reached. */
-- its OUT columns grow with the search; CREATE OR REPLACE cannot change them, and its one
-- dependant, api.search_anime, was dropped with api just before (ops: database/build.py)
drop function if exists private.search_terms(text);
create function private.search_terms(q text, out needle text, out exact_key text,
                                     out exact text, out prefix_key text, out starts text,
                                     out contains_like text, out contains boolean,
                                     out contains_indexed boolean)
language plpgsql stable set search_path = '' as $$
declare
  typed text;
  titles integer;
  rarest text;  -- the word of q in the fewest titles, of those names have
  fewest integer;
begin
  -- the raw length first: normalising a megabyte q (the gateway's body limit) costs 0.1-0.2 s
  -- of CPU, which an anonymous client could repeat at will
  if length(q) > 200 then
    perform private.raise_error(400, 'query_too_long', 'Search takes at most 200 characters in q.');
  end if;
  needle := private.search_normalize(q);
  if needle is null or length(needle) < 2 then
    perform private.raise_error(400, 'query_too_short', 'Search needs at least 2 characters in q.');
  elsif length(needle) > 200 then
    perform private.raise_error(400, 'query_too_long', 'Search takes at most 200 characters in q.');
  end if;
  exact_key := needle || '|';   -- in data.catalog_search_keys
  exact := '|' || needle || '|';  -- in a document
  prefix_key := left(needle, 3);
  starts := '|' || needle;
  contains := length(needle) >= 3;
  -- A name containing q contains each word of q. The contains tier asks the trigram index about
  -- the word names have in the fewest titles when it is a rare one ('kidousenshi gandamu 0083
  -- jion no zankou': 'zankou'; its first 14 characters are in 6,229 documents at a million
  -- titles, 20 ms to recheck), else about q's first 14 characters ('ie naki ko season 22': not
  -- 'season', in 217,774, 340 ms); each match is then checked for all of q. Not all of q: a
  -- trigram index reads the list of every title holding each of the pattern's trigrams, and
  -- the ends of long names ('... season 2', '(фильм 4)') are the commonest (a 34-character
  -- name: 10 ms for its whole pattern, 0.6 ms for its start, at 100,000 titles).
  -- one primary-key lookup per word (a join would read the whole word table: the planner
  -- cannot tell how many words q has)
  for typed in select w from private.search_words(needle) w loop
    select d.titles into titles from data.catalog_search_words d where d.word = typed and d.titles <= 1000;
    if found and (rarest is null or titles < fewest) then
      rarest := typed;
      fewest := titles;
    end if;
  end loop;
  contains_like := private.search_like(coalesce(rarest, left(needle, 14)));
  -- a pattern without 3 letters or digits in a row ('! +', 'ー(2') has no trigram to look up, and
  -- the index would be read whole (0.2 s at 100,000 titles, and anyone may ask): such a q is
  -- looked for among the 2,000 best-ranked titles only
  contains_indexed := contains_like ~ '[[:alnum:]]{3}';
end
$$;

/* Tier 3 of api.search_anime: q's words corrected to the catalog's own words
   (data.catalog_search_words). Each word of q of 5 or more characters (as Meilisearch allows
   typos: shorter words are one typo away from too many others) that no name has becomes the up
   to 3 closest words that names do have (Levenshtein distance at most 2, so two swapped letters
   count; same first letter and length within 2, which keeps the candidates to one btree range),
   e.g. 'shuonen': shonen|shounen. The tier then finds the titles with a word of every group and
   ranks them by closeness to q. A word nothing is close to: no title has all of q's, no typo
   results. Trigram similarity over whole names, tried first, rechecks every name that shares a
   few trigrams with q (12,000 for 'love love?o va' at 100,000 titles, 90 ms). Only called when
   no name contains q, so the Levenshtein scans cost nothing on the searches that find something. */
create or replace function private.search_typos(needle text, out fuzzy boolean, out fuzzy_groups text[],
                                                out fuzzy_likes text[])
language plpgsql stable set search_path = '' as $$
declare
  typed text;
  closest text;
  titles integer;
  rarest text;     -- the group of q's words (corrected) in the fewest titles
  fewest integer;
begin
  fuzzy := false;
  fuzzy_groups := '{}';
  for typed in select w from private.search_words(needle) w loop
    select d.word, d.titles into closest, titles from data.catalog_search_words d where d.word = typed;
    if not found then
      select string_agg(c.word, '|' order by c.place), sum(c.titles) into closest, titles
        from (select d.word, d.titles, row_number() over (
                       -- two swapped letters are 2 edits for Levenshtein but one typo for a
                       -- person: at the same distance, a word with the same letters first
                       order by public.levenshtein_less_equal(typed, d.word, 2),
                                private.search_letters(d.word) <> private.search_letters(typed),
                                abs(length(d.word) - length(typed)), d.word) as place
                from data.catalog_search_words d
               where d.word >= left(typed, 1) and d.word < left(typed, 1) || chr(1114111)
                 and abs(length(d.word) - length(typed)) <= 2
                 and public.levenshtein_less_equal(typed, d.word, 2) <= 2) c
       where c.place <= 3;
      if closest is null then
        return;
      end if;
    end if;
    fuzzy_groups := fuzzy_groups || closest;
    if rarest is null or titles < fewest then
      rarest := closest;
      fewest := titles;
    end if;
  end loop;
  fuzzy := cardinality(fuzzy_groups) > 0;
  -- the trigram index is asked about one group, a LIKE pattern per word (with a regular
  -- expression pg_trgm finds no trigrams in kana or kanji and reads the whole index): the one in
  -- the fewest titles. Not simply the longest: q's words include the commonest ('gekijouban',
  -- 'фильм', 'specials'; 2,000 candidates for 'мкокэ (фильм 3)' at 100,000 titles, 40 ms). The
  -- other groups are checked on what it finds (words are letters and digits: each group is a
  -- regular expression as it is).
  fuzzy_likes := array(select private.search_like(w) from unnest(string_to_array(rarest, '|')) w);
end
$$;

-- '%value%' for LIKE, with LIKE's own characters escaped
create or replace function private.search_like(value text) returns text
language sql immutable parallel safe set search_path = '' as $$
  select '%' || replace(replace(replace(rtrim(value), '\', '\\'), '%', '\%'), '_', '\_') || '%'
$$;

-- a word's letters in order ('seikatsu': 'aeiksstu'), which two swapped letters keep
create or replace function private.search_letters(word text) returns text
language sql immutable parallel safe set search_path = '' as $$
  select string_agg(c, '' order by c) from pg_catalog.regexp_split_to_table(word, '') c
$$;

-- the words of a normalised name or q that typos are looked for in: runs of letters and digits
-- of 5 or more characters
create or replace function private.search_words(value text) returns setof text
language sql immutable parallel safe set search_path = '' as $$
  select w from pg_catalog.regexp_split_to_table(value, '[^[:alnum:]]+') w where length(w) >= 5
$$;

-- Recounts data.catalog_search_words.titles and drops the words no published title has any more
-- (run by the ingest worker's search_words task, hourly; 1-2 s at 100,000 titles). Returns how
-- many words changed. The counts only pick which word of a typo'd q the index is asked about,
-- so between two runs they may be stale.
create or replace function private.catalog_search_words_refresh() returns integer
language sql security definer set search_path = '' as $$
  with counts as materialized (
    select w.word, count(distinct s.anime_id)::integer as titles
      from data.catalog_search s
     cross join private.search_words(replace(s.doc, '|', ' ')) w(word)
     group by w.word),
  recounted as (
    update data.catalog_search_words d set titles = c.titles
      from counts c
     where c.word = d.word and d.titles <> c.titles
    returning 1),
  dropped as (
    delete from data.catalog_search_words d
     where not exists (select 1 from counts c where c.word = d.word)
    returning 1)
  select ((select count(*) from recounted) + (select count(*) from dropped))::integer
$$;

/* Whether a title's search row passes api.search_anime's filters; a null filter passes all.
   One expression, no SET clause: PostgreSQL inlines it where it is called, and the filters stay
   conditions on the search table's columns. */
create or replace function private.search_passes(kind text, status text, year integer, season text, rating text,
                                                 score numeric, genre_ids integer[],
                                                 want_kind text, want_status text, want_year integer,
                                                 want_season text, want_rating text, min_score numeric,
                                                 want_genre_ids integer[]) returns boolean
language sql immutable parallel safe as $$
  select (want_kind is null or kind = want_kind)
     and (want_status is null or status = want_status)
     and (want_year is null or year = want_year)
     and (want_season is null or season = want_season)
     and (want_rating is null or rating = want_rating)
     and (min_score is null or score >= min_score)
     -- want_genre_ids once: the caller passes a subquery, and PostgreSQL does not inline a
     -- function that would evaluate one twice (genre_ids is never null: null means no filter)
     and coalesce(genre_ids @> want_genre_ids, true)
$$;

/* The options of api.search_anime that need a check or a lookup, once per call: the order (400
   invalid_sort unless one of private.search_sorts()) and the genre ids that genre and genres
   name (a genre's name or Russian name in any case, or its id). All named genres must match:
   a name no genre has becomes -1, which no title carries, so then nothing matches. */
create or replace function private.search_sorts() returns text[]
language sql immutable parallel safe set search_path = '' as $$
  select array['relevance', 'score', 'year', 'title', 'updated']
$$;

create or replace function private.search_options(sort text, genre text, genres text[],
                                                  out sort_key text, out genre_ids integer[])
language plpgsql stable set search_path = '' as $$
declare
  names text[] := array_remove(coalesce(genres, '{}') || genre, null);
begin
  sort_key := coalesce(nullif(btrim(sort), ''), 'relevance');
  if not sort_key = any (private.search_sorts()) then
    perform private.raise_error(400, 'invalid_sort',
      format('sort must be one of %s.', array_to_string(private.search_sorts(), ', ')));
  end if;
  if cardinality(names) > 0 then
    genre_ids := array(
      select coalesce((select g.id from data.genres g
                        where lower(g.name) = lower(btrim(n)) or lower(g.name_ru) = lower(btrim(n))
                           or g.id::text = btrim(n)
                        order by g.id limit 1), -1)
        from unnest(names) n);
  end if;
end
$$;
