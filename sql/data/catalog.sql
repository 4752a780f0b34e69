-- The public catalog. Each row carries the original system's editorial columns: a state
-- machine (state), soft delete (deleted_*), field locks (locked_fields) and ownership
-- (source, created_by, updated_by). Only published, not deleted rows are visible to anon and
-- web_user; editors work through admin functions.
create table data.anime (
  id              uuid primary key default gen_random_uuid(),
  shikimori_id    integer,
  title           text not null,
  title_ru        text,
  title_en        text,
  title_original  text,
  synonyms        text[] not null default '{}',
  kind            text,
  status          text,
  episodes_total  integer,
  episodes_aired  integer,
  score           numeric(4, 2),
  rating          text,
  year            integer,
  season          text,
  aired_on        date,
  released_on     date,
  next_episode_at timestamptz,
  poster_url      text,
  description     text,
  -- editorial state
  state           text not null default 'draft',
  source          text not null default 'manual',
  locked_fields   text[] not null default '{}',
  locked_by       uuid references data.users (id) on delete set null,
  locked_reason   text,
  locked_at       timestamptz,
  deleted_at      timestamptz,
  deleted_by      uuid references data.users (id) on delete set null,
  delete_reason   text,
  created_by      uuid references data.users (id) on delete set null,
  updated_by      uuid references data.users (id) on delete set null,
  -- fields an editor changed by hand; ingest never overwrites them
  edited_fields   text[] not null default '{}',
  content_hash    text,
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default clock_timestamp(),  -- distinct within a statement
  -- genre names, kept by triggers on data.anime_genres (sql/private/catalog_search.sql)
  genres          text[] not null default '{}',
  -- their ids, ascending (same triggers); filtered through data.catalog_search.genre_ids
  genre_ids       integer[] not null default '{}',
  -- title_ru was made up (the real-title tooling transcribes the romaji), not taken from a
  -- source or written by an editor (migration 0039)
  title_ru_generated boolean not null default false,
  constraint anime_shikimori_id_key unique (shikimori_id),
  constraint anime_shikimori_id_positive check (shikimori_id > 0),
  constraint anime_title_present check (length(btrim(title)) > 0),
  constraint anime_kind_valid check (kind in ('tv', 'movie', 'ova', 'ona', 'special', 'tv_special', 'music', 'pv', 'cm')),
  constraint anime_status_valid check (status in ('anons', 'ongoing', 'released')),
  -- an upstream 0 means unknown and is stored as null
  constraint anime_episodes_total_positive check (episodes_total > 0),
  constraint anime_episodes_aired_nonnegative check (episodes_aired >= 0),
  constraint anime_score_range check (score between 0 and 10),
  constraint anime_rating_valid check (rating in ('none', 'g', 'pg', 'pg_13', 'r', 'r_plus', 'rx')),
  constraint anime_year_range check (year between 1900 and 2100),
  constraint anime_season_valid check (season in ('winter', 'spring', 'summer', 'fall')),
  constraint anime_dates_ordered check (released_on >= aired_on),
  constraint anime_poster_absolute check (poster_url ~ '^https?://'),
  constraint anime_state_valid check (state in ('draft', 'pending', 'published', 'broken', 'archived')),
  constraint anime_source_valid check (source in ('manual', 'parser', 'import')),
  constraint anime_delete_consistent check (deleted_at is not null or (deleted_by is null and delete_reason is null)),
  constraint anime_lock_consistent check (locked_at is not null or (locked_by is null and locked_reason is null)),
  constraint anime_title_ru_generated_needs_title check (not title_ru_generated or title_ru is not null)
);
comment on column data.anime.title_ru_generated is 'title_ru was generated (transcribed), not taken from a source or written by an editor.';
-- catalog browsing (home sections, filters): top-rated, by season, newest airings
-- (the id: the unique tiebreak of stable pages; status: "airing now" is status=eq.ongoing)
create index anime_published_score_idx on data.anime (score desc nulls last, id)
  where state = 'published' and deleted_at is null;
create index anime_published_season_idx on data.anime (year, season, score desc nulls last, id)
  where state = 'published' and deleted_at is null;
create index anime_published_status_idx on data.anime (status, score desc nulls last, id)
  where state = 'published' and deleted_at is null;
create index anime_published_aired_idx on data.anime (aired_on desc nulls last) where state = 'published' and deleted_at is null;
create index anime_state_idx on data.anime (state);
create index anime_locked_by_idx on data.anime (locked_by);
create index anime_deleted_by_idx on data.anime (deleted_by);
create index anime_created_by_idx on data.anime (created_by);
create index anime_updated_by_idx on data.anime (updated_by);
-- catalog pages: keyset paging (updated_at, id) and index-only skipping of deep offsets for the
-- list card's columns
create index anime_published_updated_idx on data.anime (updated_at desc, id desc)
  include (title, title_ru, title_original, kind, status, year, poster_url, score)
  where state = 'published' and deleted_at is null;
alter table data.anime enable row level security;
create policy anime_public_read on data.anime for select to anon, web_user
  using (state = 'published' and deleted_at is null);
comment on table data.anime is 'Catalog titles with editorial state, locks, soft delete and ownership.';

-- Search documents of published titles, kept by triggers on data.anime in the same transaction
-- (sql/private/catalog_search.sql). Public data: the policy is `true`, so pg_trgm's operators,
-- which are not LEAKPROOF, can still use the indexes for anon and web_user.
create table data.catalog_search (
  anime_id uuid primary key references data.anime (id) on delete cascade,
  doc      text not null,
  score    numeric(4, 2),
  kind     text,
  status   text,
  year     integer,
  season   text,
  rating   text,
  genres   text[] not null default '{}',
  genre_ids integer[] not null default '{}'
) with (fillfactor = 90, parallel_workers = 0);  -- room for HOT updates of the filter columns
create index catalog_search_doc_trgm_idx on data.catalog_search using gin (doc public.gin_trgm_ops);
create index catalog_search_rank_idx on data.catalog_search (score desc nulls last, anime_id)
  include (doc, kind, status, year, season, rating, genre_ids);  -- the rank walk of api.search_anime reads only this index
-- api.anime's genre filter (genre_ids=cs.{1,4}): here, not on data.anime, because @> is not
-- LEAKPROOF and so may not be an index condition under anime_public_read
create index catalog_search_genre_ids_idx on data.catalog_search using gin (genre_ids);
alter table data.catalog_search enable row level security;
create policy catalog_search_public_read on data.catalog_search for select to anon, web_user using (true);
comment on table data.catalog_search is 'Search documents of published titles (public; kept by triggers on data.anime).';

-- exact and prefix search through a btree, in rank order
-- Derived rows, written only by private.catalog_search_sync and removed with their document
-- (trigger catalog_search_removed): no primary or foreign key, whose checks would cost more than
-- the rest of a publish (one lookup per row, a dozen rows per title).
create table data.catalog_search_keys (
  key      text collate "C" not null,
  anime_id uuid not null,
  score    numeric(4, 2)
) with (parallel_workers = 0);
create index catalog_search_keys_rank_idx on data.catalog_search_keys (key, score desc nulls last, anime_id);
create index catalog_search_keys_anime_idx on data.catalog_search_keys (anime_id);
alter table data.catalog_search_keys enable row level security;
create policy catalog_search_keys_public_read on data.catalog_search_keys for select to anon, web_user using (true);
comment on table data.catalog_search_keys is 'Btree keys of every name of a published title: its first 2 and 3 characters, and the whole name followed by ''|''.';

-- the words of the published titles' names (5+ letters or digits) that search corrects typos to
-- (private.search_terms), added by private.catalog_search_sync; public like the names they are in
create table data.catalog_search_words (
  word   text collate "C" primary key,
  -- published titles with the word, as of the last private.catalog_search_words_refresh() (the
  -- ingest worker's search_words task, hourly): which word search asks the index about. 0 for
  -- a word added since, which is then taken for a rare one
  titles integer not null default 0
);
alter table data.catalog_search_words enable row level security;
create policy catalog_search_words_public_read on data.catalog_search_words for select to anon, web_user using (true);
comment on table data.catalog_search_words is 'Words (5+ characters) of published titles'' names, normalised: what a typo is corrected to.';

create table data.genres (
  id      integer primary key,
  name    text not null,
  name_ru text,
  -- published titles with this genre, moved by a trigger on data.catalog_search
  anime_count integer not null default 0,
  constraint genres_name_key unique (name)
);
alter table data.genres enable row level security;
create policy genres_public_read on data.genres for select to anon, web_user using (true);
comment on table data.genres is 'Genres as Shikimori numbers them.';

create table data.anime_genres (
  anime_id uuid not null references data.anime (id) on delete cascade,
  genre_id integer not null references data.genres (id) on delete cascade,
  primary key (anime_id, genre_id)
);
create index anime_genres_genre_idx on data.anime_genres (genre_id);
alter table data.anime_genres enable row level security;
create policy anime_genres_public_read on data.anime_genres for select to anon, web_user using (true);
comment on table data.anime_genres is 'Genres of each title.';

create table data.episodes (
  id            uuid primary key default gen_random_uuid(),
  anime_id      uuid not null references data.anime (id) on delete cascade,
  number        integer not null,
  title         text,
  aired_at      timestamptz,
  source        text not null default 'manual',
  locked_fields text[] not null default '{}',
  deleted_at    timestamptz,
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  -- administration (issue 13): as on data.anime; locked_fields holds episode fields,
  -- 'sources' (every player link) or '*' (the whole row); ingest keeps what they name
  edited_fields text[] not null default '{}',
  locked_by     uuid references data.users (id) on delete set null,
  locked_reason text,
  locked_at     timestamptz,
  deleted_by    uuid references data.users (id) on delete set null,
  delete_reason text,
  created_by    uuid references data.users (id) on delete set null,
  updated_by    uuid references data.users (id) on delete set null,
  constraint episodes_anime_number_key unique (anime_id, number),
  constraint episodes_number_positive check (number >= 1),
  constraint episodes_source_valid check (source in ('manual', 'parser', 'import')),
  constraint episodes_delete_consistent check (deleted_at is not null or (deleted_by is null and delete_reason is null)),
  constraint episodes_lock_consistent check (locked_at is not null or (locked_by is null and locked_reason is null))
);
create index episodes_locked_by_idx on data.episodes (locked_by);
create index episodes_deleted_by_idx on data.episodes (deleted_by);
create index episodes_created_by_idx on data.episodes (created_by);
create index episodes_updated_by_idx on data.episodes (updated_by);
alter table data.episodes enable row level security;
-- visible when the episode is live and its anime is visible (the anime policy applies inside)
create policy episodes_public_read on data.episodes for select to anon, web_user
  using (deleted_at is null and exists (select 1 from data.anime a where a.id = anime_id));
comment on table data.episodes is 'Episodes of a title, numbered from 1.';

-- Related titles (sequels, prequels, side stories...), from Shikimori; the other title is kept by
-- its Shikimori id, so a relation to a title not in the catalog yet appears once it is published.
create table data.anime_relations (
  anime_id             uuid not null references data.anime (id) on delete cascade,
  related_shikimori_id integer not null,
  relation             text not null,
  primary key (anime_id, related_shikimori_id),
  constraint anime_relations_related_positive check (related_shikimori_id > 0),
  -- Shikimori's relation kinds (sequel, prequel, side_story, ...) as it names them: a format
  -- check, so a kind it adds later is kept rather than refused
  constraint anime_relations_relation_format check (relation ~ '^[a-z_]{1,40}$')
);
alter table data.anime_relations enable row level security;
-- visible when its title is (the anime policy applies inside); the related title's own policy
-- applies where api.related joins it
create policy anime_relations_public_read on data.anime_relations for select to anon, web_user
  using (exists (select 1 from data.anime a where a.id = anime_id));
comment on table data.anime_relations is 'Related titles of a title (Shikimori''s relation kinds), by the other title''s Shikimori id.';

create table data.translations (
  id    integer primary key,
  title text not null,
  type  text not null,
  constraint translations_type_valid check (type in ('voice', 'subtitles'))
);
alter table data.translations enable row level security;
create policy translations_public_read on data.translations for select to anon, web_user using (true);
comment on table data.translations is 'Kodik translations (voice-over studios and subtitle teams).';

create table data.episode_sources (
  episode_id     uuid not null references data.episodes (id) on delete cascade,
  translation_id integer not null references data.translations (id) on delete cascade,
  quality        text,
  player_url     text not null,
  updated_at     timestamptz not null default now(),
  -- a link fixed by hand (source manual) or locked is never overwritten by ingest; a hidden
  -- one is not public
  source         text not null default 'manual',
  locked_at      timestamptz,
  locked_by      uuid references data.users (id) on delete set null,
  hidden_at      timestamptz,
  hidden_by      uuid references data.users (id) on delete set null,
  updated_by     uuid references data.users (id) on delete set null,
  primary key (episode_id, translation_id),
  constraint episode_sources_player_url_absolute check (player_url ~ '^https://'),
  constraint episode_sources_source_valid check (source in ('manual', 'parser', 'import'))
);
create index episode_sources_translation_idx on data.episode_sources (translation_id);
create index episode_sources_locked_by_idx on data.episode_sources (locked_by);
create index episode_sources_hidden_by_idx on data.episode_sources (hidden_by);
create index episode_sources_updated_by_idx on data.episode_sources (updated_by);
alter table data.episode_sources enable row level security;
create policy episode_sources_public_read on data.episode_sources for select to anon, web_user
  using (hidden_at is null and exists (select 1 from data.episodes e where e.id = episode_id));
comment on table data.episode_sources is 'How to play an episode: one Kodik player per translation.';

create table data.schedule (
  anime_id       uuid not null references data.anime (id) on delete cascade,
  episode_number integer not null,
  airs_at        timestamptz not null,
  updated_at     timestamptz not null default now(),
  primary key (anime_id, episode_number),
  constraint schedule_episode_positive check (episode_number >= 1)
);
create index schedule_airs_at_idx on data.schedule (airs_at);
alter table data.schedule enable row level security;
create policy schedule_public_read on data.schedule for select to anon, web_user
  using (exists (select 1 from data.anime a where a.id = anime_id));
comment on table data.schedule is 'Upcoming airings from the Shikimori calendar.';

-- Which player to offer first (issue 13; the old parser's preferred_translation_priority and
-- preferred_quality_priority as data): 1 = most preferred; unlisted translations and qualities
-- come after every listed one. Edited with rpc/admin_set_player_priorities; public through
-- api.episode_sources (preference, preferred).
create table data.translation_priorities (
  translation_id integer primary key references data.translations (id) on delete cascade,
  priority       integer not null,
  updated_by     uuid references data.users (id) on delete set null,
  updated_at     timestamptz not null default now(),
  constraint translation_priorities_priority_range check (priority between 1 and 1000),
  constraint translation_priorities_priority_key unique (priority)
);
create index translation_priorities_updated_by_idx on data.translation_priorities (updated_by);
alter table data.translation_priorities enable row level security;
create policy translation_priorities_public_read on data.translation_priorities for select to anon, web_user using (true);
comment on table data.translation_priorities is 'Preferred translations, in order (1 first): which player an episode offers first.';

-- quality: the resolution token of a player's quality ("BDRip 1080p" -> 1080p), or the whole
-- quality in lower case when it has none
create table data.quality_priorities (
  quality    text primary key,
  priority   integer not null,
  updated_by uuid references data.users (id) on delete set null,
  updated_at timestamptz not null default now(),
  constraint quality_priorities_quality_format check (quality ~ '^[a-z0-9][a-z0-9 ._-]{0,39}$'),
  constraint quality_priorities_priority_range check (priority between 1 and 1000),
  constraint quality_priorities_priority_key unique (priority)
);
create index quality_priorities_updated_by_idx on data.quality_priorities (updated_by);
alter table data.quality_priorities enable row level security;
create policy quality_priorities_public_read on data.quality_priorities for select to anon, web_user using (true);
comment on table data.quality_priorities is 'Preferred qualities, in order (1 first), after the translation''s priority.';

-- The public catalog's version: one counter that every write of a catalog table moves
-- (sql/private/catalog_cache.sql), the ETag of anonymous catalog responses (contract §10).
create table data.catalog_version (
  id         boolean primary key default true,
  version    bigint not null default 1,
  changed_at timestamptz not null default now(),
  constraint catalog_version_one_row check (id)
);
alter table data.catalog_version enable row level security;
create policy catalog_version_public on data.catalog_version for select to anon, web_user using (true);
comment on table data.catalog_version is 'One row: moves on every write of a public catalog table (the ETag of anonymous catalog responses).';
insert into data.catalog_version default values;
