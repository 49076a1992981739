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
if [ "${#need[@]}" -gt 0 ]; then
    printf '\n==> installing %s (Debian packages)\n' "${need[*]}" >&2
    as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
    as_root apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

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
