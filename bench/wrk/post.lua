-- POSTs JSON bodies to wrk's URL, cycling through the lines of $BODIES (one JSON body a line),
-- and prints one JSON line of figures at the end (latencies in microseconds).
local bodies = {}
for line in io.lines(os.getenv("BODIES")) do
  bodies[#bodies + 1] = line
end
local counter = 0

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"

function setup(thread)
  thread:set("offset", #bodies > 0 and math.random(#bodies) or 0)
end

function request()
  counter = counter + 1
  local body = bodies[(counter + offset) % #bodies + 1]
  return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    'WRKJSON {"requests": %d, "duration_us": %d, "mean_us": %d, "p50_us": %d, "p90_us": %d, '
      .. '"p99_us": %d, "non_2xx": %d, "socket_errors": %d}\n',
    summary.requests, summary.duration, latency.mean, latency:percentile(50),
    latency:percentile(90), latency:percentile(99), errors.status,
    errors.connect + errors.read + errors.write + errors.timeout))
end
