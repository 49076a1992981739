-- wrk script: POST /api/v1/orders with the asset chosen and a fixed stablecoin rate.
-- IDEMPOTENCY=1 in the environment adds a unique Idempotency-Key to every request.
local key = os.getenv("COFFER_BENCH_KEY")
local idem = os.getenv("IDEMPOTENCY") == "1"
-- NO_ASSET=1: the buyer chooses later (no address derivation on the hot path).
local body = '{"amount":"25.00","currency":"USD","asset":"bsc:USDT","fixed_stablecoin_rate":true}'
if os.getenv("NO_ASSET") == "1" then body = '{"amount":"25.00","currency":"USD"}' end
local counter = 0
local thread_id = 0
function setup(thread)
  thread_id = thread_id + 1
  thread:set("tid", thread_id)
end
function request()
  counter = counter + 1
  local headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. key,
  }
  if idem then
    headers["Idempotency-Key"] = "bench-" .. tostring(tid) .. "-" .. tostring(counter)
  end
  return wrk.format("POST", wrk.path, headers, body)
end
local errors = 0
function response(status, headers, body)
  if status ~= 201 then
    errors = errors + 1
    if errors < 3 then io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n") end
  end
end
