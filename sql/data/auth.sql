-- auth_service state: refresh tokens (hashes only) and rate-limit counters. Nobody but the
-- security-definer functions of sql/auth/ touches these tables: RLS is on and no role has a
-- policy or a grant, so even a mistaken grant would show no rows.

/* One row per refresh token ever issued to a session. Only SHA-256 of the token is stored.
   The session's current token is the row with rotated_at null (at most one: the partial
   unique index). Older rows stay until the session ends, so presenting any of them is
   recognised as reuse (theft signal) rather than as an unknown token. parent_id links a token
   to the one it replaced: the grace window applies only to the parent of the current token. */
create table data.refresh_tokens (
  id          bigint generated always as identity primary key,
  session_id  uuid not null references data.sessions (id) on delete cascade,
  token_hash  bytea not null,
  parent_id   bigint references data.refresh_tokens (id) on delete set null,
  created_at  timestamptz not null default now(),
  rotated_at  timestamptz,
  constraint refresh_tokens_token_hash_key unique (token_hash),
  constraint refresh_tokens_hash_is_sha256 check (length(token_hash) = 32),
  constraint refresh_tokens_rotated_after_creation check (rotated_at is null or rotated_at >= created_at)
);
create unique index refresh_tokens_one_current_per_session on data.refresh_tokens (session_id)
  where rotated_at is null;
create index refresh_tokens_session_id_idx on data.refresh_tokens (session_id);
create index refresh_tokens_parent_id_idx on data.refresh_tokens (parent_id);
alter table data.refresh_tokens enable row level security;
comment on table data.refresh_tokens is 'SHA-256 of every refresh token of a session; rotated_at null marks the current one.';
comment on column data.refresh_tokens.parent_id is 'The token this one replaced (grace window: only the current token''s parent may be re-presented).';

/* Sliding-window rate limits, shared by every auth_service process and replica. One row per
   (bucket, subject) holds the times of the attempts still inside the window (at most `limit`
   of them: a refused attempt is not recorded, so hammering does not extend a lockout).
   expires_at = newest hit + window: after it the row is empty and auth.purge() deletes it. */
create table data.rate_limits (
  bucket     text not null,
  subject    text not null,
  hits       timestamptz[] not null default '{}',
  expires_at timestamptz not null default now(),
  primary key (bucket, subject),
  constraint rate_limits_bucket_known check (bucket in ('login_ip_email', 'login_email', 'login_ip', 'refresh_ip', 'register_ip',
                                                    'forgot_email', 'forgot_ip', 'verify_resend')),
  constraint rate_limits_subject_length check (length(subject) between 1 and 400),
  constraint rate_limits_hits_bounded check (cardinality(hits) <= 10000)
);
create index rate_limits_expires_at_idx on data.rate_limits (expires_at);
alter table data.rate_limits enable row level security;
comment on table data.rate_limits is 'Sliding-window counters of auth attempts: login failures per (ip, email), per email and per address, refreshes and registrations per ip, reset requests per email and per address, verification resends per account.';
comment on column data.rate_limits.hits is 'Times of the attempts counted in the current window (oldest first).';

/* Password-reset and email-verification tokens (contract §12): 256 random bits, mailed as a
   link; only SHA-256 is stored. Single use (used_at), short-lived (expires_at). */
create table data.account_tokens (
  id          bigint generated always as identity primary key,
  user_id     uuid not null references data.users (id) on delete cascade,
  purpose     text not null,
  token_hash  bytea not null,
  created_at  timestamptz not null default now(),
  expires_at  timestamptz not null,
  used_at     timestamptz,
  constraint account_tokens_token_hash_key unique (token_hash),
  constraint account_tokens_hash_is_sha256 check (length(token_hash) = 32),
  constraint account_tokens_purpose_known check (purpose in ('password_reset', 'email_verification')),
  constraint account_tokens_expiry_after_creation check (expires_at > created_at)
);
create index account_tokens_user_id_idx on data.account_tokens (user_id, purpose);
create index account_tokens_expires_at_idx on data.account_tokens (expires_at);
alter table data.account_tokens enable row level security;
comment on table data.account_tokens is 'SHA-256 of each password-reset and email-verification token; used_at marks it spent.';

/* The mail outbox: a row is written in the transaction of the request that asks for the mail
   (so a mail exists exactly when its request committed), and a send_mail job is queued in the same
   transaction. The worker counts attempts and failures and keeps the last error; sent_at marks it
   delivered (never sent again). The token of the link stays only until delivery. */
create table data.mail_outbox (
  id              bigint generated always as identity primary key,
  user_id         uuid references data.users (id) on delete set null,
  kind            text not null,
  recipient       text not null,
  token           text,
  message_id      text not null,
  created_at      timestamptz not null default now(),
  attempts        integer not null default 0,
  failures        integer not null default 0,
  last_error      text,
  last_attempt_at timestamptz,
  sent_at         timestamptz,
  constraint mail_outbox_message_id_key unique (message_id),
  constraint mail_outbox_kind_known check (kind in ('password_reset', 'email_verification')),
  constraint mail_outbox_sent_keeps_no_token check (sent_at is null or token is null),
  constraint mail_outbox_failures_counted check (failures between 0 and attempts),
  constraint mail_outbox_last_error_length check (length(last_error) <= 1000)
);
create index mail_outbox_user_id_idx on data.mail_outbox (user_id);
create index mail_outbox_unsent_idx on data.mail_outbox (id) where sent_at is null;
alter table data.mail_outbox enable row level security;
comment on table data.mail_outbox is 'Mail to deliver, written in the transaction of the request; the send_mail task delivers it.';
comment on column data.mail_outbox.token is 'The link''s token until the mail is delivered (then cleared); only its hash is in account_tokens.';
comment on column data.mail_outbox.message_id is 'Message-ID of every delivery attempt, so a duplicate delivery is recognisable as one.';
-- IP bans (security.ban.ip / security.unban.ip; issue 13): refused at sign-in, registration and
-- refresh (auth.*) and on every PostgREST request (private.pre_request) while unlifted and not
-- expired. One unlifted ban per network (banning it again updates that row); "is this address
-- banned" is a containment search (network >>= ip) over the unlifted rows.
create table data.ip_bans (
  id          bigint generated always as identity primary key,
  network     cidr not null,
  reason      text not null,
  expires_at  timestamptz,
  created_by  uuid references data.users (id) on delete set null,
  created_at  timestamptz not null default now(),
  updated_at  timestamptz not null default now(),
  lifted_at   timestamptz,
  lifted_by   uuid references data.users (id) on delete set null,
  lift_reason text,
  constraint ip_bans_reason_present check (length(btrim(reason)) between 1 and 500),
  constraint ip_bans_lift_consistent check (lifted_at is not null or (lifted_by is null and lift_reason is null))
);
create unique index ip_bans_network_unlifted_key on data.ip_bans (network) where lifted_at is null;
create index ip_bans_network_idx on data.ip_bans using gist (network inet_ops) where lifted_at is null;
create index ip_bans_created_by_idx on data.ip_bans (created_by);
create index ip_bans_lifted_by_idx on data.ip_bans (lifted_by);
alter table data.ip_bans enable row level security;
comment on table data.ip_bans is 'Banned client addresses or networks (security.ban.ip); refused at sign-in, registration, refresh and every PostgREST request.';
