#!/usr/bin/env bash
# Installs the Debian packages Scopekeeper needs to build, test and run.
# Idempotent: only missing packages are installed (apt-get update runs first
# only when something is missing), and each pinned npm tree
# (tests/node/node_modules, third_party/envoy_api/node_modules) is (re)made
# with `npm ci` only when it is missing or was made from another
# package-lock.json. Quiet when everything is present.
set -euo pipefail

PACKAGES=(
  bazel-bootstrap build-essential
  libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc grpc-proto
  libabsl-dev librocksdb-dev libcpp-httplib-dev libmicrohttpd-dev libgtest-dev libgmock-dev libbenchmark-dev libssl-dev
  libcli11-dev  # scopectl subcommands (header-only)
  python3-grpcio python3-grpc-tools python3-protobuf
  python3-yaml  # //tests/python:scopectl_e2e_test reads `scopectl -o yaml`
  openssl ca-certificates
  # scripts/fuzz.sh (--config=fuzz): clang, its libFuzzer/ASan/UBSan runtimes
  # (only recommended by clang-14, so not pulled by --no-install-recommends)
  # and llvm-symbolizer for readable crash stacks.
  clang libclang-rt-14-dev llvm
  # //tests/go: the Go toolchain, Debian's Go sources of grpc and protobuf
  # (GOPATH /usr/share/gocode, used offline) and the protoc plugins.
  # golang-google-grpc-dev accepts github.com/golang/protobuf 1.3 or 1.5 and
  # pulls 1.3 by default; 1.5 is the one built on APIv2, which the code from
  # protoc-gen-go 1.28 is (it replaces 1.3 if that is installed).
  golang-go golang-google-grpc-dev golang-google-protobuf-dev golang-github-golang-protobuf-1-5-dev
  protoc-gen-go protoc-gen-go-grpc
  # tests/load/run_load.sh: h2load sends raw gRPC frames over HTTP/2; taskset
  # (util-linux) pins the server and the load generator to separate cores.
  nghttp2-client util-linux
  # //storage/etcd: the etcd server its tests start (/usr/bin/etcd) and
  # etcdctl for debugging by hand.
  etcd-server etcd-client
  # //tests/gateway: a real nginx (auth_request) in front of a test upstream,
  # started by the test in the foreground on its own ports and prefix (the
  # package's system service is never used); wrk for the gateway benchmark.
  nginx wrk
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
# //tests/node: node and npm are checked as commands, not packages: a Node.js
# from another Debian repository provides (and conflicts with) package npm.
command -v node >/dev/null || missing+=(nodejs)
command -v npm >/dev/null || missing+=(npm)
if ((${#missing[@]} > 0)); then
  echo "install_deps: installing ${missing[*]}" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# //third_party/etcd: etcd's v3 API protos, from Debian's golang-etcd-server-dev
# of the etcd-server version installed above. That package cannot be
# installed here: it depends on golang-github-golang-protobuf-1-3-dev, which
# conflicts with the 1-5 package //tests/go needs (installing one removes the
# other). So its .deb is fetched with `apt-get download` and only the three
# .proto files the build reads are unpacked, at their Debian paths, under
# ETCD_PROTO_ROOT (third_party/etcd/BUILD.bazel reads them from there).
ETCD_PROTO_ROOT=/usr/local/share/scopekeeper/golang-etcd-server-dev
etcd_protos=(
  usr/share/gocode/src/go.etcd.io/etcd/etcdserver/etcdserverpb/rpc.proto
  usr/share/gocode/src/go.etcd.io/etcd/mvcc/mvccpb/kv.proto
  usr/share/gocode/src/go.etcd.io/etcd/auth/authpb/auth.proto
)
have_protos=1
for f in "${etcd_protos[@]}"; do [[ -f "$ETCD_PROTO_ROOT/$f" ]] || have_protos=0; done
if ((have_protos == 0)); then
  echo "install_deps: unpacking etcd protos to $ETCD_PROTO_ROOT" >&2
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  deb_dir="$(mktemp -d)"
  version="$(dpkg-query -W -f='${Version}' etcd-server | sed 's/+b[0-9]*$//')"
  # Into a private temporary directory, so as root, not apt's sandbox user.
  # The version of etcd-server (its protos); any version if that one is gone.
  download=($SUDO apt-get download -qq -o APT::Sandbox::User=root)
  (cd "$deb_dir" && {
    "${download[@]}" "golang-etcd-server-dev=$version" ||
      { $SUDO apt-get update -qq && "${download[@]}" "golang-etcd-server-dev=$version"; } ||
      "${download[@]}" golang-etcd-server-dev
  })
  $SUDO mkdir -p "$ETCD_PROTO_ROOT"
  dpkg-deb --fsys-tarfile "$deb_dir"/golang-etcd-server-dev_*.deb |
    $SUDO tar -x -C "$ETCD_PROTO_ROOT" "${etcd_protos[@]/#/./}"
  rm -rf "$deb_dir"
fi

# npm_ci DIR: `npm ci` in DIR (exactly its package-lock.json, no install
# scripts) unless DIR/node_modules was already made from that lock file. The
# stamp (the lock file's SHA-256) is what the tests check; npm ci deletes it
# with the old tree.
npm_ci() {
  local dir="$1"
  local want stamp
  want="$(sha256sum <"$dir/package-lock.json" | cut -d' ' -f1)"
  stamp="$dir/node_modules/.scopekeeper-lock.sha256"
  if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
    echo "install_deps: npm ci in ${dir#"$root/"}" >&2
    (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
    echo "$want" >"$stamp"
  fi
}
root="$(cd "$(dirname "$0")/.." && pwd)"
# //tests/node: @grpc/grpc-js and @grpc/proto-loader.
npm_ci "$root/tests/node"
# //third_party/envoy_api: Envoy's API protos (ext_authz) from
# @grpc/grpc-js-xds, compiled to C++ by Bazel (a build input: the WORKSPACE's
# @envoy_api repository points into this node_modules).
npm_ci "$root/third_party/envoy_api"
