-- wrk script of the Kotally benchmark; bench/run.py drives it:
--   wrk ... -s bench/kotally.lua http://127.0.0.1:PORT -- MODE TOKEN LOCATION CONTACTS TAG CONFIG
-- MODE: check | deduct | mix (90 % check, 10 % deduct) | summary.
-- Contacts are drawn at random from bc1..bcCONTACTS; every deduct has a unique request_id
-- (TAG-thread-counter). Each response's status and reason_code are counted, and done() prints one
-- line "BENCHJSON {...}" that bench/run.py parses.

local threads = {}
local next_thread = 0

function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_no", next_thread)
  table.insert(threads, thread)
end

local mode, location, contacts, tag, config
local headers = {}
local counter = 0
counts = {}

function init(args)
  mode = args[1]
  location = args[3]
  contacts = tonumber(args[4])
  tag = args[5]
  config = args[6]
  headers["Authorization"] = "Bearer " .. args[2]
  headers["Content-Type"] = "application/json"
  math.randomseed(os.time() * 1000 + thread_no * 7919)
end

local function check()
  local body = string.format(
    '{"location_id":"%s","ghl_contact_id":"bc%d","product_config_id":"%s","amount":1}',
    location, math.random(contacts), config)
  return wrk.format("POST", "/api/v2/entitlements/check-eligibility", headers, body)
end

local function deduct()
  counter = counter + 1
  local body = string.format(
    '{"location_id":"%s","request_id":"%s-%d-%d","ghl_contact_id":"bc%d",' ..
    '"product_config_id":"%s","amount":1}',
    location, tag, thread_no, counter, math.random(contacts), config)
  return wrk.format("POST", "/api/v2/entitlements/deduct", headers, body)
end

local function summary()
  local path = string.format("/api/v2/contacts/bc%d/summary?location_id=%s",
    math.random(contacts), location)
  return wrk.format("GET", path, headers)
end

function request()
  if mode == "check" then
    return check()
  elseif mode == "deduct" then
    return deduct()
  elseif mode == "mix" then
    if math.random(10) == 1 then return deduct() end
    return check()
  else
    return summary()
  end
end

function response(status, _, body)
  local code = string.match(body or "", '"reason_code":"([^"]*)"') or "-"
  local ok = string.match(body or "", '"ok":(%a+)') or "-"
  local key = status .. " " .. ok .. " " .. code
  counts[key] = (counts[key] or 0) + 1
end

function done(summary, latency, _)
  local total = {}
  for _, thread in ipairs(threads) do
    local c = thread:get("counts")
    for key, n in pairs(c) do total[key] = (total[key] or 0) + n end
  end
  local parts = {}
  for key, n in pairs(total) do table.insert(parts, string.format('"%s":%d', key, n)) end
  local e = summary.errors
  io.write(string.format(
    'BENCHJSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,"max_us":%d,' ..
    '"mean_us":%.1f,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"codes":{%s}}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.max, latency.mean, e.connect, e.read, e.write, e.status, e.timeout,
    table.concat(parts, ",")))
end
