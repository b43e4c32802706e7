#!/usr/bin/env bash
# Runs a Python unittest file with Debian's /usr/bin/python3 (which has grpc
# and grpc_tools; a pyenv python3 on PATH does not).
# Usage: run_py_test.sh TEST_FILE [NAME=RUNFILES_PATH ...]
#   Each NAME=PATH is exported as NAME=<absolute path>; PATH is relative to
#   the runfiles root, the working directory Bazel starts tests in.
set -euo pipefail

test_file="$1"
shift
for assignment in "$@"; do
  export "${assignment%%=*}=$PWD/${assignment#*=}"
done
export PYTHONDONTWRITEBYTECODE=1  # the runfiles tree is not ours to write
cd "$(dirname "$test_file")"
exec /usr/bin/python3 -m unittest -v "$(basename "$test_file" .py)"
