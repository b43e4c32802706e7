#!/usr/bin/env bash
# Checks the layering docs/ARCHITECTURE.md promises, with bazel query:
#   - storage/, client/ and base/ depend on nothing in server/;
#   - the decision core (//server/policy, //server/decision libraries) links
#     neither gRPC nor RocksDB.
# Prints what breaks a rule; with --results=FILE appends "PASSED <rule>" /
# "FAILED <rule>" lines to FILE (scripts/test.sh counts them). Exits 1 if a
# rule is broken.
set -euo pipefail
cd "$(dirname "$0")/.."

results=""
for arg in "$@"; do
  case "$arg" in
    --results=*) results="${arg#--results=}" ;;
    *) echo "usage: $0 [--results=FILE]" >&2; exit 2 ;;
  esac
done

rc=0
check() {  # check NAME QUERY [GREP_PATTERN]: the query's labels must be none
  local name="$1" query="$2" pattern="${3:-.}" found
  found="$(bazel query --noshow_progress "$query" 2>/dev/null | grep -E "$pattern" || true)"
  if [[ -n "$found" ]]; then
    echo "layering: $name is broken by:" >&2
    echo "$found" | sed 's/^/  /' >&2
    rc=1
    [[ -z "$results" ]] || echo "FAILED layering:$name" >>"$results"
  else
    [[ -z "$results" ]] || echo "PASSED layering:$name" >>"$results"
  fi
}

check "lower-layers-below-server" \
  'deps(//storage/... + //client/... + //base/...) intersect //server/...'
check "decision-core-without-grpc-or-rocksdb" \
  'deps(kind("cc_library", //server/policy/... + //server/decision/...))' \
  'grpc|rocksdb'
exit "$rc"
