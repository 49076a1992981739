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

# The Bitcoin regtest node (bcoin from npm) used by crates/chain-bitcoin's tests.
tools/bitcoin-regtest/install.sh

run_tests() {
    printf '\n==> running the test suite (SQLite and PostgreSQL)\n' >&2
    if cargo nextest --version >/dev/null 2>&1; then
        cargo nextest run --workspace --no-fail-fast "$@"
    else
        cargo test --workspace --no-fail-fast "$@"
    fi
}
export -f run_tests

exec scripts/with-postgres.sh bash -c 'run_tests "$@"' run_tests "$@"
