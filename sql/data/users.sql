-- People who sign in. Emails are stored normalised (trimmed, lower-case) so equality is the
-- case-insensitive comparison the contract asks for, and the unique key enforces it.
create table data.users (
  id            uuid primary key default gen_random_uuid(),
  email         text not null,
  password_hash text not null,
  display_name  text,
  avatar_url    text,
  is_active     boolean not null default true,
  created_at    timestamptz not null default now(),
  updated_at    timestamptz not null default now(),
  email_verified_at timestamptz,
  constraint users_email_key unique (email),
  constraint users_email_normalised check (email = lower(btrim(email))),
  constraint users_email_shape check (email ~ '^[^@\s]+@[^@\s]+\.[^@\s]+$' and length(email) <= 254),
  constraint users_password_hash_known check (password_hash ~ '^\$(argon2id|2[aby])\$'),
  constraint users_display_name_length check (display_name is null or length(btrim(display_name)) between 1 and 64),
  constraint users_avatar_url_https check (avatar_url is null or (avatar_url ~ '^https://' and length(avatar_url) <= 2048))
);
alter table data.users enable row level security;
create policy users_self_read on data.users for select to web_user
  using (id = (select private.uid()));
create policy users_self_update on data.users for update to web_user
  using (id = (select private.uid())) with check (id = (select private.uid()));
comment on table data.users is 'People who sign in; password_hash is argon2id (or legacy bcrypt until the next sign-in).';
comment on column data.users.email_verified_at is 'When the person proved they read this address (a verification or reset link); null until then.';

-- One row per sign-in (device). Access tokens carry its id as `sid`; db-pre-request refuses a
-- token whose session is revoked or expired, so revoking here kills the tokens at once.
create table data.sessions (
  id           uuid primary key default gen_random_uuid(),
  user_id      uuid not null references data.users (id) on delete cascade,
  created_at   timestamptz not null default now(),
  last_used_at timestamptz not null default now(),
  expires_at   timestamptz not null,
  revoked_at   timestamptz,
  revoked_reason text,
  user_agent   text,
  ip           inet,
  constraint sessions_expiry_after_creation check (expires_at > created_at),
  constraint sessions_revocation_has_reason check ((revoked_at is null) = (revoked_reason is null)),
  constraint sessions_user_agent_length check (length(user_agent) <= 512)
);
create index sessions_user_id_idx on data.sessions (user_id);
alter table data.sessions enable row level security;
create policy sessions_self_read on data.sessions for select to web_user
  using (user_id = (select private.uid()));
create policy sessions_self_revoke on data.sessions for update to web_user
  using (user_id = (select private.uid())) with check (user_id = (select private.uid()));
comment on table data.sessions is 'Sign-in sessions (devices); revoked_at ends one, expires_at bounds its refreshes.';
