-- depends: 0002.watch-history-delete
-- Partial indexes for browsing the published catalog (measured: top-rated page 11 ms -> index scan).
-- catalog browsing (home sections, filters): top-rated, by season, newest airings
create index anime_published_score_idx on data.anime (score desc nulls last) where state = 'published' and deleted_at is null;
create index anime_published_season_idx on data.anime (year, season) where state = 'published' and deleted_at is null;
create index anime_published_aired_idx on data.anime (aired_on desc nulls last) where state = 'published' and deleted_at is null;
