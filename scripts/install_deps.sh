#!/usr/bin/env bash
# Installs the Debian packages Scopekeeper needs to build, test and run.
# Idempotent: only missing packages are installed (apt-get update runs first
# only when something is missing). Nothing outside Debian's archive is used.
set -euo pipefail

PACKAGES=(
  bazel-bootstrap build-essential
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc grpc-proto
  libabsl-dev librocksdb-dev libcpp-httplib-dev libgtest-dev libgmock-dev libbenchmark-dev libssl-dev
  python3-grpcio python3-grpc-tools python3-protobuf
  openssl ca-certificates
  # scripts/fuzz.sh (--config=fuzz): clang, its libFuzzer/ASan/UBSan runtimes
  # (only recommended by clang-14, so not pulled by --no-install-recommends)
  # and llvm-symbolizer for readable crash stacks.
  clang libclang-rt-14-dev llvm
  # tests/load/run_load.sh: h2load sends raw gRPC frames over HTTP/2; taskset
  # (util-linux) pins the server and the load generator to separate cores.
  nghttp2-client util-linux
)
# Extra groups, selected by arguments (e.g. `install_deps.sh fuzz`).
for extra in "$@"; do
  case "$extra" in
    *) PACKAGES+=("$extra") ;;
  esac
done

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
  exit 0
fi
echo "install_deps: installing ${missing[*]}" >&2
SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
