#!/usr/bin/env bash
# nginx with auth_request -> Scopekeeper vs the same nginx without it
# (docs/BENCHMARKS.md, "Gateways"). Builds the server with --config=opt, then
# runs tests/gateway/nginx_bench.py (flags go to it).
set -euo pipefail
cd "$(dirname "$0")/../.."
./scripts/install_deps.sh
nice -n 10 bazel build --config=opt //server:scopekeeper
bin="$(bazel info --config=opt bazel-bin 2>/dev/null)"
export SK_SERVER_BIN="$bin/server/scopekeeper"
exec /usr/bin/python3 tests/gateway/nginx_bench.py "$@"
