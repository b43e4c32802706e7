#!/usr/bin/env bash
# Runs a benchmark binary briefly (extra arguments are passed on, e.g. a
# --benchmark_filter) and fails if it crashed or any benchmark reported an
# error or none ran (SkipWithError and an empty filter still exit 0).
set -euo pipefail
bench="$1"
shift
out=$("$bench" --benchmark_min_time=0.01 "$@" 2>&1) || { echo "$out"; exit 1; }
echo "$out"
if grep -q "Failed to match any benchmarks" <<<"$out"; then
  echo "the filter matched no benchmark" >&2
  exit 1
fi
if grep -q "ERROR OCCURRED" <<<"$out"; then
  echo "benchmark reported an error" >&2
  exit 1
fi
