#!/usr/bin/env bash
# The long run of the decision oracle (docs/TESTING.md): builds
# //tests/oracle:oracle_run optimized and plays generated scenarios on the
# core in-process and, for a share of them, on real servers in-process
# (gRPC + RocksDB), comparing every decision with the reference model.
#   scripts/oracle.sh --cases=10000000 [--seed=N]    # 10M decisions
#   scripts/oracle.sh --replay=SCENARIO_SEED         # one reported scenario
# Other flags go to oracle_run (--server_every=N, --keep_going,
# --max_reports=N, --minimize=false; --help lists them). Prints progress,
# decisions per second, each disagreement minimized, and a summary line;
# exits 1 on a disagreement, 2 if the build fails.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
  -h | --help) sed -n '2,11p' "$0"; exit 0 ;;
esac
bazel build --config=opt //tests/oracle:oracle_run >&2 || exit 2
exec bazel-bin/tests/oracle/oracle_run "$@"
