#!/usr/bin/env bash
# Installs the bcoin regtest node used by Coffer's Bitcoin tests (idempotent, quiet).
# --ignore-scripts: no native builds; the launcher runs bcoin's pure-JS backends.
set -euo pipefail
cd "$(dirname "$0")"
stamp=node_modules/.coffer-installed
if [[ -f "$stamp" && "$stamp" -nt package-lock.json && -d node_modules/bcoin ]]; then
    exit 0
fi
command -v node >/dev/null || { echo "bitcoin-regtest: node (>= 18) is required" >&2; exit 1; }
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null
touch "$stamp"
