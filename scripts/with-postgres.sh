#!/usr/bin/env bash
# Start a throwaway PostgreSQL cluster on a free loopback port, run a command with
# COFFER_TEST_PG_URL pointing at it, then stop the cluster and delete its files.
# Installs the Debian package first if no server is present. PostgreSQL refuses to run as
# root, so as root the cluster runs as the `postgres` user.
#
#   scripts/with-postgres.sh cargo test -p coffer-store
set -euo pipefail

log() { printf '\n==> %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

pg_bin() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)"
    if [ -n "$dir" ] && [ -x "$dir/postgres" ]; then echo "$dir"; fi
}

if [ -z "$(pg_bin)" ]; then
    log "installing PostgreSQL (Debian package)"
    as_root apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
PG_BIN="$(pg_bin)"

work="$(mktemp -d /tmp/coffer-pg.XXXXXX)"
chmod 755 "$work"
pg_user="$(id -un)"
run_pg() { "$@"; }
if [ "$(id -u)" = 0 ]; then
    pg_user=postgres
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
    run_pg() { runuser -u postgres -- "$@"; }
    chown postgres "$work"
fi
pg_data="$work/data"
pg_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"

cleanup() {
    set +e
    if [ -f "$pg_data/postmaster.pid" ]; then
        run_pg "$PG_BIN/pg_ctl" -D "$pg_data" -m immediate stop >/dev/null 2>&1
    fi
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

log "starting PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$pg_port"
run_pg "$PG_BIN/initdb" -D "$pg_data" -U "$pg_user" --auth=trust --encoding=UTF8 --no-sync >/dev/null
run_pg "$PG_BIN/pg_ctl" -D "$pg_data" -l "$work/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -p $pg_port -k $work -c max_connections=300" start >/dev/null
export COFFER_TEST_PG_URL="postgres://$pg_user@127.0.0.1:$pg_port/postgres"

status=0
"$@" || status=$?
exit "$status"
