-- depends: 0027.auth-login-ip
-- A personal score and episodes watched on favorites (issue 10, contract §15). The bound by the
-- title's episode count is a trigger (code: sql/private/triggers.sql, rebuilt on migrate), as are
-- the view api.favorites and the grants.
alter table data.favorites
  add column score integer,
  add column episodes_watched integer not null default 0,
  add constraint favorites_score_1_to_10 check (score between 1 and 10),
  add constraint favorites_episodes_watched_nonnegative check (episodes_watched >= 0);
comment on table data.favorites is 'A person''s list: one row per title, with a list status, a personal score and episodes watched.';
