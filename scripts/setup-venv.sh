#!/usr/bin/env bash
# Create .venv and install chargeway into it. Usage: scripts/setup-venv.sh [run|test]
# "run" installs the gateway (+uvloop); "test" adds the test tools. Works on a fresh Debian 12
# with only python3: if the venv module is missing it installs python3-venv with apt.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-run}"
PY="${PYTHON:-python3}"
sudo_cmd() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    echo "python venv module missing: installing python3-venv" >&2
    sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive sudo_cmd apt-get install -y -qq --no-install-recommends python3-venv python3-pip
    "$PY" -m venv .venv
  fi
fi
extras="fast"
[ "$mode" = "test" ] && extras="fast,test"
stamp=".venv/.installed-$extras"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  .venv/bin/python -m pip install -q -e ".[$extras]"
  touch "$stamp"
fi
