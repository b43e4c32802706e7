#!/usr/bin/env bash
# Runs every test in the workspace, then each fuzzer for a few seconds
# (scripts/fuzz.sh, --config=fuzz), then the layering checks
# (scripts/check_layers.sh) and clang's lock analysis
# (scripts/check_thread_safety.sh, --config=clang), and ends with one summary
# line, `N passed, N failed[, N skipped]`, counted from the run's Build Event
# Protocol file (scripts/test_summary.py) plus one case per fuzzer and per
# check. Extra arguments go to `bazel test` (not to the fuzz smoke run nor
# the checks); SK_FUZZ_SECONDS sets the fuzzing time per target
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
layers="$(mktemp "${TMPDIR:-/tmp}/scopekeeper-layers.XXXXXX")"
locks="$(mktemp "${TMPDIR:-/tmp}/scopekeeper-locks.XXXXXX")"
trap 'rm -f "$bep" "$fuzz_results" "$layers" "$locks"' EXIT

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

# The layers docs/ARCHITECTURE.md promises (bazel query; a second or two).
layers_rc=0
./scripts/check_layers.sh --results="$layers" || layers_rc=$?
if ((layers_rc != 0)) && [[ ! -s "$layers" ]]; then
  echo "FAILED scripts/check_layers.sh" >>"$layers"
fi
summary_args+=("$layers")

# A lock taken wrongly fails the clang build: compiled, not linked, in its
# own output tree. A few seconds warm; the first run compiles everything with
# clang (about 6 minutes on 2 busy cores).
locks_rc=0
./scripts/check_thread_safety.sh --results="$locks" || locks_rc=$?
if ((locks_rc != 0)) && [[ ! -s "$locks" ]]; then
  echo "FAILED scripts/check_thread_safety.sh" >>"$locks"
fi
summary_args+=("$locks")

summary_rc=0
/usr/bin/python3 scripts/test_summary.py "${summary_args[@]}" || summary_rc=$?

if ((bazel_rc != 0)); then
  exit "$bazel_rc"
fi
exit "$summary_rc"
