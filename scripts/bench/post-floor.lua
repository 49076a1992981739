-- wrk script: the floor, a bare handler inserting one row per POST (scripts/bench-api.sh).
function request()
  return wrk.format("POST", wrk.path, {["Content-Type"] = "application/json"},
    '{"amount":"25.00","currency":"USD","asset":"anvil:ETH","order_no":"floor"}')
end
local unexpected = 0
function response(status, headers, body)
  if status ~= 201 then unexpected = unexpected + 1 end
end
local threads = {}
function setup(thread) table.insert(threads, thread) end
function done(summary, latency, requests)
  local bad = 0
  for _, thread in ipairs(threads) do bad = bad + (thread:get("unexpected") or 0) end
  io.write(string.format("BENCH requests=%d unexpected=%d p50_us=%d p99_us=%d duration_us=%d\n",
    summary.requests, bad, latency:percentile(50), latency:percentile(99), summary.duration))
end
