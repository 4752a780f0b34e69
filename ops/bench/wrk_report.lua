-- wrk script: each request takes the next "path<TAB>token" line of the file named by
-- KITSU_BENCH_REQUESTS (token may be empty), below KITSU_BENCH_PREFIX (the gateway's /rest), and
-- done() prints one JSON line of figures.
local lines = {}
local prefix = os.getenv("KITSU_BENCH_PREFIX") or ""
local index = 0

function init(args)
  for line in io.lines(os.getenv("KITSU_BENCH_REQUESTS")) do
    local path, token = line:match("^([^\t]*)\t?(.*)$")
    lines[#lines + 1] = { path = path, token = token }
  end
  index = math.random(#lines)
end

function request()
  index = index % #lines + 1
  local entry = lines[index]
  local headers = {}
  if entry.token ~= "" then headers["Authorization"] = "Bearer " .. entry.token end
  return wrk.format("GET", prefix .. entry.path, headers)
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  io.write(string.format(
    '{"requests": %d, "seconds": %.3f, "rps": %.1f, "bytes": %d, "p50_ms": %.2f, "p95_ms": %.2f, ' ..
    '"p99_ms": %.2f, "max_ms": %.2f, "errors_connect": %d, "errors_read": %d, "errors_write": %d, ' ..
    '"errors_status": %d, "errors_timeout": %d}\n',
    summary.requests, seconds, summary.requests / seconds, summary.bytes,
    latency:percentile(50) / 1000, latency:percentile(95) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.errors.connect, summary.errors.read, summary.errors.write,
    summary.errors.status, summary.errors.timeout))
end
