-- wrk script: POST a chat completion with a client key; print a JSON summary line at the end.
-- usage: wrk ... -s post.lua URL -- PATH KEY BODY
local req

function init(args)
  req = wrk.format("POST", args[1], {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. args[2],
  }, args[3])
end

function request()
  return req
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"errors_connect":%d,"errors_read":%d,' ..
    '"errors_write":%d,"errors_status":%d,"errors_timeout":%d,"p50_us":%d,"p90_us":%d,' ..
    '"p99_us":%d,"mean_us":%.1f,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean,
    latency.max))
end
