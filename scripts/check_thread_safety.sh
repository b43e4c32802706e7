#!/usr/bin/env bash
# Builds our C++ with clang's lock analysis (--config=clang: -Wthread-safety
# as an error; see docs/TESTING.md), so a read of an ABSL_GUARDED_BY member
# without its lock, a call to an ABSL_EXCLUSIVE_LOCKS_REQUIRED function
# without it, or a lock left held fails. Build only: nothing built here runs.
# The clang tree is separate from the default gcc one (own platform suffix),
# so neither rebuilds the other. //base:thread_safety_test, which checks
# that base/mutex.h's annotations still bite, is an ordinary test and runs
# with the rest of `bazel test //...`.
#   scripts/check_thread_safety.sh [--results=FILE]
# --results=FILE appends "PASSED thread_safety" / "FAILED thread_safety" to
# FILE (scripts/test.sh counts it). Prints the analysis' errors and exits 1
# if the build fails.
set -euo pipefail
cd "$(dirname "$0")/.."

results=""
for arg in "$@"; do
  case "$arg" in
    --results=*) results="${arg#--results=}" ;;
    *) echo "usage: $0 [--results=FILE]" >&2; exit 2 ;;
  esac
done

# Ours: not //fuzz (built with clang by scripts/fuzz.sh) nor generated code.
targets=(//base/... //server/... //storage/... //client/... //tests/...)

log="$(mktemp "${TMPDIR:-/tmp}/scopekeeper-thread-safety.XXXXXX")"
trap 'rm -f "$log"' EXIT
start=$SECONDS
rc=0
# --symlink_prefix=/: leave bazel-bin & co. pointing at the default config.
# compilation_outputs: every target's own sources compiled (the analysis
# runs there), nothing linked and no dependency outside the patterns
# compiled (generated protobuf code): half the cold time.
bazel build --config=clang --symlink_prefix=/ --keep_going \
  --output_groups=compilation_outputs "${targets[@]}" >"$log" 2>&1 || rc=$?
if ((rc == 0)); then
  echo "thread safety: clang's lock analysis is clean ($((SECONDS - start)) s)"
  [[ -z "$results" ]] || echo "PASSED thread_safety" >>"$results"
  exit 0
fi
if grep -q -- '-Wthread-safety' "$log"; then
  echo "thread safety: clang's lock analysis failed:" >&2
  grep -A3 -- 'error: .*-Wthread-safety' "$log" >&2 || true
else
  echo "thread safety: the clang build failed:" >&2
  tail -n 30 "$log" >&2
fi
[[ -z "$results" ]] || echo "FAILED thread_safety" >>"$results"
exit 1
