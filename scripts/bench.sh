#!/usr/bin/env bash
# Run every benchmark; each prints its table and the ratio against a baseline measured in the same run.
# QUICK=1 scripts/bench.sh for the short CI-sized versions.
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup-venv.sh test
q=""; [ -n "${QUICK:-}" ] && q="--quick"
rc=0
for b in rating_bench storage_bench template_bench engine_bench api_bench diameter_bench radius_bench kamailio_bench; do
  [ -f "bench/$b.py" ] || continue
  echo "=== $b"
  .venv/bin/python -m "bench.$b" $q || rc=1
done
exit $rc
