#!/usr/bin/env bash
# //tests/load:load_smoke_test: runs tests/load/run_load.py in --smoke mode.
# Usage: load_smoke_test.sh RUN_LOAD_PY --flag=RUNFILES_PATH...
#   Paths in --flag=PATH are relative to the runfiles root (Bazel's working
#   directory) and are made absolute here.
set -euo pipefail
script="$PWD/$1"
shift
flags=()
for flag in "$@"; do
  flags+=("${flag%%=*}=$PWD/${flag#*=}")
done
export PYTHONDONTWRITEBYTECODE=1
exec /usr/bin/python3 "$script" "${flags[@]}" --work_dir="${TEST_TMPDIR:-$(mktemp -d)}/load" \
  --smoke --keys=100 --revocations=5 --repeat=1 \
  --sections=floor,batch,writes,revoke,extauthz,bisect
