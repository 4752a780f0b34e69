-- depends: 0037.player-priorities
-- Russian titles that were made up rather than taken from a source (issue 10): the real-title
-- catalog (bangumi-data) has no Russian names, so the tooling generates them (a Polivanov
-- transcription of the romaji) and marks them here; api.anime exposes the marker.
-- the publish preview's view uses data.anime's row type, which PostgreSQL will not alter under
-- it: dropped here (with the api view on it), re-created by the code rebuild after the migrations
drop view if exists private.admin_publish_preview_all cascade;
alter table data.anime add column title_ru_generated boolean not null default false;
alter table data.anime add constraint anime_title_ru_generated_needs_title
  check (not title_ru_generated or title_ru is not null);
comment on column data.anime.title_ru_generated is 'title_ru was generated (transcribed), not taken from a source or written by an editor.';
