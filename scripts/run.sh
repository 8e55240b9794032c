#!/usr/bin/env bash
# Set up (first time) and start the gateway: embedded SQLite under ./data, config/chargeway.yaml,
# the sample tariff plan in config/tariffplan loaded on first start. Extra arguments go to
# `chargeway serve` (e.g. --config my.yaml --data-dir /var/lib/chargeway).
# The Docker image runs this same script with CHARGEWAY_SKIP_SETUP=1 (deps are baked in).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ -z "${CHARGEWAY_SKIP_SETUP:-}" ]; then
  scripts/setup-venv.sh run
  export PATH="$PWD/.venv/bin:$PATH"
fi
exec chargeway serve "$@"
