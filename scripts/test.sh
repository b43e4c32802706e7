#!/usr/bin/env bash
# Runs every test in the workspace and ends with one summary line,
# `N passed, N failed[, N skipped]`, counted from the run's Build Event Protocol
# file (scripts/test_summary.py). Extra arguments go to `bazel test`:
#   scripts/test.sh                  # default config
#   scripts/test.sh --config=asan    # ASan + UBSan + LSan
#   scripts/test.sh --config=tsan    # TSan (notsan-tagged tests are skipped)
# Exits non-zero if Bazel failed (build error, failed test, no tests) or the
# summary found a failure or no passing test case.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install_deps.sh

bep="$(mktemp "${TMPDIR:-/tmp}/scopekeeper-bep.XXXXXX")"
trap 'rm -f "$bep"' EXIT

bazel_rc=0
bazel test --keep_going --build_event_json_file="$bep" //... "$@" || bazel_rc=$?

summary_rc=0
/usr/bin/python3 scripts/test_summary.py "$bep" || summary_rc=$?

if ((bazel_rc != 0)); then
  exit "$bazel_rc"
fi
exit "$summary_rc"
