#!/usr/bin/env bash
# Install everything the tests need (apt peers + Python deps) and run the whole test suite.
# Extra arguments go to pytest (e.g. scripts/test.sh tests/engine -x).
# Long fuzz/soak runs: CHARGEWAY_FULL_FUZZ=1 scripts/test.sh -m slow
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-test-deps.sh
scripts/setup-venv.sh test
ulimit -c 0   # kamailio ims_charging segfaults on SIGTERM; never leave core files
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
