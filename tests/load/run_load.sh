#!/usr/bin/env bash
# Load runs of issue #7, one command from a clean checkout:
#
#   tests/load/run_load.sh [run_load.py flags...]
#     e.g. --sections=floor   --sections=bisect --keys=20000 --repeat=5
#          --keys=100000 --duration=5   --smoke
#
# Builds the servers and the load client with --config=opt, then runs
# tests/load/run_load.py: each server pinned to core 0, each load generator
# to core 1. The first run with a given --keys seeds that many keys through
# Admin.CreateKey (about 5 min for 100k) into $SK_LOAD_DIR/seed-<keys> and
# later runs reuse them. Prints markdown tables; results.jsonl and report.md
# are left in $SK_LOAD_DIR (default /tmp/scopekeeper-load; needs a real disk,
# not tmpfs, for the durable-write figures to mean anything).
set -euo pipefail
cd "$(dirname "$0")/../.."
work_dir="${SK_LOAD_DIR:-/tmp/scopekeeper-load}"
./scripts/install_deps.sh
nice -n 10 bazel build --config=opt //server:scopekeeper //tests/load:floor_server \
  //tests/load:load_client //tests/load:bisect_server
bin="$(bazel info --config=opt bazel-bin 2>/dev/null)"
mkdir -p "$work_dir"
exec /usr/bin/python3 tests/load/run_load.py \
  --scopekeeper="$bin/server/scopekeeper" \
  --floor_server="$bin/tests/load/floor_server" \
  --load_client="$bin/tests/load/load_client" \
  --bisect_server="$bin/tests/load/bisect_server" \
  --policy=examples/policies/rxscale.json \
  --work_dir="$work_dir" "$@"
