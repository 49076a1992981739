-- wrk script for scripts/bench-api.sh: POST /api/v1/orders, every request a new order (the
-- floor gets the same requests, so the client does the same work on every line).
--
-- Environment: BENCH_KEY (the API key), BENCH_RUN (a run id unique across the warm-up
-- and measured runs of one benchmark), BENCH_ASSET (e.g. "anvil:ETH"; empty: no asset, the
-- buyer chooses on the checkout), BENCH_ORDER_NO=1 (a unique order_no per request),
-- BENCH_IDEMPOTENCY=1 (a unique Idempotency-Key per request).
--
-- wrk runs each thread in its own Lua state: setup() (in the main state) gives each thread
-- its own prefix, so numbers and keys never repeat across threads or runs. done() reads
-- every thread's count of answers other than 201 and prints it for the script to check.
local key = os.getenv("BENCH_KEY")
local run = os.getenv("BENCH_RUN") or "run"
local asset = os.getenv("BENCH_ASSET") or ""
local with_no = os.getenv("BENCH_ORDER_NO") == "1"
local with_key = os.getenv("BENCH_IDEMPOTENCY") == "1"

local threads = {}
function setup(thread)
  table.insert(threads, thread)
  thread:set("prefix", run .. "-t" .. #threads)
end

local counter = 0
local unexpected = 0
function request()
  counter = counter + 1
  local id = prefix .. "-" .. counter
  local body = '{"amount":"25.00","currency":"USD"'
  if asset ~= "" then body = body .. ',"asset":"' .. asset .. '"' end
  if with_no then body = body .. ',"order_no":"' .. id .. '"' end
  body = body .. '}'
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. key,
  }
  if with_key then headers["Idempotency-Key"] = id end
  return wrk.format("POST", wrk.path, headers, body)
end

function response(status, headers, body)
  if status ~= 201 then
    unexpected = unexpected + 1
    if unexpected < 3 then io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n") end
  end
end

function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + (thread:get("unexpected") or 0) end
  io.write(string.format("BENCH requests=%d unexpected=%d p50_us=%d p99_us=%d duration_us=%d\n",
    summary.requests, bad, latency:percentile(50), latency:percentile(99), summary.duration))
end
