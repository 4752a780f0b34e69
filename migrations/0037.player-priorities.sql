-- depends: 0036.search-typo-words
-- The old parser's translation and quality priorities as data (issue 13): which player an
-- episode offers first. Views, functions and grants are code.
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
