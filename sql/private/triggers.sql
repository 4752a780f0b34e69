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
