#!/usr/bin/env bash
# Runs each mode of cluster_bench once, with tiny sizes; fails if one fails
# or prints no figure.
set -euo pipefail
bench="$1"
for args in "--mode=revocation_lag --revocations=5 --load_threads=1" \
  "--mode=writes --seconds=0.3" "--mode=cold_start --keys=200" \
  "--mode=authorize_rps --seconds=0.3 --threads=2"; do
  # shellcheck disable=SC2086
  out=$("$bench" $args 2>&1) || { echo "$out"; exit 1; }
  echo "$out" | grep -E '^(revocation_lag|writes|cold_start|authorize_rps):' ||
    { echo "$out"; echo "no figure from: $args" >&2; exit 1; }
done
