#!/usr/bin/env bash
# Generates Go stubs from the contract .proto with protoc, protoc-gen-go and
# protoc-gen-go-grpc, then runs a `go test` file against them, fully offline.
# Usage: run_go_test.sh TEST_FILE PROTO_FILE [NAME=RUNFILES_PATH ...]
#   TEST_FILE and PROTO_FILE are runfiles paths (PROTO_FILE the workspace's
#   proto/scopekeeper/v1/scopekeeper.proto); each NAME=PATH is exported as
#   NAME=<absolute path>.
#
# Offline by construction: GOPATH mode (GO111MODULE=off), where the go command
# never fetches anything and imports resolve only from the GOPATH entries: the
# generated stubs, then Debian's Go sources in /usr/share/gocode
# (golang-google-grpc-dev, golang-google-protobuf-dev, ...). GOPROXY=off and
# GOENV=off as well, so no user setting can turn a download back on.
set -euo pipefail

test_file="$1"
proto_file="$2"
shift 2
for assignment in "$@"; do
  export "${assignment%%=*}=$PWD/${assignment#*=}"
done

fail() {
  echo "run_go_test.sh: $*" >&2
  exit 1
}

readonly DEBIAN_GOPATH=/usr/share/gocode
for tool in go protoc protoc-gen-go protoc-gen-go-grpc; do
  command -v "$tool" >/dev/null || fail "$tool is not installed; run scripts/install_deps.sh"
done
for pkg in google.golang.org/grpc google.golang.org/protobuf github.com/golang/protobuf; do
  [[ -d "$DEBIAN_GOPATH/src/$pkg" ]] ||
    fail "$DEBIAN_GOPATH/src/$pkg is missing; run scripts/install_deps.sh"
done

if [[ -n "${TEST_TMPDIR:-}" ]]; then
  work="$TEST_TMPDIR/go"  # Bazel removes it
else
  work="$(mktemp -d "${TMPDIR:-/tmp}/scopekeeper-go.XXXXXX")"
  trap 'rm -rf "$work"' EXIT
fi
gopath="$work/gopath"
mkdir -p "$gopath/src/scopekeeper/seedflow" "$work/cache" "$work/tmp"

# The contract compiles to the Go package `scopekeeper/v1` (import path in
# GOPATH mode). The .proto has no go_package option; M maps it here instead.
go_package="M${proto_file}=scopekeeper/v1;scopekeeperv1"
protoc --proto_path=. --proto_path=/usr/include \
  --go_out="$gopath/src" --go_opt="$go_package" \
  --go-grpc_out="$gopath/src" --go-grpc_opt="$go_package" \
  "$proto_file"
cp "$test_file" "$gopath/src/scopekeeper/seedflow/"

export GO111MODULE=off GOPATH="$gopath:$DEBIAN_GOPATH"
# GOFLAGS is emptied so no inherited flag changes how the test is built.
export GOPROXY=off GOSUMDB=off GOFLAGS='' GOENV=off GOTOOLCHAIN=local
export GOCACHE="$work/cache" GOTMPDIR="$work/tmp" HOME="${HOME:-$work}"
export CGO_ENABLED=0
cd "$gopath/src/scopekeeper/seedflow"
go test -v -count=1 .
