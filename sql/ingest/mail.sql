-- What the send_mail task (ingest/mail.py) calls: one transaction each, so an attempt is counted
-- before the SMTP conversation starts and the mail is marked delivered right after it ends.

/* Start a delivery attempt of one outbox row: counts the attempt and returns what the mail
   needs. No row when the mail was already delivered (a repeated job: it is not sent again) or
   does not exist. */
create or replace function ingest.mail_to_send(p_outbox_id bigint)
returns table (kind text, recipient text, token text, message_id text, attempts integer)
language sql volatile security definer set search_path = '' as $$
  update data.mail_outbox m set attempts = m.attempts + 1, last_attempt_at = now()
   where m.id = p_outbox_id and m.sent_at is null
  returning m.kind, m.recipient, m.token, m.message_id, m.attempts
$$;

-- The SMTP server accepted the mail: delivered, and the link's token is no longer kept.
create or replace function ingest.mail_sent(p_outbox_id bigint) returns void
language sql volatile security definer set search_path = '' as $$
  update data.mail_outbox m set sent_at = now(), token = null
   where m.id = p_outbox_id and m.sent_at is null
$$;

-- A delivery attempt failed (the job is retried later): counted, with its error.
create or replace function ingest.mail_failed(p_outbox_id bigint, p_error text) returns void
language sql volatile security definer set search_path = '' as $$
  update data.mail_outbox m set failures = m.failures + 1, last_error = pg_catalog.left(p_error, 1000)
   where m.id = p_outbox_id and m.sent_at is null
$$;
