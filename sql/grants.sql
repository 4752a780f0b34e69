-- Every grant, grouped by role: "what can anon do?" fits on one screen. Applied last by
-- `make migrate` (after the api schema is rebuilt). Defaults are closed: functions are not
-- executable by PUBLIC, and nothing in data/private/auth/ingest is reachable unless listed.

-- Start from nothing: every service role loses everything it holds in our schemas, in the same
-- transaction as the grants below, so a line deleted here is a privilege gone from every
-- existing database (not only from fresh ones). Table revokes take column grants with them.
do $$
declare
  s text;
begin
  foreach s in array array['public', 'data', 'private', 'auth', 'ingest', 'api', 'procrastinate', 'legacy'] loop
    execute format('revoke all on all tables in schema %I from anon, web_user, authenticator, auth_service, ingest_worker, legacy_importer', s);
    execute format('revoke all on all sequences in schema %I from anon, web_user, authenticator, auth_service, ingest_worker, legacy_importer', s);
    execute format('revoke all on all functions in schema %I from anon, web_user, authenticator, auth_service, ingest_worker, legacy_importer', s);
    execute format('revoke all on schema %I from anon, web_user, authenticator, auth_service, ingest_worker, legacy_importer', s);
  end loop;
end $$;

revoke all on schema public from public;
grant usage on schema public to anon, web_user, auth_service, ingest_worker;
revoke execute on all functions in schema private, auth, ingest, api, legacy from public;
alter default privileges for role kitsu_owner revoke execute on functions from public;

-- authenticator (PostgREST login) ----------------------------------------------------------
-- may only become anon / web_user (roles.sql); runs db-pre-request before SET ROLE is checked
grant usage on schema private to authenticator;
grant execute on function private.pre_request(), private.jwt_claims(), private.uid(), private.sid(),
  private.security_headers(), private.response_headers(boolean), private.raise_error(integer, text, text, text, text)
  to authenticator;

-- anon and web_user: shared helpers and the public catalog -----------------------------------
grant usage on schema api, data, private to anon, web_user;
grant execute on function private.pre_request(), private.jwt_claims(), private.uid(), private.sid(),
  private.security_headers(), private.response_headers(boolean),
  private.raise_error(integer, text, text, text, text), private.search_normalize(text),
  private.search_terms(text), private.search_typos(text) to anon, web_user;
grant execute on function private.search_options(text, text, text[]), private.search_sorts(),
  private.search_passes(text, text, integer, text, text, numeric, integer[], text, text, integer, text, text,
                        numeric, integer[]), private.search_like(text), private.search_words(text),
  private.search_letters(text) to anon, web_user;
grant select on data.anime, data.genres, data.anime_genres, data.episodes, data.translations,
  data.episode_sources, data.schedule, data.catalog_search, data.catalog_search_keys,
  data.catalog_search_words to anon, web_user;
-- the order of an episode's players (api.episode_sources preference / preferred)
grant select on data.translation_priorities, data.quality_priorities to anon, web_user;
grant execute on function private.player_preference(integer, text), private.quality_key(text) to anon, web_user;
grant select on api.anime, api.episodes, api.episode_sources, api.schedule to anon, web_user;
grant select on api.genres to anon, web_user;
grant select on data.anime_relations to anon, web_user;
grant select on api.related to anon, web_user;
grant execute on function api.search_anime(text, text, text, integer, text, text, text, numeric, text[], text) to anon, web_user;
-- anonymous catalog reads carry Cache-Control and an ETag (sql/private/catalog_cache.sql)
grant execute on function private.catalog_cache_headers(), private.cacheable_path(text) to anon;
grant select on data.catalog_version to anon;

-- web_user: the caller's own rows (RLS) ----------------------------------------------------
grant execute on function private.has_permission(text), private.revoke_own_session(),
  private.session_live(timestamptz, timestamptz) to web_user;
grant select (id, email, display_name, avatar_url, is_active, created_at) on data.users to web_user;
grant update (display_name, avatar_url) on data.users to web_user;
grant select on data.roles, data.permissions, data.role_permissions, data.user_roles to web_user;
grant select on api.me to web_user;
grant select (email_verified_at) on data.users to web_user;  -- api.me (contract §12)
grant update (display_name, avatar_url) on api.me to web_user;

grant select, delete on data.favorites to web_user;
grant insert (user_id, anime_id, list_status, score, episodes_watched),
  update (anime_id, list_status, score, episodes_watched) on data.favorites to web_user;
grant select, delete on api.favorites to web_user;
grant select on api.list_counts to web_user;
grant insert (anime_id, list_status, score, episodes_watched),
  update (anime_id, list_status, score, episodes_watched) on api.favorites to web_user;

grant select, insert, update on data.watch_progress, data.watch_history to web_user;
grant select on api.continue_watching, api.watch_progress to web_user;
grant select, delete on api.watch_history to web_user;
grant delete on data.watch_history to web_user;
grant execute on function api.save_progress(uuid, integer, integer, numeric, integer, timestamptz) to web_user;
grant execute on function api.import_list(jsonb), private.import_list_status(text) to web_user;
grant execute on function private.import_list_entries(jsonb), private.import_list_score_scale(jsonb),
  private.import_list_read(jsonb, numeric), private.import_list_match(integer, text[]) to web_user;

grant select (id, user_id, created_at, last_used_at, expires_at, revoked_at, user_agent, ip)
  on data.sessions to web_user;
grant update (revoked_at, revoked_reason) on data.sessions to web_user;
grant select, delete on api.sessions to web_user;

-- auth_service -------------------------------------------------------------------------------
-- only the auth functions it calls (security definer, owned by kitsu_owner); nothing in api or
-- data, and not the internal helpers (take_slots, open_session, refund_login, ...).
grant usage on schema auth to auth_service;
grant execute on function
  auth.register_attempt(inet, integer, interval),
  auth.register(text, text, inet, text, bytea, interval, text, interval),
  auth.login_attempt(inet, text, integer, interval, integer, interval, integer, interval, text),
  auth.login(uuid, text, text, inet, text, bytea, interval),
  auth.refund_login(inet, text, boolean),
  auth.refresh(bytea, bytea, inet, interval, integer, interval, text),
  auth.logout(uuid, uuid, bytea, text, inet, text),
  auth.password_attempt(uuid, uuid, inet, integer, interval, integer, interval, integer, interval),
  auth.change_password(uuid, uuid, text, text, inet, text),
  auth.purge(interval)
  to auth_service;
-- accounts: password reset and email verification (contract §12, sql/auth/recovery.sql)
grant execute on function
  auth.forgot_password(inet, text, text, interval, integer, interval, integer, interval),
  auth.reset_token_valid(bytea),
  auth.reset_password(bytea, text, inet, text),
  auth.verify_email(bytea, inet, text),
  auth.resend_verification(uuid, uuid, text, interval, integer, interval),
  auth.sign_in_failed(inet, text, text)  -- auth events (sql/auth/events.sql)
  to auth_service;

-- ingest_worker ----------------------------------------------------------------------------
-- Procrastinate workers and CLI: the queue's tables and functions (no PostgREST role gets any
-- of these), and the ingest.* functions; the data.* tables only through those functions.
grant usage on schema procrastinate, ingest to ingest_worker;
grant select, insert, update, delete on all tables in schema procrastinate to ingest_worker;
grant usage, select on all sequences in schema procrastinate to ingest_worker;
revoke execute on all functions in schema procrastinate from public;
grant execute on all functions in schema procrastinate to ingest_worker;
grant execute on function ingest.acquire_slot(text), ingest.begin_run(text, bigint, jsonb, bigint, integer),
  ingest.note_requests(bigint, bigint, integer),
  ingest.finish_run(bigint, bigint, text, text, text, boolean),
  ingest.stage_anime(bigint, bigint, jsonb, jsonb, text, integer),
  ingest.stage_episodes(bigint, bigint, jsonb, jsonb, integer, integer),
  ingest.stage_schedule(bigint, bigint, jsonb, integer), ingest.publish(bigint, integer[]),
  ingest.trigger_sync(text, jsonb), ingest.tick(text, bigint), ingest.sweep_stalled(double precision),
  ingest.sync_tasks(), ingest.ongoing_shikimori_ids() to ingest_worker;
-- the send_mail task (sql/ingest/mail.sql)
grant execute on function ingest.mail_to_send(bigint), ingest.mail_sent(bigint), ingest.mail_failed(bigint, text)
  to ingest_worker;
-- and its figures on the workers' /metrics (sql/ingest/metrics.sql)
grant execute on function ingest.mail_metrics() to ingest_worker;

-- admin (web_user with RBAC permissions) ----------------------------------------------------
-- Every admin function checks its permission itself (docs/admin-api.md); web_user gets no grant
-- on data for them. The api views read the gated private views as web_user; functions called
-- inside those run as web_user too (the gate and two pure helpers).
grant select on private.admin_anime, private.admin_users, private.admin_audit_log to web_user;
grant execute on function private.admin_gate(text), private.anime_next_states(text),
  private.anime_errors(text, text, text, text, boolean) to web_user;
grant select on api.admin_anime, api.admin_users, api.admin_audit_log to web_user;
grant execute on function
  api.admin_update_anime(uuid, jsonb, text),
  api.admin_create_anime(jsonb, text),
  api.admin_lock_anime(uuid, text[], text),
  api.admin_unlock_anime(uuid, text[], text),
  api.admin_delete_anime(uuid, text),
  api.admin_restore_anime(uuid, text),
  api.admin_grant_role(uuid, text, text),
  api.admin_revoke_role(uuid, text, text)
  to web_user;

-- admin: ingest ----------------------------------------------------------------------------
-- Same pattern (docs/admin-api.md, "Ingest"): the api views read the gated private views, which
-- read data.* and the procrastinate queue with the owner's rights; web_user gets no grant on
-- either. The RPCs are security definer and check their permission first.
grant select on private.admin_ingest_settings, private.admin_sync_runs, private.admin_sync_jobs,
  private.admin_staging_anime to web_user;
grant select on api.admin_ingest_settings, api.admin_sync_runs, api.admin_sync_jobs,
  api.admin_staging_anime to web_user;
grant execute on function
  api.admin_update_ingest_settings(jsonb, text),
  api.admin_set_ingest_mode(text, text),
  api.admin_emergency_stop(text),
  api.admin_resume_ingest(text, text),
  api.admin_trigger_sync(text, jsonb, text),
  api.admin_match(integer, uuid, text),
  api.admin_unmatch(integer, text),
  api.admin_publish(integer[], text)
  to web_user;

-- legacy_importer (the cut-over, contract §13) ------------------------------------------------
-- fills the landing tables (COPY) and runs the import steps (security definer, owned by
-- kitsu_owner); it reads and writes nothing in data.* itself, and its report only through
-- legacy.issues_report().
-- (also granted when a database is created, database/build.py; here for databases created before it)
do $$ begin
  execute format('grant connect on database %I to legacy_importer', current_database());
end $$;
grant usage on schema legacy to legacy_importer;
grant insert, truncate on legacy.users, legacy.roles, legacy.user_roles, legacy.anime, legacy.releases,
  legacy.episodes, legacy.favorites, legacy.watch_progress, legacy.audit_logs, legacy.parser_settings,
  legacy.parser_sources, legacy.anime_external, legacy.anime_external_binding to legacy_importer;
grant execute on function legacy.plan(), legacy.not_carried(), legacy.import_step(text),
  legacy.issues_report() to legacy_importer;

-- admin, complete (issue 13): episodes ------------------------------------------------------
-- Same pattern as the admin blocks above (docs/admin-api.md, "Episodes").
grant select on private.admin_episodes to web_user;
grant select on api.admin_episodes to web_user;
grant execute on function
  api.admin_create_episode(uuid, integer, text, timestamptz, text),
  api.admin_update_episode(uuid, jsonb, text),
  api.admin_lock_episode(uuid, text[], text),
  api.admin_unlock_episode(uuid, text[], text),
  api.admin_delete_episode(uuid, text),
  api.admin_restore_episode(uuid, text),
  api.admin_fix_player(uuid, integer, text, text, text),
  api.admin_hide_player(uuid, integer, boolean, text),
  api.admin_lock_player(uuid, integer, boolean, text)
  to web_user;

-- admin, complete (issue 13): IP bans -------------------------------------------------------
-- db-pre-request refuses banned addresses: the web roles (and authenticator) call the check,
-- a security definer reading data.ip_bans, with the address the gateway saw.
grant execute on function private.ip_banned(inet), private.client_ip(), private.request_header(text)
  to authenticator, anon, web_user;
grant select on private.admin_ip_bans to web_user;
grant select on api.admin_ip_bans to web_user;
grant execute on function api.admin_ban_ip(text, text, timestamptz), api.admin_unban_ip(bigint, text) to web_user;
-- the streaming replica's PostgREST (sql/private/replica.sql): its db-pre-request, run as the
-- request's role like pre_request; the replication status is read by the owner and superusers
grant execute on function private.replica_pre_request(), private.replica_lag_seconds()
  to authenticator, anon, web_user;
-- metrics (ingest/metrics.py, contract §14): the workers' /metrics reads these at scrape time
grant execute on function ingest.queue_metrics(), ingest.sync_progress(), ingest.database_metrics() to ingest_worker;
-- the hourly search_words task (ingest/tasks.py)
grant execute on function ingest.refresh_search_words() to ingest_worker;

-- admin, complete (issue 13): people, roles and permissions -------------------------------
grant execute on function private.admin_gate_any(text[]) to web_user;
grant select on private.admin_user_sessions, private.admin_roles, private.admin_permissions to web_user;
grant select on api.admin_user_sessions, api.admin_roles, api.admin_permissions to web_user;
grant execute on function api.admin_set_user_active(uuid, boolean, text), api.admin_update_user(uuid, text, text),
  api.admin_revoke_sessions(uuid, uuid, text) to web_user;

-- admin, complete (issue 13): ingest review and genres ------------------------------------
-- the preview's expressions run as the caller: two pure helpers
grant execute on function private.anime_content_fields(), private.jsonb_pick(jsonb, text[]) to web_user;
grant select on private.admin_publish_preview, private.admin_genres to web_user;
grant select on api.admin_publish_preview, api.admin_genres to web_user;
grant execute on function api.admin_set_anime_genres(uuid, integer[], text) to web_user;
grant execute on function api.admin_merge_anime(uuid, uuid, text) to web_user;
grant select on private.admin_player_priorities to web_user;
grant select on api.admin_player_priorities to web_user;
grant execute on function api.admin_set_player_priorities(integer[], text[], text) to web_user;
grant select on private.admin_upstream_limits to web_user;
grant select on api.admin_upstream_limits to web_user;
grant execute on function api.admin_set_upstream_limits(text, jsonb, text) to web_user;
grant select on private.admin_player_conflicts to web_user;
grant select on api.admin_player_conflicts to web_user;
grant execute on function api.admin_accept_upstream_player(uuid, integer, text) to web_user;
