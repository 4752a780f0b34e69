-- depends: 0026.legacy-import
-- A failed-login limit per client address (issue 9, contract §11): the bucket 'login_ip' joins
-- the known rate-limit buckets. The functions that use it are code (sql/auth/), rebuilt on migrate.
alter table data.rate_limits drop constraint rate_limits_bucket_known;
alter table data.rate_limits add constraint rate_limits_bucket_known
  check (bucket in ('login_ip_email', 'login_email', 'login_ip', 'refresh_ip', 'register_ip'));
comment on table data.rate_limits is 'Sliding-window counters of auth attempts: login failures per (ip, email), per email and per address, refreshes and registrations per ip.';
