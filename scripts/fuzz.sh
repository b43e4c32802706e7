#!/usr/bin/env bash
# Builds the libFuzzer targets (//fuzz, --config=fuzz: clang, ASan + UBSan)
# and runs each for SECONDS (default 5) on a copy of its checked-in seed
# corpus in a temporary directory; the source tree is never written.
#   scripts/fuzz.sh                       # smoke run, as scripts/test.sh does
#   scripts/fuzz.sh 600 policy_fuzzer     # ten minutes, one target
# Options:
#   --results=FILE  append "PASSED <target>" / "FAILED <target>" lines to FILE
#                   (read by scripts/test_summary.py)
#   --keep          keep each target's work directory (grown corpus, log,
#                   crash inputs) and print its path
# Prints one line per target with executions, exec/s and corpus growth. A
# crash (or timeout, OOM, leak, failed FUZZ_CHECK) keeps the work directory,
# prints the log's tail and the crashing input, and makes the exit status 1;
# a build failure exits 2.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=5
results=""
keep=0
targets=()
for arg in "$@"; do
  case "$arg" in
    --results=*) results="${arg#--results=}" ;;
    --keep) keep=1 ;;
    -h | --help) sed -n '2,16p' "$0"; exit 0 ;;
    *[!0-9]*) targets+=("${arg#//fuzz:}") ;;
    *) seconds="$arg" ;;
  esac
done
if ((${#targets[@]} == 0)); then
  mapfile -t targets < <(bazel query --noshow_progress 'kind(cc_test, //fuzz:all)' 2>/dev/null | sed 's|^//fuzz:||')
fi
if ((${#targets[@]} == 0)); then
  echo "fuzz: no fuzz targets found" >&2
  exit 2
fi

record() {  # record PASSED|FAILED target
  if [[ -n "$results" ]]; then echo "$1 $2" >>"$results"; fi
}

# --symlink_prefix=/: leave bazel-bin & co. pointing at the default config.
build_log="$(mktemp "${TMPDIR:-/tmp}/scopekeeper-fuzz-build.XXXXXX")"
start=$SECONDS
if ! bazel build --config=fuzz --symlink_prefix=/ "${targets[@]/#/\/\/fuzz:}" >"$build_log" 2>&1; then
  tail -n 30 "$build_log" >&2
  echo "fuzz: build failed (log: $build_log)" >&2
  for t in "${targets[@]}"; do record FAILED "$t"; done
  exit 2
fi
rm -f "$build_log"
echo "fuzz: built ${#targets[@]} targets with --config=fuzz in $((SECONDS - start)) s"
bin="$(bazel info --config=fuzz bazel-bin 2>/dev/null)/fuzz"

failed=0
for t in "${targets[@]}"; do
  work="$(mktemp -d "${TMPDIR:-/tmp}/scopekeeper-fuzz-$t.XXXXXX")"
  mkdir -p "$work/corpus" "$work/crashes"
  cp -R "fuzz/corpus/$t/." "$work/corpus/"
  flags=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2560 -print_final_stats=1
         -artifact_prefix="$work/crashes/")
  if [[ -f "fuzz/$t.dict" ]]; then flags+=(-dict="fuzz/$t.dict"); fi
  seeds=$(find "$work/corpus" -type f | wc -l)
  rc=0
  ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}" UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}" \
    "$bin/$t" "${flags[@]}" "$work/corpus" >"$work/log" 2>&1 || rc=$?
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -n 1)
  secs=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$work/log" | tail -n 1)
  grown=$(find "$work/corpus" -type f | wc -l)
  rate=$(( ${execs:-0} / (${secs:-$seconds} > 0 ? ${secs:-$seconds} : 1) ))
  if ((rc == 0)); then
    echo "fuzz: $t PASSED: ${execs:-?} execs in ${secs:-?} s (${rate}/s), corpus $seeds -> $grown files"
    record PASSED "$t"
    if ((keep)); then echo "fuzz:   kept $work"; else rm -rf "$work"; fi
  else
    failed=1
    echo "fuzz: $t FAILED (exit $rc) after ${execs:-?} execs; log and inputs in $work" >&2
    grep -v '^#' "$work/log" | tail -n 40 >&2
    for crash in "$work"/crashes/*; do
      [[ -f "$crash" ]] && echo "fuzz:   crashing input: $crash ($(wc -c <"$crash") bytes)" >&2
    done
    record FAILED "$t"
  fi
done
exit "$failed"
