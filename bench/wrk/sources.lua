-- wrk script for the Caravan benchmark. Chosen by environment:
--   BENCH_KIND   get | gettoken (get, with a token in BENCH_KEY) | patch | list | query
--   BENCH_QUERY_ID  query: the source whose database runs SELECT 1
--   BENCH_KEY    the API key (or the token), sent as Authorization: Bearer
--   BENCH_ID_MIN / BENCH_ID_MAX   get and patch pick a source id uniformly in this range
--   BENCH_PAGE   list: the page number (page_size is 50)
-- done() prints one machine-readable line: RESULT requests= rps= mean_ms= p50_ms= p99_ms= non2xx= errors=
local kind = os.getenv("BENCH_KIND") or "get"
-- patch1 is PATCH on one connection: the same requests, its own row in the results.
if kind == "patch1" then kind = "patch" end
local key = os.getenv("BENCH_KEY") or ""
local id_min = tonumber(os.getenv("BENCH_ID_MIN") or "1")
local id_max = tonumber(os.getenv("BENCH_ID_MAX") or "1")
local page = os.getenv("BENCH_PAGE") or "1"
local query_id = os.getenv("BENCH_QUERY_ID") or "1"
local query_body = '{"sql": "SELECT 1"}'

local headers = { ["Authorization"] = "Bearer " .. key }
local patch_headers = { ["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json" }
local list_path = "/api/v1/sources/?page=" .. page .. "&page_size=50"

local next_seed = 1
function setup(thread)
  thread:set("seed", next_seed)
  next_seed = next_seed + 7919
end

function init(args)
  math.randomseed(seed or 1)
end

function request()
  if kind == "list" then
    return wrk.format("GET", list_path, headers)
  end
  if kind == "query" then
    return wrk.format("POST", "/api/v1/sources/" .. query_id .. "/query/", patch_headers, query_body)
  end
  local id = math.random(id_min, id_max)
  if kind == "patch" then
    local body = '{"port": ' .. math.random(1024, 65535) .. '}'
    return wrk.format("PATCH", "/api/v1/sources/" .. id .. "/update-config/", patch_headers, body)
  end
  return wrk.format("GET", "/api/v1/sources/" .. id .. "/", headers)
end

function done(summary, latency, requests)
  local seconds = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format("RESULT requests=%d rps=%.1f mean_ms=%.3f p50_ms=%.3f p99_ms=%.3f non2xx=%d errors=%d\n",
    summary.requests, summary.requests / seconds, latency.mean / 1000,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    e.status, e.connect + e.read + e.write + e.timeout))
end
