#!/usr/bin/python3
"""Load runs of issue #7: Scopekeeper against a minimal gRPC server (the floor).

Started by tests/load/run_load.sh (which builds the binaries with --config=opt)
and by //tests/load:load_smoke_test (tiny, --smoke). Every server runs pinned to
--server_core with `taskset`, every load generator to --client_core.

Sections (--sections, comma-separated):
  floor   floor_server Floor.Check vs Scopekeeper Authorize (http form, RxScale
          policy, --keys keys) at one connection x concurrency 1/16/64/256 and
          4 connections x 16, with load_client (C++, checks every answer) and
          h2load (raw gRPC frames, one fixed request; checks HTTP status only).
  batch   BatchAuthorize with 10/100/1000 entries per call, full and compact
          answers (BatchAuthorizeRequest.compact) alternating, --repeat rounds.
          --baseline_scopekeeper adds the old build to the same rounds.
  writes  durable GrantScopes at c1 and c64; Authorize c16 alone and while
          GrantScopes load with 1, 4 and 64 in flight runs (do reads stall
          behind writes?).
  revoke  c64 Authorize load while keys are revoked one at a time.
  bisect  issue #18's bisection: tests/load/bisect_server at each --step (the
          floor with Scopekeeper's pieces added one at a time), floor_server
          and Scopekeeper, alternating step by step for --repeat rounds,
          h2load at 1x16 and 1x64, issue #18's request (BISECT_PATH); a table
          of medians and the CPU each step adds. --baseline_scopekeeper adds
          another Scopekeeper binary to the same rounds (before/after).
  extauthz
          Envoy ext_authz Check (a CheckRequest as Envoy fills it with every
          header, and with deploy/envoy's allowed_headers; the same key and
          route) vs Authorize, h2load,
          alternating (each round starting with another of the three), c16
          and c64, --repeat rounds; the table adds each round's ratio to its
          own Authorize (paired, median). --baseline_scopekeeper adds another
          Scopekeeper binary to the same rounds (before/after).

Keys are created once per --keys through Admin.CreateKey (load_client
--rpc=seed) into <work_dir>/seed-<keys>/ and reused by later runs (each run
serves a copy of that data dir). Results: one JSON object per measurement in
<work_dir>/results.jsonl, markdown tables on stdout and in <work_dir>/report.md.
Exit status 1 if any measurement had an error, a wrong answer or a revocation
violation (the smoke test's only check: nothing here asserts on timing).
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

LISTENING = re.compile(r"listening on (\S+:\d+)")
LEVELS = [(1, 1), (1, 16), (1, 64), (1, 256), (4, 16)]  # (connections, concurrency)
EXTAUTHZ_LEVELS = [(1, 16), (1, 64)]
BISECT_LEVELS = [(1, 16), (1, 64)]
# tests/load/bisect_server.cc's --step values, in order (each adds a piece).
BISECT_STEPS = ["floor", "authorize", "response", "trace_id", "services", "health",
                "reflection", "builder", "raw_arena", "interceptor", "call_tracker",
                "caller_auth"]
BATCH_SIZES = [10, 100, 1000]
WRITERS_DURING_READS = [1, 4, 64]  # GrantScopes in flight during Authorize c16
API = "external-pharmacy"
PATH = "/v1/external-pharmacy-api-v1/pharmacy_orders/ord_42"  # needs orders_read
# Issue #18's request: what a gateway sends for GET .../pharmacy_orders/ (the
# list route, also orders_read); tests/load/bisect_server answers it with
# the same matched_route.
BISECT_PATH = "/v1/external-pharmacy-api-v1/pharmacy_orders/"


def log(msg):
    print("[run_load %s] %s" % (time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- protobuf wire encoding, enough for the two request bodies h2load sends ---

def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number, payload):  # length-delimited field
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def authorize_request(secret, path=PATH):
    http = _field(1, API) + _field(2, "GET") + _field(3, path)
    return _field(1, secret) + _field(4, http)


def _varint_field(number, value):
    return _varint(number << 3) + _varint(value)


def check_request(secret, shipped=False):
    """envoy.service.auth.v3.CheckRequest as Envoy's ext_authz filter fills it:
    the peers' addresses, the request's time, id, method, path, host, scheme,
    protocol and every header (Envoy's default); `shipped`: only the headers
    deploy/envoy/envoy.yaml's allowed_headers lets through (here the
    credential and the request id Envoy adds)."""
    headers = []
    if not shipped:
        headers += [(":authority", "api.rxscale.com"), (":method", "GET"), (":path", PATH),
                    (":scheme", "https"), ("user-agent", "curl/7.88.1"), ("accept", "*/*"),
                    ("x-forwarded-proto", "https")]
    headers += [("x-request-id", "5f2c1a9e-8f7e-4a43-9a0e-1d7c2f0e6b11"),
                ("authorization", "Bearer " + secret)]
    http = (_field(1, "14725993211186733543") + _field(2, "GET") +
            b"".join(_field(3, _field(1, k) + _field(2, v)) for k, v in headers) +
            _field(4, PATH) + _field(5, "api.rxscale.com") + _field(6, "https") +
            _field(10, "HTTP/1.1"))
    time = _varint_field(1, 1796428800) + _varint_field(2, 123456789)  # Timestamp

    def peer(address, port):  # Peer.address.socket_address
        return _field(1, _field(1, _field(2, address) + _varint_field(3, port)))

    return _field(1, _field(1, peer("10.1.2.3", 40312)) + _field(2, peer("10.1.2.4", 8000)) +
                  _field(4, _field(1, time) + _field(2, http)))  # attributes


def floor_request(key):
    return _field(1, key) + _field(2, "orders_read")


def grpc_frame(message):
    return b"\x00" + len(message).to_bytes(4, "big") + message


def floor_key(i):  # tests/load/floor_keys.h FloorKey()
    return ("rxs_ph_floor%d_" % i).ljust(39, "x")


class Server:
    """A server binary pinned to one core; its output is copied to a log file.

    A thread drains the output pipe into the file and signals the
    `listening on HOST:PORT` line, so start-up waits on that event, not on a
    polling loop (as tests/python/sk_testing.py's ServerProcess does).
    """

    def __init__(self, name, cmd, core, log_path, startup_s=300):
        self.name = name
        self.log_path = log_path
        self.address = None
        self._log = open(log_path, "w")
        self._listening = threading.Event()
        self.proc = subprocess.Popen(["taskset", "-c", str(core)] + cmd, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     errors="replace")
        self._drainer = threading.Thread(target=self._drain, name=name + "-output", daemon=True)
        self._drainer.start()
        # Set by the listening line, or at EOF when the server exits first.
        if not self._listening.wait(timeout=startup_s) or self.address is None:
            self.stop()
            with open(log_path) as f:
                raise RuntimeError("%s did not start:\n%s" % (name, f.read()[-2000:]))

    def _drain(self):
        for line in self.proc.stdout:
            self._log.write(line)
            self._log.flush()
            if self.address is None:
                m = LISTENING.search(line)
                if m:
                    self.address = m.group(1)
                    self._listening.set()
        self._listening.set()  # EOF

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._drainer.join(timeout=30)
        self._log.close()
        return self.proc.returncode


class Runner:
    def __init__(self, args):
        self.args = args
        self.results = []
        self.failures = []
        self.out = open(os.path.join(args.work_dir, "results.jsonl"), "a")

    def client_cmd(self, **flags):
        cmd = ["taskset", "-c", str(self.args.client_core), self.args.load_client]
        a = self.args
        if a.smoke:
            flags.setdefault("warmup", 0)
            flags.setdefault("requests", a.smoke_requests)
        else:
            flags.setdefault("warmup", a.warmup)
            flags.setdefault("duration", a.duration)
        for k, v in flags.items():
            cmd.append("--%s=%s" % (k, v))
        return cmd

    def record(self, row):
        row["loadavg"] = loadavg()
        row["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.results.append(row)
        self.out.write(json.dumps(row, sort_keys=True) + "\n")
        self.out.flush()
        bad = [k for k in ("errors", "wrong", "violations", "failed", "revoke_errors", "never_denied")
               if row.get(k)]
        if bad:
            self.failures.append("%s: %s (%s)" % (row.get("label"), ", ".join(
                "%s=%s" % (k, row[k]) for k in bad), row.get("first_error", "")))
        log("%s: %s" % (row.get("label"), json.dumps(
            {k: row.get(k) for k in ("rps", "decisions_per_s", "p50_us", "p99_us", "server_cpu",
                                      "errors", "wrong", "loadavg") if k in row})))
        return row

    def load_client(self, label, **flags):
        """Runs load_client to completion; returns its JSON line as a dict."""
        proc = subprocess.run(self.client_cmd(label=label, **flags), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
        line = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
        if not line.startswith("{"):
            raise RuntimeError("load_client %s failed (%d): %s" % (label, proc.returncode,
                                                                    proc.stderr[-2000:]))
        row = json.loads(line)
        row["tool"] = "load_client"
        if proc.returncode != 0:
            row["errors"] = row.get("errors", 0) or 1
            row["first_error"] = row.get("first_error") or proc.stderr[-500:]
        return self.record(row)

    def h2load(self, label, server, method, body, connections, concurrency, headers=()):
        """Runs h2load with one fixed gRPC request; CPU of `server` measured around it."""
        a = self.args
        tmp = tempfile.mkdtemp(dir=a.work_dir)
        body_path, log_path = os.path.join(tmp, "body.bin"), os.path.join(tmp, "requests.log")
        with open(body_path, "wb") as f:
            f.write(grpc_frame(body))
        cmd = ["taskset", "-c", str(a.client_core), "h2load", "-t", "1",
               "-c", str(connections), "-m", str(concurrency), "-d", body_path,
               "-H", "content-type: application/grpc", "-H", "te: trailers",
               "--log-file=" + log_path]
        for header in headers:
            cmd += ["-H", header]
        if a.smoke:
            cmd += ["-n", str(max(a.smoke_requests, connections * concurrency))]
        else:
            # h2load takes whole numbers with a unit ("5.0" is a value error).
            cmd += ["-D", "%dms" % round(a.duration * 1000),
                    "--warm-up-time=%dms" % round(a.warmup * 1000)]
        cmd.append("http://%s%s" % (server.address, method))
        cpu0, t0 = cpu_seconds(server.pid), time.monotonic()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        cpu1, t1 = cpu_seconds(server.pid), time.monotonic()
        out = proc.stdout
        row = {"label": label, "tool": "h2load", "rpc": method, "connections": connections,
               "concurrency": concurrency, "errors": 0 if proc.returncode == 0 else 1,
               "first_error": "" if proc.returncode == 0 else out[-500:]}
        m = re.search(r"finished in ([\d.]+)(m?s), ([\d.]+) req/s", out)
        r = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                      r"(\d+) failed, (\d+) errored, (\d+) timeout", out)
        s = re.search(r"status codes: (\d+) 2xx", out)
        if not (m and r and s):
            row["errors"] = 1
            row["first_error"] = "cannot parse h2load output: " + out[-500:]
            shutil.rmtree(tmp, True)
            return self.record(row)
        done, succeeded = int(r.group(3)), int(r.group(4))
        row.update(rps=int(float(m.group(3))), requests=done,
                   failed=int(r.group(5)) + int(r.group(6)) + int(r.group(7)) + (done - int(s.group(1))))
        latencies = []
        with open(log_path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3:
                    latencies.append(int(parts[2]))
        latencies.sort()
        if latencies:
            for q, name in ((0.5, "p50_us"), (0.9, "p90_us"), (0.99, "p99_us")):
                row[name] = latencies[min(int(q * len(latencies)), len(latencies) - 1)]
            row["max_us"] = latencies[-1]
        row["server_cpu"] = round((cpu1 - cpu0) / (t1 - t0), 4)
        if row["rps"]:
            row["server_cpu_us_per_rpc"] = row["server_cpu"] / row["rps"] * 1e6
        shutil.rmtree(tmp, True)
        return self.record(row)

    # --- servers ---

    def seed(self):
        """<work_dir>/seed-N/{data,keys.tsv,seed.json}, created once."""
        a = self.args
        seed_dir = os.path.join(a.work_dir, "seed-%d" % a.keys)
        keys_file = os.path.join(seed_dir, "keys.tsv")
        if os.path.exists(os.path.join(seed_dir, "seed.json")):
            log("reusing %d seeded keys in %s" % (a.keys, seed_dir))
            return seed_dir
        shutil.rmtree(seed_dir, True)
        os.makedirs(seed_dir)
        log("seeding %d keys through Admin.CreateKey (c64)" % a.keys)
        server = self.scopekeeper(os.path.join(seed_dir, "data"), seed_dir)
        try:
            started = time.monotonic()
            row = self.load_client("seed CreateKey x%d, c64" % a.keys, target=server.address,
                                   rpc="seed", keys=a.keys, concurrency=64, keys_file=keys_file,
                                   admin_token_file=os.path.join(seed_dir, "data", "admin_token"),
                                   server_pid=server.pid, requests=a.keys, warmup=0)
            row["wall_seconds"] = round(time.monotonic() - started, 1)
        finally:
            server.stop()
        if row.get("errors") or row.get("wrong"):
            raise RuntimeError("seeding failed: %s" % row.get("first_error"))
        with open(os.path.join(seed_dir, "seed.json"), "w") as f:
            json.dump(row, f)
        return seed_dir

    def scopekeeper(self, data_dir, log_dir, name="scopekeeper", binary=None):
        a = self.args
        return Server(name, [binary or a.scopekeeper, "--listen=127.0.0.1:0",
                             "--data_dir=" + data_dir, "--policy_file=" + a.policy],
                      a.server_core, os.path.join(log_dir, name + ".log"))

    def fresh_scopekeeper(self, seed_dir, tag, binary=None):
        """A Scopekeeper serving a copy of the seeded data dir."""
        run_dir = os.path.join(self.args.work_dir, "run-" + tag)
        shutil.rmtree(run_dir, True)
        shutil.copytree(os.path.join(seed_dir, "data"), os.path.join(run_dir, "data"))
        started = time.monotonic()
        server = self.scopekeeper(os.path.join(run_dir, "data"), run_dir, binary=binary)
        log("scopekeeper (%s) up in %.1f s on %s, pid %d" % (tag, time.monotonic() - started,
                                                            server.address, server.pid))
        server.admin_token_file = os.path.join(run_dir, "data", "admin_token")
        server.run_dir = run_dir
        return server

    # --- sections ---

    def section_floor(self, seed_dir, keys_file, first_secret):
        a = self.args
        floor = Server("floor_server", [a.floor_server, "--listen=127.0.0.1:0",
                                        "--keys=%d" % a.keys],
                       a.server_core, os.path.join(a.work_dir, "floor_server.log"))
        sk = self.fresh_scopekeeper(seed_dir, "floor")
        try:
            self.verify_h2load_bodies(floor, sk, first_secret)
            # Floor and Scopekeeper alternate, level by level, --repeat times:
            # the other builds on the machine load both alike.
            for conns, conc in [lv for _ in range(a.repeat) for lv in LEVELS]:
                level = "%dx%d" % (conns, conc)
                self.load_client("floor load_client " + level, target=floor.address, rpc="floor",
                                 keys=a.keys, connections=conns, concurrency=conc,
                                 server_pid=floor.pid)
                self.load_client("scopekeeper load_client " + level, target=sk.address,
                                 rpc="authorize", keys_file=keys_file, connections=conns,
                                 concurrency=conc, server_pid=sk.pid)
                self.h2load("floor h2load " + level, floor, "/scopekeeper.load.v1.Floor/Check",
                            floor_request(floor_key(0)), conns, conc)
                self.h2load("scopekeeper h2load " + level, sk,
                            "/scopekeeper.v1.Authorizer/Authorize", authorize_request(first_secret),
                            conns, conc)
        finally:
            self.check_stopped(floor)
            self.check_stopped(sk)

    def section_bisect(self, seed_dir, keys_file, first_secret):
        """Every bisect step, floor_server and Scopekeeper, all up at once (idle
        servers cost nothing), measured in turn, --repeat rounds."""
        a = self.args
        servers = []  # (name, server, method, body, headers)
        try:
            floor = Server("floor_server", [a.floor_server, "--listen=127.0.0.1:0",
                                            "--keys=%d" % a.keys],
                           a.server_core, os.path.join(a.work_dir, "floor_server.log"))
            servers.append(("floor_server", floor, "/scopekeeper.load.v1.Floor/Check",
                             floor_request(floor_key(0)), ()))
            for step in BISECT_STEPS:
                server = Server("bisect-" + step,
                                [a.bisect_server, "--listen=127.0.0.1:0", "--step=" + step,
                                 "--keys=%d" % a.keys, "--keys_file=" + keys_file],
                                a.server_core, os.path.join(a.work_dir, "bisect-%s.log" % step))
                if step == "floor":
                    servers.append((step, server, "/scopekeeper.load.v1.Floor/Check",
                                    floor_request(floor_key(0)), ()))
                else:
                    servers.append((step, server, "/scopekeeper.v1.Authorizer/Authorize",
                                    authorize_request(first_secret, BISECT_PATH),
                                    ("authorization: Bearer bisect",)
                                    if step == "caller_auth" else ()))
            sk = self.fresh_scopekeeper(seed_dir, "bisect")
            servers.append(("scopekeeper", sk, "/scopekeeper.v1.Authorizer/Authorize",
                            authorize_request(first_secret, BISECT_PATH), ()))
            if a.baseline_scopekeeper:  # before/after a change, in the same run
                base = self.fresh_scopekeeper(seed_dir, "bisect-baseline",
                                              binary=a.baseline_scopekeeper)
                servers.append(("scopekeeper (baseline)", base,
                                "/scopekeeper.v1.Authorizer/Authorize",
                                authorize_request(first_secret, BISECT_PATH), ()))
            for name, server, method, body, headers in servers:
                self.verify_h2load_body(server, method, body, headers)
            for _ in range(a.repeat):
                for conns, conc in BISECT_LEVELS:
                    level = "%dx%d" % (conns, conc)
                    for name, server, method, body, headers in servers:
                        self.h2load("bisect %s %s" % (name, level), server, method, body,
                                    conns, conc, headers)
        finally:
            for _, server, _, _, _ in servers:
                self.check_stopped(server)

    def verify_h2load_body(self, server, method, body, headers=()):
        """h2load sees only HTTP status 200: check once that `body` is allowed."""
        import grpc  # Debian's python3-grpcio; only needed here
        metadata = [tuple(h.split(": ", 1)) for h in headers]
        with grpc.insecure_channel(server.address) as channel:
            reply = channel.unary_unary(method)(body, timeout=10, metadata=metadata)
        if not reply.startswith(b"\x08\x01"):  # field 1 (allowed) = true
            raise RuntimeError("%s did not allow the h2load request: %r" % (server.name, reply))

    def verify_h2load_bodies(self, floor, sk, secret):
        """h2load sees only HTTP status 200: check once that its bodies are allowed."""
        import grpc  # Debian's python3-grpcio; only needed here
        for server, method, body in (
                (floor, "/scopekeeper.load.v1.Floor/Check", floor_request(floor_key(0))),
                (sk, "/scopekeeper.v1.Authorizer/Authorize", authorize_request(secret))):
            with grpc.insecure_channel(server.address) as channel:
                reply = channel.unary_unary(method)(body, timeout=10)
            if not reply.startswith(b"\x08\x01"):  # field 1 (allowed) = true
                raise RuntimeError("%s did not allow the h2load request: %r" % (server.name, reply))

    def section_extauthz(self, seed_dir, first_secret):
        a = self.args
        check = "/envoy.service.auth.v3.Authorization/Check"
        servers = [("extauthz", self.fresh_scopekeeper(seed_dir, "extauthz"))]
        try:
            if a.baseline_scopekeeper:  # before/after a change, in the same run
                servers.append(("extauthz (baseline)", self.fresh_scopekeeper(
                    seed_dir, "extauthz-baseline", binary=a.baseline_scopekeeper)))
            import grpc  # Debian's python3-grpcio; only needed here
            for _, sk in servers:
                with grpc.insecure_channel(sk.address) as channel:
                    for shipped in (False, True):
                        reply = channel.unary_unary(check)(check_request(first_secret, shipped),
                                                           timeout=10)
                        if not reply.startswith(b"\x0a\x00\x1a"):  # status {code 0}, ok_response
                            raise RuntimeError("Check did not allow the h2load request: %r" % reply)
            calls = [("Authorize", "/scopekeeper.v1.Authorizer/Authorize",
                      authorize_request(first_secret)),
                     ("Check", check, check_request(first_secret)),
                     ("Check-shipped", check, check_request(first_secret, shipped=True))]
            rounds = [(i, lv) for i in range(a.repeat) for lv in EXTAUTHZ_LEVELS]
            for i, (conns, conc) in rounds:
                level = "%dx%d" % (conns, conc)
                # Each round starts with another call: none is always measured
                # first or last, where a drift within the round would favour it.
                turn = calls[i % len(calls):] + calls[:i % len(calls)]
                for prefix, sk in servers:
                    for name, method, body in turn:
                        self.h2load("%s %s %s" % (prefix, name, level), sk, method, body,
                                    conns, conc)
        finally:
            for _, sk in servers:
                self.check_stopped(sk)

    def section_batch(self, seed_dir, keys_file):
        """Full and compact answers (BatchAuthorizeRequest.compact), alternating,
        --repeat rounds; the tables show medians."""
        servers = [("scopekeeper", self.fresh_scopekeeper(seed_dir, "batch"))]
        try:
            if self.args.baseline_scopekeeper:  # before/after a change, same rounds
                servers.append(("scopekeeper (baseline)", self.fresh_scopekeeper(
                    seed_dir, "batch-baseline", binary=self.args.baseline_scopekeeper)))
            for _ in range(self.args.repeat):
                for size in BATCH_SIZES:
                    for compact in (False, True):
                        for name, sk in servers:
                            self.load_client(
                                "%s BatchAuthorize x%d%s, 1x4" % (
                                    name, size, " compact" if compact else ""),
                                target=sk.address, rpc="batch", batch_size=size,
                                compact=str(compact).lower(), keys_file=keys_file,
                                concurrency=4, server_pid=sk.pid,
                                **({"requests": max(4, self.args.smoke_requests // size)}
                                   if self.args.smoke else {}))
        finally:
            for _, sk in servers:
                self.check_stopped(sk)

    def section_writes(self, seed_dir, keys_file):
        a = self.args
        sk = self.fresh_scopekeeper(seed_dir, "writes")
        try:
            for conc in (1, 64):
                self.load_client("scopekeeper GrantScopes 1x%d" % conc, target=sk.address,
                                 rpc="grant", concurrency=conc, keys_file=keys_file,
                                 admin_token_file=sk.admin_token_file, server_pid=sk.pid)
            self.load_client("scopekeeper Authorize 1x16, no writes", target=sk.address,
                             rpc="authorize", concurrency=16, keys_file=keys_file,
                             server_pid=sk.pid)
            # Both at once, both on the client core: writes start first and
            # run longer than the reads' window. Several writer counts: how
            # reads degrade with the number of writes in flight.
            extra = 2 if not a.smoke else 0
            for writers in WRITERS_DURING_READS:
                writer = subprocess.Popen(
                    self.client_cmd(label="scopekeeper GrantScopes 1x%d, during reads" % writers,
                                    target=sk.address, rpc="grant", concurrency=writers,
                                    keys_file=keys_file, admin_token_file=sk.admin_token_file,
                                    **({"duration": a.duration + extra, "warmup": a.warmup}
                                       if not a.smoke else {})),
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                time.sleep(0.5 if not a.smoke else 0)
                self.load_client("scopekeeper Authorize 1x16, during GrantScopes 1x%d" % writers,
                                 target=sk.address, rpc="authorize", concurrency=16,
                                 keys_file=keys_file, server_pid=sk.pid)
                out, err = writer.communicate(timeout=600)
                if not out.strip().startswith("{"):
                    raise RuntimeError("concurrent writer failed: " + err[-2000:])
                row = json.loads(out.strip().splitlines()[-1])
                row["tool"] = "load_client"
                self.record(row)
        finally:
            self.check_stopped(sk)

    def section_revoke(self, seed_dir, keys_file):
        a = self.args
        sk = self.fresh_scopekeeper(seed_dir, "revoke")
        try:
            flags = dict(target=sk.address, rpc="revoke", concurrency=64, keys_file=keys_file,
                         admin_token_file=sk.admin_token_file, server_pid=sk.pid,
                         revocations=a.revocations)
            if a.smoke:
                flags.update(requests=0, warmup=0.2)  # runs until the revoker is done
            self.load_client("scopekeeper revoke during Authorize 1x64", **flags)
        finally:
            self.check_stopped(sk)

    def check_stopped(self, server):
        rc = server.stop()
        if rc != 0:
            self.failures.append("%s exited %s on SIGTERM (log: %s)" % (server.name, rc,
                                                                        server.log_path))


def fmt(v, digits=0):
    if v is None:
        return "—"
    if isinstance(v, float) or digits:
        return "{:,.{d}f}".format(v, d=digits)
    return "{:,}".format(v)


def median(values):
    values = sorted(values)
    return values[len(values) // 2] if values else None


def load_range(loads):
    lo, hi = min(loads), max(loads)
    return "%.1f" % lo if lo == hi else "%.1f–%.1f" % (lo, hi)


def merge(rows):
    """Repeats of one measurement: the median of each figure; load average as a range."""
    merged = dict(rows[-1])
    for k, v in rows[-1].items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            merged[k] = median([r[k] for r in rows if isinstance(r.get(k), (int, float))])
    loads = [float(r["loadavg"].split()[0]) for r in rows]
    merged["load_min"], merged["load_max"] = min(loads), max(loads)
    merged["loadavg"] = load_range(loads)
    merged["repeats"] = len(rows)
    # The best round: on a shared machine noise only ever slows a run, so
    # the fastest of the repeats is the least disturbed (reported beside
    # the median, never instead of it).
    rps = [r["rps"] for r in rows if isinstance(r.get("rps"), (int, float))]
    merged["rps_best"] = max(rps) if rps else None
    return merged


def report(results):
    """Markdown tables from the results of this run (medians of repeats)."""
    grouped = {}
    for r in results:
        grouped.setdefault(r["label"], []).append(r)
    by = {label: merge(rows) for label, rows in grouped.items()}
    results = [by[label] for label in grouped]
    lines = []
    floor_rows = [(tool, "%dx%d" % lv) for tool in ("load_client", "h2load") for lv in LEVELS]
    if any("floor %s %s" % (t, l) in by for t, l in floor_rows):
        lines += ["| client | conns×conc | floor req/s | SK req/s | SK/floor | floor p50/p99 µs | "
                  "SK p50/p99 µs | p99 SK/floor | floor CPU µs/req | SK CPU µs/req | "
                  "CPU SK/floor | load avg (1 min) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for tool, level in floor_rows:
            f, s = by.get("floor %s %s" % (tool, level)), by.get("scopekeeper %s %s" % (tool, level))
            if not (f and s):
                continue
            fc, sc = f.get("server_cpu_us_per_rpc"), s.get("server_cpu_us_per_rpc")
            lines.append("| %s | %s | %s | %s | %.2f | %s / %s | %s / %s | %.2f | %s | %s | %s | %s |" % (
                tool, level.replace("x", "×"), fmt(f.get("rps")), fmt(s.get("rps")),
                s["rps"] / f["rps"] if f.get("rps") else 0,
                fmt(f.get("p50_us"), 0), fmt(f.get("p99_us"), 0),
                fmt(s.get("p50_us"), 0), fmt(s.get("p99_us"), 0),
                s["p99_us"] / f["p99_us"] if f.get("p99_us") else 0,
                fmt(fc, 1), fmt(sc, 1), "%.2f" % (sc / fc) if fc and sc else "—",
                load_range([f["load_min"], f["load_max"], s["load_min"], s["load_max"]])))
        lines.append("")
    if any(r["label"].startswith("extauthz ") for r in results):
        # Paired: each round's ratio to the Authorize measured just before it
        # (same round, same noise), the median over rounds -- steadier than
        # the ratio of the medians when rounds are slowed unevenly.
        def paired(label, authorize_label, key):
            pairs = [r[key] / z[key] for r, z in zip(grouped.get(label, []),
                                                     grouped.get(authorize_label, []))
                     if r.get(key) and z.get(key)]
            return median(pairs) if pairs else None

        lines += ["| h2load conns×conc | server | request | req/s (median) | vs Authorize | "
                  "vs Authorize, paired | best round req/s | best vs best | p50/p99 µs | "
                  "CPU µs/req | CPU vs Authorize, paired | load avg (1 min) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for level, prefix in [("%dx%d" % lv, p) for lv in EXTAUTHZ_LEVELS
                              for p in ("extauthz", "extauthz (baseline)")]:
            z = by.get("%s Authorize %s" % (prefix, level))
            if not z:
                continue
            for name, title in (("Authorize", "Authorize"),
                                ("Check", "Check, every header (Envoy's default)"),
                                ("Check-shipped", "Check, deploy/envoy's allowed_headers")):
                r = by.get("%s %s %s" % (prefix, name, level))
                if not r:
                    continue
                label = "%s %s %s" % (prefix, name, level)
                authorize_label = "%s Authorize %s" % (prefix, level)
                rps_paired = paired(label, authorize_label, "rps")
                cpu_paired = paired(label, authorize_label, "server_cpu_us_per_rpc")
                lines.append("| %s | %s | %s | %s | %.2f | %s | %s | %.2f | %s / %s | %s | %s | %s |" % (
                    level.replace("x", "×"),
                    "baseline" if prefix.endswith("(baseline)") else "this build", title,
                    fmt(r.get("rps")),
                    r["rps"] / z["rps"] if z.get("rps") else 0,
                    "%.3f" % rps_paired if rps_paired else "—",
                    fmt(r.get("rps_best")),
                    r["rps_best"] / z["rps_best"] if z.get("rps_best") else 0,
                    fmt(r.get("p50_us"), 0), fmt(r.get("p99_us"), 0),
                    fmt(r.get("server_cpu_us_per_rpc"), 1),
                    "%.3f" % cpu_paired if cpu_paired else "—",
                    load_range([r["load_min"], r["load_max"]])))
        lines.append("")
    bisect = [label for label in by if label.startswith("bisect ")]
    if bisect:
        names = ["floor_server"] + BISECT_STEPS + ["scopekeeper", "scopekeeper (baseline)"]
        levels = ["%dx%d" % lv for lv in BISECT_LEVELS]
        lines += ["| step (cumulative) | " + " | ".join(
                      "%s req/s | ×floor | p99 µs | CPU µs/req | Δ CPU µs" % l.replace("x", "×")
                      for l in levels) + " | load avg (1 min) |",
                  "|---|" + "---|---|---|---|---|" * len(levels) + "---|"]
        for name in names:
            cells, loads = [], []
            for level in levels:
                r = by.get("bisect %s %s" % (name, level))
                f = by.get("bisect floor %s" % level)
                if not r:
                    cells.append("— | — | — | — | —")
                    continue
                loads += [r["load_min"], r["load_max"]]
                prev = None
                if name in BISECT_STEPS and BISECT_STEPS.index(name) > 0:
                    # caller_auth is not in the product's default set-up:
                    # Scopekeeper is compared with call_tracker.
                    prev = by.get("bisect %s %s" % (
                        BISECT_STEPS[BISECT_STEPS.index(name) - 1], level))
                elif name.startswith("scopekeeper"):
                    prev = by.get("bisect call_tracker %s" % level)
                cpu = r.get("server_cpu_us_per_rpc")
                delta = (cpu - prev["server_cpu_us_per_rpc"]
                         if prev and cpu and prev.get("server_cpu_us_per_rpc") else None)
                cells.append("%s | %s | %s | %s | %s" % (
                    fmt(r.get("rps")), "%.2f" % (r["rps"] / f["rps"]) if f and f.get("rps") else "—",
                    fmt(r.get("p99_us"), 0), fmt(cpu, 1),
                    "%+.1f" % delta if delta is not None else "—"))
            lines.append("| %s | %s | %s |" % (name, " | ".join(cells),
                                                load_range(loads) if loads else "—"))
        lines.append("")
    other = [r for r in results if not (r["label"].startswith("floor ") or
                                        r["label"].startswith("bisect ") or
                                        r["label"].startswith("scopekeeper load_client ") or
                                        r["label"].startswith("scopekeeper h2load ") or
                                        r["label"].startswith("extauthz "))]
    if other:
        lines += ["| run | calls/s | decisions/s | p50 µs | p99 µs | max µs | server CPU (cores) | "
                  "decisions per server-core-second | errors | load avg |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in other:
            cpu = r.get("server_cpu")
            per_core = r["decisions_per_s"] / cpu if cpu else None
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                r["label"], fmt(r.get("rps")), fmt(r.get("decisions_per_s")),
                fmt(r.get("p50_us"), 0), fmt(r.get("p99_us"), 0), fmt(r.get("max_us"), 0),
                fmt(cpu, 2) if cpu is not None else "—", fmt(per_core, 0) if per_core else "—",
                r.get("errors", 0) + r.get("wrong", 0), r["loadavg"]))
        lines.append("")
    for r in results:
        if r.get("rpc") == "revoke":
            lines += ["Revocation (%d keys, c64 Authorize load): violations %d, never denied %d, "
                      "RevokeKey errors %d." % (r["revocations"], r["violations"],
                                                r["never_denied"], r["revoke_errors"]),
                      "",
                      "| µs | min | p50 | p90 | p99 | max |", "|---|---|---|---|---|---|"]
            for name, title in (("revoke_rpc_us", "RevokeKey call (send → return)"),
                                ("send_to_first_denial_us", "RevokeKey send → first denial seen"),
                                ("return_to_first_denial_us",
                                 "RevokeKey return → first denial seen"),
                                ("return_to_first_denied_send_us",
                                 "RevokeKey return → send of the earliest denied call")):
                d = r[name]
                lines.append("| %s | %s |" % (title, " | ".join(
                    fmt(d[k], 0) for k in ("min", "p50", "p90", "p99", "max"))))
            lines.append("")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--scopekeeper", required=True)
    p.add_argument("--floor_server", required=True)
    p.add_argument("--load_client", required=True)
    p.add_argument("--bisect_server", default="",
                   help="tests/load/bisect_server (needed by --sections=bisect)")
    p.add_argument("--baseline_scopekeeper", default="",
                   help="bisect, extauthz and batch sections: another scopekeeper binary (e.g. "
                        "built before a change), measured in the same rounds as the one built "
                        "here, labelled '(baseline)'")
    p.add_argument("--policy", required=True)
    p.add_argument("--work_dir", required=True)
    p.add_argument("--sections", default="floor,batch,writes,revoke,extauthz")
    p.add_argument("--keys", type=int, default=100000)
    p.add_argument("--duration", type=float, default=5)
    p.add_argument("--warmup", type=float, default=1)
    p.add_argument("--revocations", type=int, default=200)
    p.add_argument("--repeat", type=int, default=3,
                   help="floor, bisect and batch sections: runs (rounds) of each measurement; "
                   "tables show medians")
    p.add_argument("--server_core", type=int, default=0)
    p.add_argument("--client_core", type=int, default=1)
    p.add_argument("--smoke", action="store_true",
                   help="tiny runs by request count; for the test suite")
    p.add_argument("--smoke_requests", type=int, default=300)
    a = p.parse_args()
    for tool in ("taskset", "h2load"):
        if shutil.which(tool) is None:
            sys.exit("run_load: %s is missing; run scripts/install_deps.sh" % tool)
    os.makedirs(a.work_dir, exist_ok=True)
    runner = Runner(a)
    log("load average before: %s; %d CPUs" % (loadavg(), os.cpu_count()))
    seed_dir = runner.seed()
    keys_file = os.path.join(seed_dir, "keys.tsv")
    with open(keys_file) as f:
        first_secret = f.readline().rstrip("\n").split("\t")[1]
    sections = [s for s in a.sections.split(",") if s]
    for name in sections:
        if name == "floor":
            runner.section_floor(seed_dir, keys_file, first_secret)
        elif name == "batch":
            runner.section_batch(seed_dir, keys_file)
        elif name == "writes":
            runner.section_writes(seed_dir, keys_file)
        elif name == "revoke":
            runner.section_revoke(seed_dir, keys_file)
        elif name == "extauthz":
            runner.section_extauthz(seed_dir, first_secret)
        elif name == "bisect":
            if not a.bisect_server:
                sys.exit("run_load: --sections=bisect needs --bisect_server")
            runner.section_bisect(seed_dir, keys_file, first_secret)
        else:
            sys.exit("run_load: unknown section %r" % name)
    text = report(runner.results)
    with open(os.path.join(seed_dir, "seed.json")) as f:
        seed = json.load(f)
    text += ("\nSeeding: %s keys through Admin.CreateKey at c64 took %.1f s (%s keys/s, "
             "load avg %s).\n" % (fmt(a.keys), seed["seconds"], fmt(seed["rps"]), seed["loadavg"]))
    with open(os.path.join(a.work_dir, "report.md"), "w") as f:
        f.write(text)
    print(text)
    if runner.failures:
        print("FAILED:\n  " + "\n  ".join(runner.failures))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
