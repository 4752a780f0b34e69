-- The mail outbox (data.mail_outbox): queueing a mail in the caller's transaction, and what an
-- operator reads about delivery. auth.* functions queue; the send_mail task (ingest/mail.py)
-- delivers through ingest.mail_* (sql/ingest/mail.sql).

/* Queue the send_mail job of one outbox row, in the caller's transaction (so a rolled-back
   request leaves neither). lock = queueing_lock = 'mail:<id>': one delivery of a mail runs at a
   time and at most one waits. Returns the job id, or null when a job already waits. Called by
   private.queue_mail and by the stalled-job sweeper (a worker died while sending). */
create or replace function private.defer_mail(p_outbox_id bigint) returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_lock text := 'mail:' || p_outbox_id;
  v_ids bigint[];
begin
  begin
    v_ids := procrastinate.procrastinate_defer_jobs_v1(array[
      row('mail', 'send_mail', 0, v_lock, v_lock, jsonb_build_object('outbox_id', p_outbox_id), null)
        ::procrastinate.procrastinate_job_to_defer_v1]);
  exception when unique_violation then
    return null;
  end;
  return v_ids[1];
end
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
