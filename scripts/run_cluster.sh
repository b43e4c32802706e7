#!/usr/bin/env bash
# Starts a local Scopekeeper cluster on loopback ports: a 3-member etcd
# cluster (/usr/bin/etcd) and two replicas on it, with the RxScale example
# policy; creates a demo key through replica A, prints how to call each
# replica, then stays in the foreground until Ctrl-C (or SIGTERM), which
# stops everything. See docs/OPERATIONS.md, "Running a cluster".
#
# Environment overrides:
#   SK_CLUSTER_DIR        data and logs              (default .run/cluster)
#   SK_ETCD_PORT_BASE     etcd client ports BASE..BASE+2, peer ports
#                         BASE+10..BASE+12           (default 23790)
#   SK_REPLICA_PORTS      the replicas' gRPC ports   (default "50061 50062")
#   SCOPEKEEPER_POLICY    policy JSON    (default examples/policies/rxscale.json)
#   SCOPEKEEPER_BIN, SCOPECTL_BIN  prebuilt binaries; skip building them
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CALLER_DIR="$PWD"
cd "$ROOT"
absolute() { if [[ "$1" == /* ]]; then echo "$1"; else echo "$CALLER_DIR/$1"; fi; }

DIR="$(absolute "${SK_CLUSTER_DIR:-$ROOT/.run/cluster}")"
BASE="${SK_ETCD_PORT_BASE:-23790}"
read -r -a REPLICA_PORTS <<<"${SK_REPLICA_PORTS:-50061 50062}"
POLICY="$(absolute "${SCOPEKEEPER_POLICY:-$ROOT/examples/policies/rxscale.json}")"
STARTUP_TIMEOUT_S=60
DEMO_ORG=org_demo
DEMO_API=external-pharmacy
DEMO_PATH=/v1/external-pharmacy-api-v1/pharmacy_orders/

log() { echo "run_cluster.sh: $*" >&2; }
die() {
  log "$*"
  exit 1
}
port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

((${#REPLICA_PORTS[@]} == 2)) || die "SK_REPLICA_PORTS: give two ports"
for port in $BASE $((BASE + 1)) $((BASE + 2)) $((BASE + 10)) $((BASE + 11)) \
  $((BASE + 12)) "${REPLICA_PORTS[@]}"; do
  port_open "$port" && die "port $port is in use (a previous run still going?). \
Stop it, or set SK_ETCD_PORT_BASE / SK_REPLICA_PORTS."
done
[[ -f "$POLICY" ]] || die "policy file $POLICY not found"

# Dependencies (etcd included) and build.
./scripts/install_deps.sh
[[ -x /usr/bin/etcd ]] || die "/usr/bin/etcd missing (Debian etcd-server)"
targets=()
BIN="${SCOPEKEEPER_BIN:+$(absolute "$SCOPEKEEPER_BIN")}"
SCOPECTL="${SCOPECTL_BIN:+$(absolute "$SCOPECTL_BIN")}"
if [[ -z "$BIN" ]]; then
  targets+=(//server:scopekeeper)
  BIN="$ROOT/bazel-bin/server/scopekeeper"
fi
if [[ -z "$SCOPECTL" ]]; then
  targets+=(//client:scopectl)
  SCOPECTL="$ROOT/bazel-bin/client/scopectl"
fi
((${#targets[@]} == 0)) || bazel build "${targets[@]}"

mkdir -p "$DIR"
PIDS=()
# shellcheck disable=SC2317  # invoked from traps
stop_all() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do
    for _ in $(seq 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  PIDS=()
}
trap stop_all EXIT
trap 'stop_all; exit 130' INT
trap 'stop_all; exit 143' TERM

# 1. etcd: three members; history compacted hourly (see OPERATIONS.md).
ENDPOINTS=""
CLUSTER=""
for i in 0 1 2; do
  CLUSTER+="${CLUSTER:+,}m$i=http://127.0.0.1:$((BASE + 10 + i))"
  ENDPOINTS+="${ENDPOINTS:+,}127.0.0.1:$((BASE + i))"
done
for i in 0 1 2; do
  setsid /usr/bin/etcd --name="m$i" --data-dir="$DIR/etcd-m$i" \
    --listen-client-urls="http://127.0.0.1:$((BASE + i))" \
    --advertise-client-urls="http://127.0.0.1:$((BASE + i))" \
    --listen-peer-urls="http://127.0.0.1:$((BASE + 10 + i))" \
    --initial-advertise-peer-urls="http://127.0.0.1:$((BASE + 10 + i))" \
    --initial-cluster="$CLUSTER" --initial-cluster-token=sk-local \
    --initial-cluster-state=new --auto-compaction-mode=periodic \
    --auto-compaction-retention=1h --log-level=warn --logger=zap \
    </dev/null >>"$DIR/etcd-m$i.log" 2>&1 &
  PIDS+=($!)
done
deadline=$((SECONDS + STARTUP_TIMEOUT_S))
until ETCDCTL_API=3 etcdctl --endpoints="$ENDPOINTS" --command-timeout=2s \
  endpoint health >/dev/null 2>&1; do
  ((SECONDS < deadline)) || die "etcd not healthy within ${STARTUP_TIMEOUT_S} s; logs: $DIR/etcd-m*.log"
  sleep 0.2
done

# 2. Two replicas on it, one after the other (the first writes the policy).
TOKEN_FILE="$DIR/admin_token"
[[ -s "$TOKEN_FILE" ]] || (umask 077 && openssl rand -hex 32 >"$TOKEN_FILE")
ADDRS=()
names=(A B)
for r in 0 1; do
  addr="127.0.0.1:${REPLICA_PORTS[$r]}"
  rlog="$DIR/replica-${names[$r]}.log"
  : >"$rlog"
  setsid "$BIN" --listen="$addr" --data_dir="$DIR/replica-${names[$r]}" \
    --admin_token_file="$TOKEN_FILE" --policy_file="$POLICY" \
    --etcd_endpoints="$ENDPOINTS" --max_staleness=5s \
    </dev/null >>"$rlog" 2>&1 &
  PIDS+=($!)
  deadline=$((SECONDS + STARTUP_TIMEOUT_S))
  until grep -q "listening on $addr" "$rlog"; do
    kill -0 "${PIDS[-1]}" 2>/dev/null || {
      tail -n 20 "$rlog" >&2
      die "replica ${names[$r]} exited; log $rlog"
    }
    ((SECONDS < deadline)) || die "replica ${names[$r]} not listening within ${STARTUP_TIMEOUT_S} s"
    sleep 0.1
  done
  ADDRS+=("$addr")
done

# 3. A demo key, created through replica A.
KEY_FILE="$DIR/demo.key"
rm -f "$KEY_FILE"
key_json="$("$SCOPECTL" --addr "${ADDRS[0]}" --admin_token_file "$TOKEN_FILE" -o json \
  key create --org "$DEMO_ORG" --api "$DEMO_API" --scope orders_read,stock_read \
  --name "demo (scripts/run_cluster.sh)" --secret_file "$KEY_FILE")" ||
  die "could not create the demo key"
key_id="$(/usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin)["key"]["keyId"])' <<<"$key_json")"
revision="$(/usr/bin/python3 -c 'import json, sys; print(json.load(sys.stdin).get("revision", 0))' <<<"$key_json")"

shown() { echo "${1#"$ROOT"/}"; }
ctl="$(shown "$SCOPECTL")"
cat <<EOF

A Scopekeeper cluster is running:
  etcd members:  $ENDPOINTS   (logs: $(shown "$DIR")/etcd-m*.log)
  replica A:     ${ADDRS[0]}   (log: $(shown "$DIR")/replica-A.log)
  replica B:     ${ADDRS[1]}   (log: $(shown "$DIR")/replica-B.log)
  admin token:   $(shown "$TOKEN_FILE")

Demo key $key_id (org $DEMO_ORG, orders_read + stock_read), created on A at
revision $revision; its secret is in $(shown "$KEY_FILE").

Decide on replica B, waiting for that revision (read-your-writes):
  $ctl --addr ${ADDRS[1]} check --key_file $(shown "$KEY_FILE") --min_revision $revision \\
      --api $DEMO_API GET $DEMO_PATH

Revoke on B, then A denies it (401 KEY_REVOKED) within --max_staleness:
  $ctl --addr ${ADDRS[1]} --admin_token_file $(shown "$TOKEN_FILE") key revoke $key_id
  $ctl --addr ${ADDRS[0]} check --key_file $(shown "$KEY_FILE") --api $DEMO_API GET $DEMO_PATH

A client of the whole cluster (round robin, retries on another replica):
  $ctl --addr ${ADDRS[0]},${ADDRS[1]} check --key_file $(shown "$KEY_FILE") \\
      --api $DEMO_API GET $DEMO_PATH

Health of each replica (NOT_SERVING when it cannot confirm it is current):
  grpcurl -plaintext -d '{"service":"scopekeeper.v1.Authorizer"}' ${ADDRS[0]} grpc.health.v1.Health/Check

Try a failure: kill one etcd member (decisions and writes go on), or two
(writes fail at once, decisions fail closed after 5 s and health says
NOT_SERVING); the etcd members' pids are ${PIDS[0]} ${PIDS[1]} ${PIDS[2]}, e.g.
  kill -KILL ${PIDS[1]}
(then Ctrl-C here and run this script again: it keeps the data in $(shown "$DIR")).

(Run these from $ROOT.) Press Ctrl-C to stop the cluster.
EOF

# Foreground until a replica exits or we are interrupted.
wait -n "${PIDS[@]}" || true
log "a process of the cluster exited; stopping the cluster"
