-- The mail outbox (data.mail_outbox): queueing a mail in the caller's transaction, and what an
-- operator reads about delivery. auth.* functions queue; the send_mail task (ingest/mail.py)
-- delivers through ingest.mail_* (sql/ingest/mail.sql).

/* Queue one Procrastinate job from SQL, in the caller's transaction; null when a job with the
   same queueing lock already waits (procrastinate_defer_jobs_v1 raises unique_violation then).
   Used by ingest.defer (syncs) and private.defer_mail. */
create or replace function private.defer_job(p_queue text, p_task text, p_lock text, p_queueing_lock text,
                                             p_args jsonb)
returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_ids bigint[];
begin
  v_ids := procrastinate.procrastinate_defer_jobs_v1(array[
    row(p_queue, p_task, 0, p_lock, p_queueing_lock, p_args, null)::procrastinate.procrastinate_job_to_defer_v1]);
  return v_ids[1];
exception when unique_violation then
  return null;
end
$$;

/* Queue the send_mail job of one outbox row, in the caller's transaction (so a rolled-back
   request leaves neither). queueing_lock = 'mail:<id>': at most one job of a mail waits, and a
   new one is made only when none is left (at the insert, or by the stalled-job sweeper after it
   failed the job of a dead worker), so one delivery of a mail runs at a time. No `lock`:
   Procrastinate's fetch checks every waiting job's lock against the others, which with
   thousands of mails waiting made each fetch take ~0.6 s (bench-accounts: 1 mail/s). */
create or replace function private.defer_mail(p_outbox_id bigint) returns bigint
language sql volatile security definer set search_path = '' as $$
  select private.defer_job('mail', 'send_mail', null, 'mail:' || p_outbox_id,
                           jsonb_build_object('outbox_id', p_outbox_id))
$$;

/* Write one mail to the outbox and queue its delivery. The Message-ID is chosen here, once, so
   that every delivery attempt of this row (and so any duplicate) carries the same one. */
create or replace function private.queue_mail(p_user_id uuid, p_kind text, p_recipient text, p_token text)
returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_id bigint;
begin
  insert into data.mail_outbox (user_id, kind, recipient, token, message_id)
  values (p_user_id, p_kind, p_recipient, p_token, '<' || pg_catalog.gen_random_uuid() || '@kitsu.mail>')
  returning id into v_id;
  perform private.defer_mail(v_id);
  return v_id;
end
$$;

/* Delivery at a glance, for operators (psql as the owner): mails delivered, waiting, failed
   attempts so far, mails still failing, and the newest error with its time. */
create or replace view private.mail_delivery as
select count(*) filter (where m.sent_at is not null) as delivered,
       count(*) filter (where m.sent_at is null) as pending,
       coalesce(sum(m.failures), 0)::bigint as failed_attempts,
       count(*) filter (where m.sent_at is null and m.failures > 0) as failing,
       (select e.last_error from data.mail_outbox e where e.last_error is not null
         order by e.last_attempt_at desc nulls last, e.id desc limit 1) as last_error,
       max(m.last_attempt_at) filter (where m.last_error is not null) as last_error_at,
       max(m.sent_at) as last_delivered_at
  from data.mail_outbox m;
comment on view private.mail_delivery is 'Outbox delivery counts (delivered, pending, failed attempts, failing) and the last error.';
