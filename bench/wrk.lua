-- The bench's wrk script (bench/run.py's http-* scenarios): the request's method and body come
-- from the environment (WRK_METHOD, WRK_BODY; a body is sent urlencoded), and done() prints the
-- run's figures as one JSON line that bench/run.py reads (latencies in microseconds).
local method = os.getenv("WRK_METHOD")
if method and method ~= "" then
   wrk.method = method
end
local body = os.getenv("WRK_BODY")
if body and body ~= "" then
   wrk.body = body
   wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      '\nWRK_JSON {"requests": %d, "duration_us": %d, "bytes": %d, "latency_p50_us": %d,'
      .. ' "latency_p90_us": %d, "latency_p99_us": %d, "latency_max_us": %d,'
      .. ' "errors_connect": %d, "errors_read": %d, "errors_write": %d, "errors_status": %d,'
      .. ' "errors_timeout": %d}\n',
      summary.requests, summary.duration, summary.bytes, latency:percentile(50),
      latency:percentile(90), latency:percentile(99), latency.max,
      e.connect, e.read, e.write, e.status, e.timeout))
end
