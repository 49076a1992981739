-- wrk script: the floor, a bare handler inserting one row per POST.
function request()
  return wrk.format("POST", wrk.path, {["Content-Type"] = "application/json"},
    '{"amount":"25.00","currency":"USD","asset":"bsc:USDT","fixed_stablecoin_rate":true}')
end
