#!/usr/bin/env bash
# Runs every test in the workspace, then each fuzzer for a few seconds
# (scripts/fuzz.sh, --config=fuzz), then clang's lock analysis
# (scripts/check_thread_safety.sh, --config=clang), and ends with one summary
# line, `N passed, N failed[, N skipped]`, counted from the run's Build Event
# Protocol file (scripts/test_summary.py) plus one case per fuzzer and one for
# the lock analysis. Extra arguments go to `bazel test` (not to the fuzz smoke
# run nor the analysis); SK_FUZZ_SECONDS sets the fuzzing time per target
# (default 5, 0 skips it):
#   scripts/test.sh                  # default config
#   scripts/test.sh --config=asan    # ASan + UBSan + LSan
#   scripts/test.sh --config=tsan    # TSan (notsan-tagged tests are skipped)
# Exits non-zero if Bazel failed (build error, failed test, no tests) or the
# summary found a failure or no passing test case.
set -euo pipefail
cd "$(dirname "$0")/.."

./scripts/install_deps.sh

bep="$(mktemp "${TMPDIR:-/tmp}/scopekeeper-bep.XXXXXX")"
fuzz_results="$(mktemp "${TMPDIR:-/tmp}/scopekeeper-fuzz.XXXXXX")"
checks="$(mktemp "${TMPDIR:-/tmp}/scopekeeper-checks.XXXXXX")"
trap 'rm -f "$bep" "$fuzz_results" "$checks"' EXIT

bazel_rc=0
bazel test --keep_going --build_event_json_file="$bep" //... "$@" || bazel_rc=$?

summary_args=("$bep")
fuzz_seconds="${SK_FUZZ_SECONDS:-5}"
if ((fuzz_seconds > 0)); then
  fuzz_rc=0
  ./scripts/fuzz.sh "$fuzz_seconds" --results="$fuzz_results" || fuzz_rc=$?
  if ((fuzz_rc != 0)) && [[ ! -s "$fuzz_results" ]]; then
    echo "FAILED scripts/fuzz.sh" >>"$fuzz_results"
  fi
  summary_args+=("$fuzz_results")
fi

# A lock taken wrongly fails the clang build: compiled, not linked, in its
# own output tree. A few seconds warm; the first run compiles everything with
# clang (about 6 minutes on 2 busy cores).
checks_rc=0
./scripts/check_thread_safety.sh --results="$checks" || checks_rc=$?
if ((checks_rc != 0)) && [[ ! -s "$checks" ]]; then
  echo "FAILED scripts/check_thread_safety.sh" >>"$checks"
fi
summary_args+=("$checks")

summary_rc=0
/usr/bin/python3 scripts/test_summary.py "${summary_args[@]}" || summary_rc=$?

if ((bazel_rc != 0)); then
  exit "$bazel_rc"
fi
exit "$summary_rc"
