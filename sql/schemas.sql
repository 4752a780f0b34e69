-- Schemas and extensions. `data` holds every private table, `private` request helpers and
-- triggers, `auth` the functions auth_service calls, `ingest` the functions and staging
-- tables of the workers, `procrastinate` the job queue, and `api` what PostgREST serves.
create extension if not exists pg_trgm with schema public;
create extension if not exists unaccent with schema public;
-- levenshtein_less_equal: search corrects typos to the catalog's words (sql/private/catalog_search.sql)
create extension if not exists fuzzystrmatch with schema public;

create schema data;
create schema private;
create schema auth;
create schema ingest;
create schema api;

comment on schema api is 'Kitsu public API: views and functions served by PostgREST.';

-- Request context helpers. They are code (re-applied by `make migrate`), but policies call
-- them, so the first version is created here, before the first policy.
create function private.jwt_claims() returns jsonb
language sql stable set search_path = '' as $$
  -- nullif: on a pooled connection a GUC set earlier reads back as '' rather than NULL.
  select coalesce(nullif(current_setting('request.jwt.claims', true), '')::jsonb, '{}'::jsonb)
$$;

create function private.uid() returns uuid
language sql stable set search_path = '' as $$
  select nullif(private.jwt_claims() ->> 'sub', '')::uuid
$$;

