-- wrk script for auth_service: POST /auth/login as one of KITSU_BENCH_USERS seeded people
-- (bench-<n>@example.test, password KITSU_BENCH_PASSWORD; every login succeeds), and done()
-- prints one JSON line of figures including the count of each HTTP status. Each person signs in
-- from an address of their own (X-Forwarded-For; the bench trusts 127.0.0.1 as its proxy). With
-- KITSU_BENCH_MODE=flood it is one client instead: random unknown emails, one address. With
-- KITSU_BENCH_MODE=forgot (ops/bench/accounts.py) each request is POST /auth/password/forgot,
-- alternating a seeded person and an unknown email.
local threads = {}
local counter = 0
local users = 1000
local password = "bench password"
local flood = false
local forgot = false
statuses = {}

function setup(thread)
  thread:set("offset", #threads * 7919)
  table.insert(threads, thread)
end

function init(args)
  users = tonumber(os.getenv("KITSU_BENCH_USERS") or "1000")
  password = os.getenv("KITSU_BENCH_PASSWORD") or password
  counter = offset or 0
  flood = os.getenv("KITSU_BENCH_MODE") == "flood"
  forgot = os.getenv("KITSU_BENCH_MODE") == "forgot"
end

function request()
  counter = counter + 1
  local person = counter % users + 1
  local email = string.format("bench-%d@example.test", person)
  local address = string.format("10.77.%d.%d", math.floor(person / 250), person % 250 + 1)
  if flood then
    email = string.format("flood-%d-%d@example.test", counter, math.random(1e9))
    address = "203.0.113.66"
  end
  if forgot then
    if counter % 2 == 0 then
      email = string.format("nobody-%d-%d@example.test", counter, math.random(1e9))
    end
    return wrk.format("POST", "/auth/password/forgot",
                      { ["Content-Type"] = "application/json", ["X-Forwarded-For"] = address },
                      string.format('{"email":"%s"}', email))
  end
  local body = string.format('{"email":"%s","password":"%s"}', email, password)
  return wrk.format("POST", "/auth/login",
                    { ["Content-Type"] = "application/json", ["X-Forwarded-For"] = address }, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    local counts = thread:get("statuses")
    for status, count in pairs(counts) do
      merged[status] = (merged[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(merged) do
    parts[#parts + 1] = string.format('"%d": %d', status, count)
  end
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "rps": %.1f, "p50_ms": %.2f, "p95_ms": %.2f, ' ..
    '"p99_ms": %.2f, "max_ms": %.2f, "errors_connect": %d, "errors_read": %d, ' ..
    '"errors_write": %d, "errors_timeout": %d, "statuses": {%s}}\n',
    summary.requests, seconds, summary.requests / seconds,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.timeout, table.concat(parts, ", ")))
end
