-- depends: 0001.foundation
-- People may forget entries of their own per-episode history (api.watch_history DELETE).
create policy watch_history_owner_delete on data.watch_history for delete to web_user
  using (user_id = (select private.uid()));
