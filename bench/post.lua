-- wrk script: POST a chat completion with a client key; print a JSON summary line at the end.
-- usage: wrk ... -s post.lua URL -- PATH KEY BODY [HEADER: VALUE ...]
--   KEY   a client key, or @FILE of lines "KEY MODEL": requests cycle over them, each with its
--         model put into BODY's "model" field (so one run spreads over many keys and models)
--   BODY  the JSON body, or @FILE holding it (a big prompt does not fit in an argument)
--   HEADER: VALUE  extra headers sent with every request (a peer's routing headers)
local reqs, n, i = {}, 0, 0

local function slurp(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("*a")
  f:close()
  return text
end

function init(args)
  local path, key, body = args[1], args[2], args[3]
  if body:sub(1, 1) == "@" then body = slurp(body:sub(2)) end
  local headers = { ["Content-Type"] = "application/json" }
  for j = 4, #args do
    local name, value = args[j]:match("^([^:]+):%s*(.*)$")
    headers[name] = value
  end
  local pairs_ = {}
  if key:sub(1, 1) == "@" then
    for line in io.lines(key:sub(2)) do
      local k, model = line:match("^(%S+)%s+(%S+)$")
      if k then pairs_[#pairs_ + 1] = { k, model } end
    end
  else
    pairs_[1] = { key, nil }
  end
  for _, pair in ipairs(pairs_) do
    local h = {}
    for name, value in pairs(headers) do h[name] = value end
    if pair[1] ~= "" then h["Authorization"] = "Bearer " .. pair[1] end
    local b = body
    if pair[2] then
      b = body:gsub('"model":%s*"[^"]*"', '"model":"' .. pair[2] .. '"', 1)
    end
    n = n + 1
    reqs[n] = wrk.format("POST", path, h, b)
  end
end

function request()
  i = i % n + 1
  return reqs[i]
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
