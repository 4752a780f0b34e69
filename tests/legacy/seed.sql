-- Representative rows of the old system, with every defect the import repairs or skips. Ids are
-- readable: users 0000000u-…, anime a…, releases b…, episodes e…, favorites f…, progress p…,
-- audit c…, roles d…, user_roles 9…. %(hash)s is the legacy hash of "old password".
insert into users (id, email, password_hash, avatar, is_active, created_at) values
  ('00000001-0000-4000-8000-000000000000', ' Alice@Example.com', %(hash)s, 'https://cdn.example.com/alice.png', true, '2023-01-01'),
  ('00000002-0000-4000-8000-000000000000', 'alice@example.com', %(hash2)s, null, true, '2024-01-01'),   -- merged into alice
  ('00000003-0000-4000-8000-000000000000', 'bob@example.com', %(hash)s, '/media/avatars/bob.png', false, '2023-02-01'),
  ('00000004-0000-4000-8000-000000000000', 'not-an-email', %(hash)s, null, true, '2023-03-01'),
  ('00000005-0000-4000-8000-000000000000', 'carol@example.com', 'plaintext', null, true, '2023-04-01'),
  ('00000006-0000-4000-8000-000000000000', 'dave@example.com', %(hash)s, null, true, '2023-05-01');

insert into roles (id, name, display_name, is_system) values
  ('d0000001-0000-4000-8000-000000000000', 'user', 'User', true),
  ('d0000002-0000-4000-8000-000000000000', 'admin', 'Admin', true),
  ('d0000003-0000-4000-8000-000000000000', 'vip', 'VIP', false),
  ('d0000004-0000-4000-8000-000000000000', 'parser_bot', 'Parser', true),
  ('d0000005-0000-4000-8000-000000000000', 'moderator', 'Moderator', true);
insert into user_roles (id, user_id, role_id, granted_by, granted_at) values
  ('90000001-0000-4000-8000-000000000000', '00000001-0000-4000-8000-000000000000', 'd0000002-0000-4000-8000-000000000000', null, '2023-06-01'),
  ('90000002-0000-4000-8000-000000000000', '00000001-0000-4000-8000-000000000000', 'd0000002-0000-4000-8000-000000000000', null, '2023-06-02'),  -- duplicate
  ('90000003-0000-4000-8000-000000000000', '00000002-0000-4000-8000-000000000000', 'd0000002-0000-4000-8000-000000000000', null, '2024-06-01'),  -- duplicate after the merge
  ('90000004-0000-4000-8000-000000000000', '00000006-0000-4000-8000-000000000000', 'd0000003-0000-4000-8000-000000000000', null, '2023-06-01'),  -- unknown role
  ('90000005-0000-4000-8000-000000000000', '00000006-0000-4000-8000-000000000000', 'd0000004-0000-4000-8000-000000000000', null, '2023-06-01'),  -- system role
  ('90000006-0000-4000-8000-000000000000', '00000006-0000-4000-8000-000000000000', 'd0000005-0000-4000-8000-000000000000', '00000001-0000-4000-8000-000000000000', '2023-07-01'),
  ('90000007-0000-4000-8000-000000000000', '00000004-0000-4000-8000-000000000000', 'd0000001-0000-4000-8000-000000000000', null, '2023-06-01');  -- user not imported

insert into anime (id, title, title_ru, description, poster_url, year, season, status, genres, state, source,
                   is_locked, locked_fields, locked_at, is_deleted, deleted_at, delete_reason, created_by, created_at, updated_at) values
  ('a0000001-0000-4000-8000-000000000000', 'Cowboy Bebop', 'Ковбой Бибоп', 'Space.', 'https://img.example.com/1.jpg', 1998, 'spring', 'released',
   '["Экшен"]', 'published', 'parser', true, null, '2023-08-01', false, null, null, '00000001-0000-4000-8000-000000000000', '2023-01-01', '2023-08-01'),
  ('a0000002-0000-4000-8000-000000000000', 'Trigun', null, null, null, 1998, 'spring', 'released',
   null, 'draft', 'manual', true, '{title,description}', null, true, null, 'duplicate', null, '2023-01-02', '2023-09-01'),
  ('a0000003-0000-4000-8000-000000000000', '   ', null, null, null, null, null, null,
   null, 'published', 'manual', false, null, null, false, null, null, null, '2023-01-03', null),
  ('a0000004-0000-4000-8000-000000000000', 'Monster', null, null, 'cdn/monster.jpg', 2004, 'autumn', 'released',
   null, 'weird', 'import', false, null, null, false, null, null, '00000004-0000-4000-8000-000000000000', '2023-01-04', null);

insert into releases (id, anime_id, title) values
  ('b0000001-0000-4000-8000-000000000000', 'a0000001-0000-4000-8000-000000000000', 'Season 1'),
  ('b0000002-0000-4000-8000-000000000000', 'a0000001-0000-4000-8000-000000000000', 'Season 1 (again)'),
  ('b0000003-0000-4000-8000-000000000000', 'a0000003-0000-4000-8000-000000000000', 'Season 1');
insert into episodes (id, release_id, number, title, iframe_url, source, is_locked, locked_fields, is_deleted, updated_at) values
  ('e0000001-0000-4000-8000-000000000000', 'b0000001-0000-4000-8000-000000000000', 1, 'Asteroid Blues', '//kodik/1', 'parser', false, null, false, '2023-01-01'),
  ('e0000002-0000-4000-8000-000000000000', 'b0000001-0000-4000-8000-000000000000', 2, 'Stray Dog Strut', null, 'parser', true, null, false, '2023-01-01'),
  ('e0000003-0000-4000-8000-000000000000', 'b0000002-0000-4000-8000-000000000000', 1, 'Asteroid Blues (dup)', null, 'parser', false, null, true, '2022-01-01'),
  ('e0000004-0000-4000-8000-000000000000', 'b0000001-0000-4000-8000-000000000000', 0, 'Preview', null, 'parser', false, null, false, null),
  ('e0000005-0000-4000-8000-000000000000', 'b0000003-0000-4000-8000-000000000000', 1, 'Nothing', null, 'manual', false, null, false, null);

insert into favorites (id, user_id, anime_id, created_at) values
  ('f0000001-0000-4000-8000-000000000000', '00000001-0000-4000-8000-000000000000', 'a0000001-0000-4000-8000-000000000000', '2023-02-01'),
  ('f0000002-0000-4000-8000-000000000000', '00000001-0000-4000-8000-000000000000', 'a0000002-0000-4000-8000-000000000000', '2023-02-02'),
  ('f0000003-0000-4000-8000-000000000000', '00000001-0000-4000-8000-000000000000', 'a0000003-0000-4000-8000-000000000000', '2023-02-03'),  -- title not imported
  ('f0000004-0000-4000-8000-000000000000', '00000002-0000-4000-8000-000000000000', 'a0000001-0000-4000-8000-000000000000', '2022-02-01'),  -- duplicate after the merge
  ('f0000005-0000-4000-8000-000000000000', '00000002-0000-4000-8000-000000000000', 'a0000004-0000-4000-8000-000000000000', '2024-02-01'),  -- moves to alice
  ('f0000006-0000-4000-8000-000000000000', '00000003-0000-4000-8000-000000000000', 'a0000001-0000-4000-8000-000000000000', '2023-03-01'),
  ('f0000007-0000-4000-8000-000000000000', '00000004-0000-4000-8000-000000000000', 'a0000001-0000-4000-8000-000000000000', '2023-03-01');  -- user not imported
insert into watch_progress (id, user_id, anime_id, episode, position_seconds, progress_percent, created_at, last_watched_at) values
  ('c1000001-0000-4000-8000-000000000000', '00000001-0000-4000-8000-000000000000', 'a0000001-0000-4000-8000-000000000000', 2, 300, 40, '2023-02-01', '2023-05-01'),
  ('c1000002-0000-4000-8000-000000000000', '00000002-0000-4000-8000-000000000000', 'a0000001-0000-4000-8000-000000000000', 1, 100, 10, '2024-02-01', '2024-05-01'),  -- duplicate after the merge
  ('c1000003-0000-4000-8000-000000000000', '00000002-0000-4000-8000-000000000000', 'a0000002-0000-4000-8000-000000000000', 3, null, 150, '2024-02-01', '2024-05-02'),  -- clamped, moves to alice
  ('c1000004-0000-4000-8000-000000000000', '00000001-0000-4000-8000-000000000000', 'a0000003-0000-4000-8000-000000000000', 1, 10, null, '2023-02-01', '2023-05-01'),  -- title not imported
  ('c1000005-0000-4000-8000-000000000000', '00000003-0000-4000-8000-000000000000', 'a0000001-0000-4000-8000-000000000000', 0, 10, null, '2023-02-01', '2023-05-01'),  -- episode 0
  ('c1000006-0000-4000-8000-000000000000', '00000003-0000-4000-8000-000000000000', 'a0000002-0000-4000-8000-000000000000', 1, null, null, '2023-02-01', '2023-05-01');  -- no position

insert into audit_logs (id, actor_id, actor_type, action, entity_type, entity_id, before, after, ip_address, created_at) values
  ('cc000001-0000-4000-8000-000000000000', '00000001-0000-4000-8000-000000000000', 'user', 'anime.update', 'anime', 'a0000001-0000-4000-8000-000000000000', '{"title": "Bebop"}', '{"title": "Cowboy Bebop"}', '203.0.113.7', '2023-08-01'),
  ('cc000002-0000-4000-8000-000000000000', null, 'robot', 'anime.update', 'anime', null, null, null, null, '2023-08-02'),
  ('cc000003-0000-4000-8000-000000000000', null, 'user', 'anime.update', 'anime', null, null, null, null, '2023-08-03'),
  ('cc000004-0000-4000-8000-000000000000', null, 'system', 'parser.sync', 'parser', null, null, null, 'not an address', '2023-08-04'),
  ('cc000005-0000-4000-8000-000000000000', null, 'system', 'Anime Update', 'anime', null, null, null, null, '2023-08-05');

insert into parser_sources (id, code) values (1, 'shikimori'), (2, 'kodik');
insert into parser_settings (mode, stage_only, publish_enabled, enable_autoupdate, update_interval_minutes,
                             allowed_translation_types, allowed_translations, allowed_qualities, blacklist_titles, blacklist_external_ids)
  values ('auto', false, true, true, 30, '["voice", "sub", "dub"]', '["AniLibria"]', '["720p"]', '["hentai"]', '["123", "abc"]');
insert into anime_external (id, anime_id, source_id, external_id, matched_by) values
  (1, 'a0000001-0000-4000-8000-000000000000', 1, '1', 'manual'),
  (2, null, 1, '30', null),
  (3, null, 2, 'kodik-7', null);
insert into anime_external_binding (anime_external_id, anime_id, bound_by) values
  (2, 'a0000002-0000-4000-8000-000000000000', 'admin'),
  (3, 'a0000004-0000-4000-8000-000000000000', 'admin');
