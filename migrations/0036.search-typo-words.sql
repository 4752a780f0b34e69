-- depends: 0035.anime-relations
-- Search speed (issue 10): typos are corrected word by word against the catalog's own words
-- instead of trigram similarity over every name (sql/private/catalog_search.sql says why).
-- levenshtein_less_equal measures the distance.
create extension if not exists fuzzystrmatch with schema public;

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

-- the words of the titles published so far, with their counts (the triggers add those of every
-- later write, the worker's hourly task recounts)
insert into data.catalog_search_words (word, titles)
select w, count(distinct s.anime_id)
  from data.catalog_search s
 cross join regexp_split_to_table(replace(s.doc, '|', ' '), '[^[:alnum:]]+') w
 where length(w) >= 5
 group by w
 order by 1;
