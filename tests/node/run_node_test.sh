#!/usr/bin/env bash
# Runs a `node --test` file with the node_modules that scripts/install_deps.sh
# installed (npm ci) beside tests/node/package.json in the source tree; Bazel
# 4 has no rules_nodejs here and nothing may be downloaded at test time.
# Usage: run_node_test.sh TEST_FILE PACKAGE_LOCK [NAME=RUNFILES_PATH ...]
#   TEST_FILE and PACKAGE_LOCK are runfiles paths (symlinks into the source
#   tree); each NAME=PATH is exported as NAME=<absolute path>.
# Fails, naming the fix, when node is missing or node_modules is missing or
# was installed from another package-lock.json.
set -euo pipefail

test_file="$1"
package_lock="$2"
shift 2
for assignment in "$@"; do
  export "${assignment%%=*}=$PWD/${assignment#*=}"
done

fail() {
  echo "run_node_test.sh: $*" >&2
  exit 1
}

command -v node >/dev/null || fail "node is not installed; run scripts/install_deps.sh"

# The runfiles entries are symlinks to the source files: resolve them to find
# tests/node/ in the source tree, where node_modules lives (.bazelignore keeps
# Bazel out of it).
source_dir="$(dirname "$(readlink -f "$package_lock")")"
source_test="$(readlink -f "$test_file")"
[[ "$(dirname "$source_test")" == "$source_dir" ]] ||
  fail "$test_file does not resolve into $source_dir"
node_modules="$source_dir/node_modules"
stamp="$node_modules/.scopekeeper-lock.sha256"
[[ -f "$node_modules/@grpc/grpc-js/package.json" && -f "$stamp" ]] ||
  fail "$node_modules is missing; run scripts/install_deps.sh (npm ci in tests/node)"
want="$(sha256sum <"$source_dir/package-lock.json" | cut -d' ' -f1)"
[[ "$(cat "$stamp")" == "$want" ]] ||
  fail "$node_modules was installed from another package-lock.json; run scripts/install_deps.sh"

# node resolves imports from the test file's real path, so they find
# $node_modules; the runfiles tree and the source tree are left unwritten.
exec node --test "$source_test"
