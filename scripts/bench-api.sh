#!/usr/bin/env bash
# Benchmark POST /api/v1/orders against its floor (a bare axum handler inserting one row into
# SQLite with the same durability settings), over HTTP/1.1 keep-alive with wrk.
#
#   scripts/bench-api.sh [duration=30s] [connections=64]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-30s}
CONNECTIONS=${2:-64}
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
cargo build --release -q -p coffer-api --example bench_api
bin=${CARGO_TARGET_DIR:-target}/release/examples/bench_api
out=$(mktemp)
"$bin" >"$out" &
server=$!
trap 'kill $server 2>/dev/null || true; rm -f "$out"' EXIT
for _ in $(seq 100); do grep -q key= "$out" && break; sleep 0.1; done
read -r coffer_addr floor_addr key < <(sed 's/coffer=//; s/floor=//; s/key=//' "$out")
export COFFER_BENCH_KEY=$key
run() { wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency "$@"; }
echo "== floor: bare axum handler, one SQLite row per request"
run -s scripts/bench/post-floor.lua "http://$floor_addr/floor"
echo "== coffer: POST /api/v1/orders (asset chosen, fixed rate), no Idempotency-Key"
run -s scripts/bench/post-order.lua "http://$coffer_addr/api/v1/orders"
echo "== coffer: POST /api/v1/orders with a unique Idempotency-Key per request"
IDEMPOTENCY=1 run -s scripts/bench/post-order.lua "http://$coffer_addr/api/v1/orders"
echo "== coffer: POST /api/v1/orders without an asset (no address derivation), no Idempotency-Key"
NO_ASSET=1 run -s scripts/bench/post-order.lua "http://$coffer_addr/api/v1/orders"
