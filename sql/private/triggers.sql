-- Row triggers on data tables. Code: re-applied by `make migrate` (create or replace trigger).

-- clock_timestamp(), not now(): rows written by one statement (an ingest publish) get distinct
-- times, so keyset paging on updated_at (docs: README "Paging") has next to no ties to step over.
create or replace function private.touch_updated_at() returns trigger
language plpgsql set search_path = '' as $$
begin
  new.updated_at := clock_timestamp();
  return new;
end
$$;

create or replace trigger users_touch before update on data.users
  for each row execute function private.touch_updated_at();
create or replace trigger anime_touch before update on data.anime
  for each row execute function private.touch_updated_at();
create or replace trigger episodes_touch before update on data.episodes
  for each row execute function private.touch_updated_at();
create or replace trigger favorites_touch before update on data.favorites
  for each row execute function private.touch_updated_at();

-- A favorite is keyed by its title: moving it to another title is a delete plus an insert.
create or replace function private.favorites_keep_keys() returns trigger
language plpgsql set search_path = '' as $$
begin
  if new.anime_id <> old.anime_id or new.user_id <> old.user_id then
    perform private.raise_error(400, 'immutable_field', 'A favorite''s anime_id cannot change; delete it and add the other title.');
  end if;
  return new;
end
$$;
create or replace trigger favorites_keep_keys before update on data.favorites
  for each row execute function private.favorites_keep_keys();

-- episodes_watched is at most the title's episodes_total when that is known (a check constraint
-- cannot look at another table). Raised as a check violation (23514, PostgREST: 400) that names
-- the rule, like favorites_score_1_to_10 and favorites_episodes_watched_nonnegative.
create or replace function private.favorites_episodes_within_total() returns trigger
language plpgsql set search_path = '' as $$
declare
  total integer;
begin
  select a.episodes_total into total from data.anime a where a.id = new.anime_id;
  if new.episodes_watched > total then
    raise exception using errcode = 'check_violation', schema = 'data', table = 'favorites',
      constraint = 'favorites_episodes_watched_within_total',
      message = format('episodes_watched %s is more than the title''s %s episodes '
                       '(favorites_episodes_watched_within_total).', new.episodes_watched, total);
  end if;
  return new;
end
$$;
create or replace trigger favorites_episodes_within_total before insert or update of episodes_watched, anime_id
  on data.favorites for each row execute function private.favorites_episodes_within_total();

/* ... and stays so when the title's episodes_total is lowered (or first becomes known) below what
   someone has watched, by an editor or by ingest: every such list entry is clamped to the new
   total in the same statement, so a list shows "12 / 12" (all of it) rather than "20 / 12", and
   the change is never refused (a corrected episode count must not depend on what people
   watched). list_status is left as it is (the person decides whether it is completed), and
   raising the total later does not bring the old count back. docs/errors.md. Security definer:
   the entries are other people's rows, hidden from the editor's or the worker's role by RLS. */
create or replace function private.favorites_clamp_episodes_watched() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  update data.favorites f set episodes_watched = new.episodes_total
   where f.anime_id = new.id and f.episodes_watched > new.episodes_total;
  return null;
end
$$;
create or replace trigger anime_episodes_total_clamps_favorites after update of episodes_total on data.anime
  for each row when (new.episodes_total < coalesce(old.episodes_total, 2147483647))
  execute function private.favorites_clamp_episodes_watched();

/* A favorite, progress or history row points at a published title only (contract §11). The
   check runs as the caller, whose row policy (anime_public_read) hides draft, pending, broken,
   archived and deleted titles: a hidden id answers exactly like an unknown one (404, same body;
   before the foreign key, whose 409 would name the difference) and nothing is stored. The owner
   (migrations, the legacy import) sees every title. */
create or replace function private.require_published_anime() returns trigger
language plpgsql set search_path = '' as $$
begin
  if not exists (select 1 from data.anime a where a.id = new.anime_id) then
    perform private.raise_error(404, 'anime_not_found', 'No published title has this anime_id.');
  end if;
  return new;
end
$$;
create or replace trigger favorites_published_anime before insert or update of anime_id on data.favorites
  for each row execute function private.require_published_anime();
create or replace trigger watch_progress_published_anime before insert or update of anime_id on data.watch_progress
  for each row execute function private.require_published_anime();
create or replace trigger watch_history_published_anime before insert or update of anime_id on data.watch_history
  for each row execute function private.require_published_anime();

-- New people get the `user` role (contract §6).
create or replace function private.grant_default_role() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  insert into data.user_roles (user_id, role) values (new.id, 'user') on conflict do nothing;
  return new;
end
$$;
create or replace trigger users_default_role after insert on data.users
  for each row execute function private.grant_default_role();
