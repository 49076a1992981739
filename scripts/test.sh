#!/usr/bin/env bash
# Runs Coffer's whole test suite on a fresh machine.
#
# It installs what the tests need (Debian and npm packages), starts throwaway servers on
# loopback (PostgreSQL via scripts/with-postgres.sh), runs every test against SQLite and
# PostgreSQL, and stops the servers again.
#
#   scripts/test.sh                 # everything
#   scripts/test.sh -p coffer-store # extra arguments go to the test runner
set -euo pipefail
cd "$(dirname "$0")/.."

# The webhook docs' verification snippets are executed by the suite (python3 and node).
need=()
command -v python3 >/dev/null 2>&1 || need+=(python3)
command -v node >/dev/null 2>&1 || need+=(nodejs)
# The HTTPS drill makes its certificates with the openssl CLI (crates/coffer/tests/edge.rs).
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ "${#need[@]}" -gt 0 ]; then
    printf '\n==> installing %s (Debian packages)\n' "${need[*]}" >&2
    as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
    as_root apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The EVM tests run real foundry tools and compile nothing at test time: anvil (the node),
# cast (an independent address derivation) and solc (rebuilds the committed test token) come
# from npm, pinned by tests/evm/package-lock.json.
install_evm_tools() {
    local dir=tests/evm
    local anvil="$dir/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
    local cast="$dir/node_modules/@foundry-rs/cast-linux-amd64/bin/cast"
    if [ ! -x "$anvil" ] || [ ! -x "$cast" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
        if ! command -v npm >/dev/null 2>&1; then
            printf '\n==> installing npm (Debian package)\n' >&2
            if [ "$(id -u)" = 0 ]; then apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
            else sudo apt-get update -qq >/dev/null; sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null; fi
        fi
        printf '\n==> installing anvil, cast and solc (npm ci in %s)\n' "$dir" >&2
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    fi
    COFFER_TEST_ANVIL="$(pwd)/$anvil"
    COFFER_TEST_CAST="$(pwd)/$cast"
    export COFFER_TEST_ANVIL COFFER_TEST_CAST
}
install_evm_tools
# The checkout page's browser tests drive Debian's Chromium with playwright-core (npm, pinned
# by tests/checkout/package-lock.json). Missing Chromium is a test failure, not a skip.
install_browser() {
    if [ ! -x /usr/bin/chromium ]; then
        printf '\n==> installing chromium (Debian package)\n' >&2
        if [ "$(id -u)" = 0 ]; then apt-get update -qq >/dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
        else sudo apt-get update -qq >/dev/null; sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi
    fi
    local dir=tests/checkout
    if [ ! -d "$dir/node_modules/playwright-core" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
        printf '\n==> installing playwright-core (npm ci in %s)\n' "$dir" >&2
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    fi
    export COFFER_TEST_CHROMIUM=/usr/bin/chromium
}
install_browser
# The Bitcoin regtest node (bcoin from npm) used by crates/chain-bitcoin's tests.
tools/bitcoin-regtest/install.sh

# One-shot builds gain nothing from incremental state, and it doubles the target dir.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

run_tests() {
    printf '\n==> running the test suite (SQLite and PostgreSQL)\n' >&2
    # The whole workspace, unless packages are named (`-p crate`).
    local scope=(--workspace)
    for arg in "$@"; do
        case "$arg" in -p | --package | -p* | --package=*) scope=() ;; esac
    done
    if cargo nextest --version >/dev/null 2>&1; then
        cargo nextest run "${scope[@]}" --no-fail-fast "$@"
    else
        cargo test "${scope[@]}" --no-fail-fast "$@"
    fi
}
export -f run_tests

exec scripts/with-postgres.sh bash -c 'run_tests "$@"' run_tests "$@"
