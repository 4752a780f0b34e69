-- depends: 0033.auth-events
-- Related titles (issue 10, contract §15): sequels, prequels, side stories and the rest of a
-- franchise, from the `related` field of Shikimori's GraphQL answer, filled by ingest publish.
-- The other title is kept by its Shikimori id, so a relation to a title the catalog does not
-- have yet appears once that title is published (api.related resolves it on read).
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
