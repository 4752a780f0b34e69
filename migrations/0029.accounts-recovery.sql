-- depends: 0028.favorite-score
-- Password reset and email verification through a mail outbox (issue 11, contract §12): the
-- account's verification time, single-use tokens (hashes only), the outbox the send_mail task
-- delivers, and the rate-limit buckets of the new endpoints. The functions are code (sql/auth/,
-- sql/ingest/, sql/private/mail.sql), rebuilt on migrate; auth.register takes the verification
-- token now, so its old signature goes.
alter table data.users add column email_verified_at timestamptz;
comment on column data.users.email_verified_at is 'When the person proved they read this address (a verification or reset link); null until then.';

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

alter table data.rate_limits drop constraint rate_limits_bucket_known;
alter table data.rate_limits add constraint rate_limits_bucket_known
  check (bucket in ('login_ip_email', 'login_email', 'login_ip', 'refresh_ip', 'register_ip',
                    'forgot_email', 'forgot_ip', 'verify_resend'));
comment on table data.rate_limits is 'Sliding-window counters of auth attempts: login failures per (ip, email), per email and per address, refreshes and registrations per ip, reset requests per email and per address, verification resends per account.';

drop function if exists auth.register(text, text, inet, text, bytea, interval);
