#!/usr/bin/env bash
# Benchmark order creation on the product: the release `coffer serve` with a real
# configuration (an EVM chain on a local anvil, a Bitcoin chain on the bcoin regtest node,
# real xpubs set with `coffer wallet set`, watchers and every background task running, the
# per-key rate limit off, SQLite with its default durability), against its floor (a bare axum
# handler inserting one row into SQLite with the same durability: crates/api/examples/bench_api.rs).
#
#   scripts/bench-api.sh [duration=20s] [connections=64] [warm-up=5s]
#
# Every request makes a new order: a unique order_no (and Idempotency-Key) per request across
# the warm-up and measured runs, checked afterwards against the database (rows counted). Per
# line: orders/s, p50/p99 (wrk), and the server's CPU per order from /proc/<pid>/stat
# (utime+stime over the measured run ÷ orders). wrk runs on the same machine.
#
# Environment: BENCH_BIN=<path> benchmarks that binary instead of building this tree's;
# PERF=1 adds a profiled run of the EVM line (perf record -g on the server; not one of the
# measured lines) and prints perf report's top lines; KEEP=1 keeps the data directory;
# NO_BUILD=1 uses the binaries already built.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-20s}
CONNECTIONS=${2:-64}
WARMUP=${3:-5s}
THREADS=2
command -v wrk >/dev/null || { echo "needs wrk (apt-get install wrk)" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "needs sqlite3 (apt-get install sqlite3)" >&2; exit 1; }
anvil=tests/evm/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil
[ -x "$anvil" ] || { echo "needs anvil: run scripts/test.sh once (npm ci in tests/evm)" >&2; exit 1; }
[ -d tools/bitcoin-regtest/node_modules/bcoin ] || tools/bitcoin-regtest/install.sh

target=${CARGO_TARGET_DIR:-target}
if [ -z "${NO_BUILD:-}" ]; then
    cargo build --release -q -p coffer-api --example bench_api
    [ -n "${BENCH_BIN:-}" ] || cargo build --release -q -p coffer --bin coffer
fi
BENCH_BIN=${BENCH_BIN:-$target/release/coffer}
floor_bin=$target/release/examples/bench_api

data=$(mktemp -d "$target/bench-data/api-XXXXXX" 2>/dev/null || { mkdir -p "$target/bench-data"; mktemp -d "$target/bench-data/api-XXXXXX"; })
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [ -n "${KEEP:-}" ] || rm -rf "$data"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for() { # <what> <command…>: up to 30 s
    local what=$1; shift
    for _ in $(seq 300); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
    echo "gave up waiting for $what" >&2; exit 1
}

# The chains: anvil mining a block every 2 s (the watcher scans them), bcoin regtest.
anvil_port=$(free_port)
"$anvil" --port "$anvil_port" --block-time 2 --quiet >"$data/anvil.log" 2>&1 &
pids+=($!)
node tools/bitcoin-regtest/regtest-node.js --port 0 --rpcuser coffer --rpcpassword bench \
    >"$data/bcoin.out" 2>"$data/bcoin.log" &
pids+=($!)
wait_for "anvil" curl -sf -X POST -H 'Content-Type: application/json' \
    -d '{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}' "http://127.0.0.1:$anvil_port/"
wait_for "bcoin" grep -q '"ready":true' "$data/bcoin.out"
bcoin_port=$(sed -n 's/.*"port":\([0-9]*\).*/\1/p' "$data/bcoin.out" | head -1)

port=$(free_port)
config=$data/coffer.toml
cat >"$config" <<EOF
listen = "127.0.0.1:$port"
data_dir = "$data/coffer"
log_level = "warn"

[api]
rate_limit_per_minute = 0

[rates]
sources = ["fixed"]

[rates.fixed]
"ETH/USD" = "3000"
"BTC/USD" = "65000"

[[chains]]
id = "anvil"
kind = "evm"
network = "regtest"
chain_id = 31337
rpc = ["http://127.0.0.1:$anvil_port/"]
confirmations = 1
native = { symbol = "ETH", decimals = 18 }

[[chains]]
id = "bitcoin"
kind = "bitcoin"
network = "regtest"
rpc = ["http://127.0.0.1:$bcoin_port/"]
rpc_user = "coffer"
rpc_password = "bench"
confirmations = 1
native = { symbol = "BTC", decimals = 8 }
EOF
# The binary with none of the caller's COFFER_* variables (they would configure it).
mapfile -t unset_coffer < <(env | sed -n 's/^\(COFFER_[A-Za-z0-9_]*\)=.*/-u\n\1/p')
coffer_cmd=(env "${unset_coffer[@]}" "$BENCH_BIN" --config "$config")
coffer() { "${coffer_cmd[@]}" "$@"; }
# The account xpub m/44'/60'/0' of the test mnemonic (anvil's accounts) and BIP-84's
# m/84'/1'/0' tpub of "abandon … about".
evm_xpub=xpub6BemYiVNp19ZzUSZng6uUnx3dQm5eRwcjTjZh2wBRosHnSF4QNykc8MvSiJcUseh3sA1WL82iquWY2bRBv8Qqsn8ugJK63aLXKyPosCnGUv
btc_tpub=tpubDC8msFGeGuwnKG9Upg7DM2b4DaRqg3CUZa5g8v2SRQ6K4NSkxUgd7HsL2XVWbVm39yBA4LAxysQAm397zwQSQoQgewGiYZqrA9DsP4zbQ1M
created=$(coffer merchant create --name bench --json)
merchant=$(sed -n 's/.*"merchant_id":"\([^"]*\)".*/\1/p' <<<"$created")
export BENCH_KEY
BENCH_KEY=$(sed -n 's/.*"api_key":"\([^"]*\)".*/\1/p' <<<"$created")
coffer wallet set --merchant "$merchant" --chain anvil --xpub "$evm_xpub" >/dev/null
coffer wallet set --merchant "$merchant" --chain bitcoin --xpub "$btc_tpub" >/dev/null

"${coffer_cmd[@]}" serve >"$data/coffer.log" 2>&1 & # env execs coffer: $! is its pid
server=$!
pids+=($server)
wait_for "coffer serve" curl -sf "http://127.0.0.1:$port/readyz"

"$floor_bin" >"$data/floor.out" &
floor=$!
pids+=($floor)
wait_for "the floor" grep -q key= "$data/floor.out"
floor_addr=$(sed 's/.*floor=\([^ ]*\).*/\1/' "$data/floor.out")

db=$data/coffer/coffer.db
rows() { sqlite3 "file:$db?mode=ro" "SELECT (SELECT count(*) FROM orders), (SELECT count(*) FROM idempotency_keys)"; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
ticks_per_s=$(getconf CLK_TCK)
bench() { # <run id> <url> <lua> → the BENCH line of wrk's output
    BENCH_RUN=$1 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$2" --latency -s "$4" "$3" | grep '^BENCH'
}
field() { sed -n "s/.* $1=\([0-9]*\).*/\1/p" <<<" $2"; }

printf '%s, %s, %s connections, %s per line after %s warm-up, wrk -t%s on the same machine\n' \
    "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(nproc) cores" "$CONNECTIONS" "$DURATION" "$WARMUP" "$THREADS"
printf 'coffer: %s (%s)\n\n' "$BENCH_BIN" "$(git rev-parse --short HEAD 2>/dev/null || echo '?')"
printf '| line | orders/s | p50 | p99 | server CPU | CPU per order | load avg (1 min) | rows check |\n'
printf '|---|---|---|---|---|---|---|---|\n'
line=0
failed=0
measure() { # <label> <pid> <url> <lua> [VAR=value…]
    local label=$1 pid=$2 url=$3 lua=$4; shift 4
    line=$((line + 1))
    local run="r$$-$line" before after t0 t1 warm out
    before=$(rows)
    warm=$([ $# -eq 0 ] || export "$@"; bench "$run-w" "$WARMUP" "$url" "$lua")
    t0=$(cpu_ticks "$pid")
    out=$([ $# -eq 0 ] || export "$@"; bench "$run-m" "$DURATION" "$url" "$lua")
    t1=$(cpu_ticks "$pid")
    sleep 1 # wrk stops with requests in flight: let them land before counting
    after=$(rows)
    local load requests bad p50 p99 secs rate cpu per check
    load=$(cut -d' ' -f1 /proc/loadavg)
    requests=$(field requests "$out")
    bad=$(( $(field unexpected "$warm") + $(field unexpected "$out") ))
    p50=$(field p50_us "$out")
    p99=$(field p99_us "$out")
    secs=$(field duration_us "$out")
    rate=$(awk -v n="$requests" -v us="$secs" 'BEGIN { printf "%d", n / (us / 1e6) }')
    cpu=$(awk -v d=$((t1 - t0)) -v hz="$ticks_per_s" -v us="$secs" 'BEGIN { printf "%.2f cores", d / hz / (us / 1e6) }')
    per=$(awk -v d=$((t1 - t0)) -v hz="$ticks_per_s" -v n="$requests" 'BEGIN { printf "%d µs", d / hz / n * 1e6 }')
    if [ "$pid" = "$floor" ]; then
        check="n/a (floor), $bad non-201"
    else
        local answered=$(( $(field requests "$warm") + requests ))
        local made=$(( ${after%%|*} - ${before%%|*} ))
        local keys=$(( ${after##*|} - ${before##*|} ))
        # Requests in flight when wrk stops made orders wrk did not count (at most one per
        # connection and run).
        local ok=1 want_keys=0
        case " $* " in *BENCH_IDEMPOTENCY=1*) want_keys=$made ;; esac
        if [ "$bad" -ne 0 ] || [ "$made" -lt "$answered" ] || [ "$made" -gt $((answered + 2 * CONNECTIONS)) ] \
            || [ "$keys" -ne "$want_keys" ]; then
            ok=0; failed=1
        fi
        check="$made orders for $answered answers, $keys keys, $bad non-201"
        [ "$ok" = 1 ] || check="FAILED: $check"
    fi
    printf '| %s | %s | %.1f ms | %.1f ms | %s | %s | %s | %s |\n' "$label" "$rate" \
        "$(awk -v u="$p50" 'BEGIN { print u / 1000 }')" "$(awk -v u="$p99" 'BEGIN { print u / 1000 }')" \
        "$cpu" "$per" "$load" "$check"
}
api="http://127.0.0.1:$port/api/v1/orders"
lua=scripts/bench/orders.lua
measure "floor: bare axum handler, one SQLite row" "$floor" "http://$floor_addr/floor" "$lua" BENCH_ASSET=anvil:ETH BENCH_ORDER_NO=1
measure "EVM (anvil:ETH), unique order_no" "$server" "$api" "$lua" BENCH_ASSET=anvil:ETH BENCH_ORDER_NO=1
measure "Bitcoin (bitcoin:BTC), unique order_no" "$server" "$api" "$lua" BENCH_ASSET=bitcoin:BTC BENCH_ORDER_NO=1
measure "EVM, unique order_no + Idempotency-Key" "$server" "$api" "$lua" BENCH_ASSET=anvil:ETH BENCH_ORDER_NO=1 BENCH_IDEMPOTENCY=1
measure "Bitcoin, unique order_no + Idempotency-Key" "$server" "$api" "$lua" BENCH_ASSET=bitcoin:BTC BENCH_ORDER_NO=1 BENCH_IDEMPOTENCY=1
measure "no asset (buyer chooses), unique order_no" "$server" "$api" "$lua" BENCH_ORDER_NO=1

if [ -n "${PERF:-}" ]; then
    printf '\nProfile: perf record -g on coffer serve during another EVM, unique order_no run:\n\n'
    perf record -q -g -o "$data/perf.data" -p "$server" >/dev/null 2>&1 &
    recorder=$!
    env BENCH_ASSET=anvil:ETH BENCH_ORDER_NO=1 BENCH_RUN="r$$-perf" \
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" -s "$lua" "$api" | grep '^BENCH'
    kill -INT "$recorder"; wait "$recorder" 2>/dev/null || true
    scripts/bench/perf-top.py "$data/perf.data" "$BENCH_BIN" 30
    printf '\nBy thread:\n'
    perf report -i "$data/perf.data" --no-children -g none --stdio --sort comm 2>/dev/null \
        | grep '%' | head -8
fi
exit "$failed"
