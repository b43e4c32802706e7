#!/usr/bin/env bash
# Runs a benchmark binary briefly (extra arguments are passed on, e.g. a
# --benchmark_filter) and fails if it crashed or any benchmark reported an
# error (SkipWithError still exits 0, so check the output).
set -euo pipefail
bench="$1"
shift
out=$("$bench" --benchmark_min_time=0.01 "$@" 2>&1) || { echo "$out"; exit 1; }
echo "$out"
if grep -q "ERROR OCCURRED" <<<"$out"; then
  echo "benchmark reported an error" >&2
  exit 1
fi
