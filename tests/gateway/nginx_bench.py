#!/usr/bin/python3
"""Requests/s through nginx with auth_request -> Scopekeeper
(deploy/nginx/scopekeeper.conf) vs the same nginx proxying without it.

    tests/gateway/run_nginx_bench.sh [--duration=10] [--connections=16] [--repeat=3]

Scopekeeper (--http_authz_listen, the Max AI policy, one key) and nginx (one
worker) run pinned to --server_core, wrk to --client_core. The upstream is a
server block of the same nginx answering `return 200` (so the upstream costs
next to nothing), reached through the config's api_backend upstream both
ways. Plain and authorized runs alternate, --repeat times; the table shows
medians. Nothing here asserts on timing.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

_HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, _HERE)
import nginx_test  # noqa: E402  (also puts tests/python and scripts/ on sys.path)
import sk_testing  # noqa: E402
import sk_proto  # noqa: E402

WRK_LATENCY = re.compile(r"^\s+(50|90|99)%\s+([\d.]+)(us|ms|s)\s*$", re.M)
WRK_RPS = re.compile(r"Requests/sec:\s+([\d.]+)")
WRK_NON2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")


def to_us(value, unit):
    return float(value) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]


def cpu_seconds(pids):
    """User + system CPU seconds of `pids` (nginx workers: the master's children)."""
    total = 0.0
    for pid in pids:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def nginx_pids(nginx_pid):
    children = subprocess.run(["pgrep", "-P", str(nginx_pid)], stdout=subprocess.PIPE,
                              text=True).stdout.split()
    return [nginx_pid] + [int(c) for c in children]


def wrk(args, port, key, nginx, scopekeeper):
    cmd = ["taskset", "-c", str(args.client_core), "wrk", "-t1", "-c%d" % args.connections,
           "-d%ds" % args.duration, "--latency", "-H", "Host: api.maxcare.ai",
           "-H", "Authorization: Bearer " + key, "-H", "X-Organization-Id: org_bench",
           "http://127.0.0.1:%d/v1/patients" % port]
    n0, s0 = cpu_seconds(nginx), cpu_seconds(scopekeeper)
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         check=True).stdout
    n1, s1 = cpu_seconds(nginx), cpu_seconds(scopekeeper)
    non2xx = WRK_NON2XX.search(out)
    if non2xx:
        raise RuntimeError("wrk saw %s non-2xx answers:\n%s" % (non2xx.group(1), out))
    latency = {q: to_us(v, u) for q, v, u in WRK_LATENCY.findall(out)}
    rps = float(WRK_RPS.search(out).group(1))
    per_request = lambda seconds: seconds / (rps * args.duration) * 1e6  # noqa: E731
    return {"rps": rps, "p50": latency["50"], "p99": latency["99"],
            "nginx_us": per_request(n1 - n0), "sk_us": per_request(s1 - s0)}


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--duration", type=int, default=10)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--server_core", type=int, default=0)
    p.add_argument("--client_core", type=int, default=1)
    args = p.parse_args()
    tmp = tempfile.mkdtemp(prefix="scopekeeper-nginx-bench-")
    stubs = sk_testing.load_stubs(tmp)
    pin = ["taskset", "-c", str(args.server_core)]
    server = sk_testing.ServerProcess(
        os.path.join(tmp, "data"), policy_file=nginx_test.MAXCARE_POLICY,
        extra_args=["--http_authz_listen=127.0.0.1:0"])
    nginx = None
    try:
        authz_port = server.wait_for_port(nginx_test.HTTP_AUTHZ)
        grpc_port = server.wait_for_port()
        # Every thread of the server (setpriv execs it in place).
        subprocess.run(["taskset", "-a", "-p", "-c", str(args.server_core), str(server.proc.pid)],
                       check=True, stdout=subprocess.DEVNULL)
        channel = sk_proto.channel("127.0.0.1:%d" % grpc_port)
        admin = stubs.pb2_grpc.AdminStub(channel)
        md = sk_proto.admin_metadata(
            sk_proto.read_admin_token(os.path.join(tmp, "data", "admin_token")))
        key = admin.CreateKey(stubs.pb2.CreateKeyRequest(
            organization_id="org_bench", name="bench", apis=["marketplace"],
            scopes=["read:patients"]), timeout=10, metadata=md).secret
        port, plain_port, backend_port = (nginx_test.free_port() for _ in range(3))
        extra = """
    server { listen 127.0.0.1:%d; location / { return 200 "ok\\n"; } }
    server {
        listen 127.0.0.1:%d;
        location / {
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://api_backend;
        }
    }""" % (backend_port, plain_port)
        nginx = nginx_test.Nginx(os.path.join(tmp, "nginx"), port, backend_port, authz_port,
                                 extra_conf=extra, command_prefix=pin)
        ngx, sk = nginx_pids(nginx.proc.pid), [server.proc.pid]
        runs = {"plain": [], "auth": []}
        for _ in range(args.repeat):
            runs["plain"].append(wrk(args, plain_port, key, ngx, sk))
            runs["auth"].append(wrk(args, port, key, ngx, sk))
        keys = ("rps", "p50", "p99", "nginx_us", "sk_us")
        med = {name: {k: statistics.median(r[k] for r in rs) for k in keys}
               for name, rs in runs.items()}
        plain, auth = med["plain"], med["auth"]
        print("| nginx (1 worker) | req/s | p50 µs | p99 µs | CPU µs/req nginx | "
              "CPU µs/req Scopekeeper |")
        print("|---|---|---|---|---|---|")
        for label, r in (("without auth_request", plain),
                         ("with auth_request → Scopekeeper", auth)):
            print("| %s | %s | %.0f | %.0f | %.1f | %.1f |" % (
                label, format(int(r["rps"]), ","), r["p50"], r["p99"], r["nginx_us"],
                r["sk_us"]))
        print("| with − without | %.2f× | %+.0f | %+.0f | %+.1f | %+.1f |" % (
            auth["rps"] / plain["rps"], auth["p50"] - plain["p50"], auth["p99"] - plain["p99"],
            auth["nginx_us"] - plain["nginx_us"], auth["sk_us"] - plain["sk_us"]))
        print("\nwrk -t1 -c%d -d%ds, %d alternating runs each, medians; load average %s." % (
            args.connections, args.duration, args.repeat,
            open("/proc/loadavg").read().split()[0]))
    finally:
        if nginx is not None:
            nginx.stop()
        server.terminate(timeout=20)


if __name__ == "__main__":
    main()
