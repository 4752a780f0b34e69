-- wrk script for auth_service: POST /auth/login as one of KITSU_BENCH_USERS seeded people
-- (bench-<n>@example.test, password KITSU_BENCH_PASSWORD; every login succeeds), and done()
-- prints one JSON line of figures including the count of each HTTP status.
local threads = {}
local counter = 0
local users = 1000
local password = "bench password"
statuses = {}

function setup(thread)
  thread:set("offset", #threads * 7919)
  table.insert(threads, thread)
end

function init(args)
  users = tonumber(os.getenv("KITSU_BENCH_USERS") or "1000")
  password = os.getenv("KITSU_BENCH_PASSWORD") or password
  counter = offset or 0
end

function request()
  counter = counter + 1
  local body = string.format('{"email":"bench-%d@example.test","password":"%s"}',
                             counter % users + 1, password)
  return wrk.format("POST", "/auth/login", { ["Content-Type"] = "application/json" }, body)
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
