#!/usr/bin/env bash
# Builds the server and scopectl, starts a local Scopekeeper with the RxScale
# example policy, creates a demo key for org_demo on the External Pharmacy
# API (orders_read, stock_read) with scopectl, prints ready-to-paste scopectl
# commands that use it, then stays in the foreground until Ctrl-C (or
# SIGTERM), which stops the server cleanly.
#
# Environment overrides:
#   SCOPEKEEPER_LISTEN    listen address        (default 127.0.0.1:50051)
#   SCOPEKEEPER_DATA_DIR  RocksDB + admin_token (default .run/data)
#   SCOPEKEEPER_POLICY    policy JSON           (default examples/policies/rxscale.json)
#   SCOPEKEEPER_BIN       a prebuilt server binary; skips building it
#   SCOPECTL_BIN          a prebuilt scopectl; skips building it
# Log: .run/server.log. Admin token: $SCOPEKEEPER_DATA_DIR/admin_token.
# Demo key's secret: .run/demo.key (mode 0600; replaced on every run).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
CALLER_DIR="$PWD"
cd "$ROOT"

# absolute PATH: relative paths in the environment are relative to the caller.
absolute() { if [[ "$1" == /* ]]; then echo "$1"; else echo "$CALLER_DIR/$1"; fi; }

LISTEN="${SCOPEKEEPER_LISTEN:-127.0.0.1:50051}"
DATA_DIR="$(absolute "${SCOPEKEEPER_DATA_DIR:-$ROOT/.run/data}")"
POLICY="$(absolute "${SCOPEKEEPER_POLICY:-$ROOT/examples/policies/rxscale.json}")"
RUN_DIR="$ROOT/.run"
LOG="$RUN_DIR/server.log"
PID_FILE="$RUN_DIR/server.pid"
PY=/usr/bin/python3
STARTUP_TIMEOUT_S=30
DEMO_KEY_FILE="$RUN_DIR/demo.key"
DEMO_ORG=org_demo
DEMO_API=external-pharmacy
DEMO_PATH=/v1/external-pharmacy-api-v1/pharmacy_orders/

log() { echo "run.sh: $*" >&2; }
die() {
  log "$*"
  exit 1
}

# is_running PID: alive and not a zombie (kill -0 succeeds on an unreaped child).
is_running() {
  [[ -r "/proc/$1/status" ]] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/$1/$2" 2>/dev/null; }

# proc_start_time PID: start time in clock ticks since boot (/proc/PID/stat
# field 22), to tell our server from an unrelated process that reused its pid.
proc_start_time() {
  local stat fields
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  read -r -a fields <<<"${stat##*) }"
  echo "${fields[19]}"
}

# 1. Refuse to start next to a previous run's server. The pid file holds
#    "PID START_TIME ADDRESS" of the server the last run.sh started.
if [[ -f "$PID_FILE" ]]; then
  read -r old_pid old_start old_addr <"$PID_FILE" || true
  if [[ "${old_pid:-}" =~ ^[0-9]+$ ]] && is_running "$old_pid" &&
    [[ "$(proc_start_time "$old_pid" || true)" == "${old_start:-}" ]]; then
    die "a previous scripts/run.sh server is still running: pid $old_pid, listening on ${old_addr:-?} (log $LOG).
run.sh: stop it first:  kill $old_pid"
  fi
  rm -f "$PID_FILE"
fi
listen_host="${LISTEN%:*}"
listen_port="${LISTEN##*:}"
if [[ "$listen_port" != 0 ]]; then
  probe_host="$listen_host"
  [[ "$probe_host" == 0.0.0.0 || "$probe_host" == "[::]" ]] && probe_host=127.0.0.1
  if port_open "$probe_host" "$listen_port"; then
    die "$LISTEN is already in use: a scopekeeper from a previous run (or another program) is still listening.
run.sh: find it with:  ss -ltnp 'sport = :$listen_port'
run.sh: or pick another address:  SCOPEKEEPER_LISTEN=127.0.0.1:50052 scripts/run.sh"
  fi
fi
[[ -f "$POLICY" ]] || die "policy file $POLICY not found"

# 2. Dependencies and build.
./scripts/install_deps.sh
targets=()
if [[ -n "${SCOPEKEEPER_BIN:-}" ]]; then
  BIN="$(absolute "$SCOPEKEEPER_BIN")"
else
  targets+=(//server:scopekeeper)
  BIN="$ROOT/bazel-bin/server/scopekeeper"
fi
if [[ -n "${SCOPECTL_BIN:-}" ]]; then
  SCOPECTL="$(absolute "$SCOPECTL_BIN")"
else
  targets+=(//client:scopectl)
  SCOPECTL="$ROOT/bazel-bin/client/scopectl"
fi
((${#targets[@]} == 0)) || bazel build "${targets[@]}"
[[ -x "$BIN" ]] || die "server binary $BIN not found"
[[ -x "$SCOPECTL" ]] || die "scopectl binary $SCOPECTL not found"

# 3. Start the server in its own session (Ctrl-C reaches only this script,
#    which then stops the server with one SIGTERM).
mkdir -p "$RUN_DIR" "$DATA_DIR"
: >"$LOG"
SERVER_PID=""
# shellcheck disable=SC2317  # invoked from traps
stop_server() {
  [[ -n "$SERVER_PID" ]] || return 0
  if is_running "$SERVER_PID"; then
    log "stopping scopekeeper (pid $SERVER_PID)"
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 150); do
      is_running "$SERVER_PID" || break
      sleep 0.1
    done
    if is_running "$SERVER_PID"; then
      log "scopekeeper did not exit within 15 s of SIGTERM; killing it"
      kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
  fi
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
  rm -f "$PID_FILE"
}
trap stop_server EXIT
trap 'stop_server; exit 130' INT
trap 'stop_server; exit 143' TERM
trap 'stop_server; exit 129' HUP

setsid "$BIN" --listen="$LISTEN" --data_dir="$DATA_DIR" --policy_file="$POLICY" \
  </dev/null >>"$LOG" 2>&1 &
SERVER_PID=$!
echo "$SERVER_PID $(proc_start_time "$SERVER_PID" || true) $LISTEN" >"$PID_FILE"

# 4. Wait for `listening on HOST:PORT` (bounded).
addr=""
deadline=$((SECONDS + STARTUP_TIMEOUT_S))
while ((SECONDS < deadline)); do
  addr="$(grep -oE 'listening on [^ ]+:[0-9]+' "$LOG" | head -n1 | sed 's/^listening on //' || true)"
  [[ -n "$addr" ]] && break
  if ! is_running "$SERVER_PID"; then
    rc=0
    wait "$SERVER_PID" || rc=$?
    SERVER_PID=""
    log "scopekeeper exited (status $rc) before listening. Last lines of $LOG:"
    tail -n 30 "$LOG" >&2
    exit 1
  fi
  sleep 0.1
done
if [[ -z "$addr" ]]; then
  log "scopekeeper did not log 'listening on ...' within ${STARTUP_TIMEOUT_S} s. Last lines of $LOG:"
  tail -n 30 "$LOG" >&2
  exit 1
fi
case "$addr" in
  0.0.0.0:* | "[::]:"*) addr="127.0.0.1:${addr##*:}" ;;
esac
echo "$SERVER_PID $(proc_start_time "$SERVER_PID" || true) $addr" >"$PID_FILE"

# 5. Demo key.
TOKEN_FILE="$DATA_DIR/admin_token"
[[ -r "$TOKEN_FILE" ]] || die "admin token $TOKEN_FILE not found (the server creates it on first start)"
rm -f "$DEMO_KEY_FILE" # scopectl never overwrites a secret file; this one is ours
key_json="$("$SCOPECTL" --addr "$addr" --admin_token_file "$TOKEN_FILE" -o json key create \
  --org "$DEMO_ORG" --api "$DEMO_API" --scope orders_read,stock_read \
  --name "demo (scripts/run.sh)" --secret_file "$DEMO_KEY_FILE")" ||
  die "could not create the demo key (is '$DEMO_API' in $POLICY?). Server log: $LOG"
key_id="$("$PY" -c 'import json, sys; print(json.load(sys.stdin)["key"]["keyId"])' <<<"$key_json")"
secret="$(cat "$DEMO_KEY_FILE")"
[[ -n "$key_id" && -n "$secret" ]] || die "unexpected key create output: $key_json"

# Shown relative to $ROOT when they are inside it.
shown() { echo "${1#"$ROOT"/}"; }
scopectl_shown="$(shown "$SCOPECTL") --addr $addr"
key_file_shown="$(shown "$DEMO_KEY_FILE")"
cat <<EOF

Scopekeeper is running (pid $SERVER_PID) on $addr
  policy:      ${POLICY#"$ROOT"/}
  data dir:    ${DATA_DIR#"$ROOT"/}   (admin token: ${TOKEN_FILE#"$ROOT"/})
  log:         ${LOG#"$ROOT"/}

Demo key for $DEMO_ORG on $DEMO_API (scopes orders_read, stock_read):
  key_id: $key_id
  secret: in $key_file_shown (mode 0600)

Allowed (orders_read), exit status 0:
  $scopectl_shown check --key_file $key_file_shown --api $DEMO_API GET $DEMO_PATH

Denied, 403 INSUFFICIENT_SCOPE (needs orders_write), exit status 1:
  $scopectl_shown check --key_file $key_file_shown --api $DEMO_API PATCH ${DEMO_PATH}ord_1/status

With grpcurl (server reflection is on):
  grpcurl -plaintext -d '{"api_key":"$secret","http":{"api":"$DEMO_API","method":"GET","path":"$DEMO_PATH"}}' $addr scopekeeper.v1.Authorizer/Authorize

Admin commands need the token; the history so far, then revoke the key:
  export SCOPEKEEPER_ADDR=$addr SCOPEKEEPER_ADMIN_TOKEN_FILE=$(shown "$TOKEN_FILE")
  $(shown "$SCOPECTL") watch --from_revision 0
  $(shown "$SCOPECTL") key revoke $key_id
  ($(shown "$SCOPECTL") --help for every command)

(Run these from $ROOT.) Press Ctrl-C to stop the server.
EOF

# 6. Foreground until the server exits or we are interrupted.
rc=0
wait "$SERVER_PID" || rc=$?
SERVER_PID=""
rm -f "$PID_FILE"
if ((rc != 0)); then
  log "scopekeeper exited with status $rc. Last lines of $LOG:"
  tail -n 30 "$LOG" >&2
fi
exit "$rc"
