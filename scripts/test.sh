#!/usr/bin/env bash
# Runs Coffer's whole test suite on a fresh machine.
#
# It installs what the tests need (Debian packages, npm packages), starts throwaway servers
# on loopback (a PostgreSQL cluster in a temp dir, as the `postgres` user when run as root),
# runs every test against SQLite and PostgreSQL, and stops the servers again.
#
#   scripts/test.sh                 # everything
#   scripts/test.sh -p coffer-store # extra arguments go to the test runner
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

log() { printf '\n==> %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        as_root apt-get update -qq >/dev/null
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- PostgreSQL -------------------------------------------------------------------------
pg_bin() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    [ -n "$dir" ] && [ -x "$dir/postgres" ] && echo "$dir"
}

if [ -z "$(pg_bin)" ]; then
    log "installing PostgreSQL (Debian package)"
    apt_install postgresql
fi
PG_BIN="$(pg_bin)"

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

work="$(mktemp -d /tmp/coffer-test.XXXXXX)"
chmod 755 "$work"
pg_user="$(id -un)"
run_pg() { "$@"; }
if [ "$(id -u)" = 0 ]; then
    # PostgreSQL refuses to run as root.
    pg_user=postgres
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    run_pg() { runuser -u postgres -- "$@"; }
fi
pg_data="$work/pg"
mkdir -p "$pg_data"
[ "$(id -u)" = 0 ] && chown postgres "$pg_data" "$work"
pg_port="$(free_port)"

cleanup() {
    set +e
    if [ -f "$pg_data/postmaster.pid" ]; then
        run_pg "$PG_BIN/pg_ctl" -D "$pg_data" -m immediate stop >/dev/null 2>&1
    fi
    rm -rf "$work"
}
trap cleanup EXIT

log "starting PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port"
run_pg "$PG_BIN/initdb" -D "$pg_data" -U "$pg_user" --auth=trust --encoding=UTF8 --no-sync >/dev/null
run_pg "$PG_BIN/pg_ctl" -D "$pg_data" -l "$work/pg.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $work -c max_connections=300 -c fsync=on" start >/dev/null
export COFFER_TEST_PG_URL="postgres://$pg_user@127.0.0.1:$pg_port/postgres"

# --- Rust tests -------------------------------------------------------------------------
log "running the test suite (SQLite and PostgreSQL)"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast "$@"
else
    cargo test --workspace --no-fail-fast "$@"
fi
