"""Keeps deploy/ from rotting: the flag file and the systemd unit.

* Every `--flag` named in deploy/scopekeeper.flags (set or commented out)
  is a flag of the server binary (its `--helpfull`, section server/main.cc),
  and every flag of the binary is in the file.
* The file as written starts the real binary: its /etc/scopekeeper and
  /var/lib/scopekeeper paths are moved into a temporary directory holding a
  generated admin token, TLS certificate and the RxScale policy, and only
  --listen is overridden (port 0). A TLS client then reads the policy with
  the admin token.
* `systemd-analyze verify` accepts deploy/scopekeeper.service with no
  warning, and `systemd-analyze security --offline` rates it 2.0 or better
  (skipped where systemd-analyze is missing).

Under Bazel (//tests/deploy:deploy_test) the paths come from SK_* variables
set by tests/python/run_py_test.sh. From a checkout, after
`bazel build //server:scopekeeper`:
    /usr/bin/python3 -m unittest -v tests/deploy/deploy_test.py
"""

import os
import re
import shutil
import subprocess
import sys
import unittest

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))
sys.path.insert(0, os.path.join(_REPO, "tests", "python"))
import sk_testing  # noqa: E402  (puts scripts/ on sys.path)
import sk_proto  # noqa: E402

import grpc  # noqa: E402

FLAGS_FILE = os.environ.get("SK_DEPLOY_FLAGS") or os.path.join(_REPO, "deploy/scopekeeper.flags")
UNIT_FILE = os.environ.get("SK_DEPLOY_UNIT") or os.path.join(_REPO, "deploy/scopekeeper.service")
CLUSTER_FLAGS_FILE = (os.environ.get("SK_DEPLOY_CLUSTER_FLAGS")
                      or os.path.join(_REPO, "deploy/cluster/scopekeeper-replica.flags"))
RPC_TIMEOUT_S = 10

# `--name=value` lines, active or commented out (`#--name=value`).
FLAG_LINE = re.compile(r"^\s*(#\s*)?--([A-Za-z0-9_]+)=(.*)$")


def server_flags():
    """Flag names of the binary's server/main.cc section of --helpfull."""
    out = subprocess.run([sk_testing.SERVER_BIN, "--helpfull"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, timeout=30).stdout.decode()
    section = out.split("Flags from server/main.cc:", 1)
    if len(section) != 2:
        raise AssertionError("no server/main.cc section in --helpfull:\n" + out)
    body = section[1].split("\n\n", 1)[0]
    return set(re.findall(r"^    --([A-Za-z0-9_]+) ", body, re.M))


def file_flags(path=None):
    """[(name, value, active)] of the flag file, in order."""
    flags = []
    with open(path or FLAGS_FILE, encoding="utf-8") as f:
        for line in f:
            m = FLAG_LINE.match(line.rstrip("\n"))
            if m:
                flags.append((m.group(2), m.group(3), m.group(1) is None))
    return flags


class FlagFileTest(unittest.TestCase):

    def setUp(self):
        sk_testing.require_server_binary()

    def test_every_flag_in_the_file_exists_and_every_flag_is_documented(self):
        have = server_flags()
        self.assertIn("listen", have)  # the --helpfull parsing works
        named = [name for name, _, _ in file_flags()]
        self.assertEqual(sorted(set(named) - have), [],
                         "deploy/scopekeeper.flags names flags the server does not have")
        self.assertEqual(sorted(have - set(named)), [],
                         "server flags missing from deploy/scopekeeper.flags")
        self.assertEqual(len(named), len(set(named)), "a flag is listed twice: %s" % named)

    def test_the_cluster_replica_file_names_only_server_flags(self):
        have = server_flags()
        named = [name for name, _, _ in file_flags(CLUSTER_FLAGS_FILE)]
        self.assertIn("etcd_endpoints", named)
        self.assertEqual(sorted(set(named) - have), [],
                         "deploy/cluster/scopekeeper-replica.flags names flags the server "
                         "does not have")

    def test_the_file_as_written_starts_the_server_with_tls(self):
        tmp = sk_testing.test_tmpdir(self.addCleanup)
        etc = os.path.join(tmp, "etc-scopekeeper")
        var = os.path.join(tmp, "var-lib-scopekeeper")
        active = {name: value for name, value, on in file_flags() if on}
        # Production values that the test relies on below.
        self.assertTrue(active.get("tls_cert") and active.get("tls_key"), "TLS must be on")
        self.assertTrue(active.get("metrics_listen", "").startswith("127.0.0.1:"),
                        "metrics must stay on loopback")
        self.assertEqual(active.get("data_dir"), "/var/lib/scopekeeper")  # StateDirectory=

        def moved(value):
            return value.replace("/etc/scopekeeper", etc).replace("/var/lib/scopekeeper", var)

        # The files the flags name, made where the moved flags look for them.
        os.makedirs(os.path.join(etc, "tls"))
        token = "deploy-test-admin-token-0123456789abcdef"
        # Mode 0600, as the flag file says: the server refuses a token file
        # others can read.
        with open(os.open(moved(active["admin_token_file"]),
                          os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(token + "\n")
        shutil.copy(sk_testing.POLICY_FILE, moved(active["policy_file"]))
        cert, key = moved(active["tls_cert"]), moved(active["tls_key"])
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                        "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", key, "-out", cert], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        flagfile = os.path.join(tmp, "scopekeeper.flags")
        with open(FLAGS_FILE, encoding="utf-8") as src, open(flagfile, "w") as dst:
            dst.write(moved(src.read()))
        # Only the ports change: a test must not take 50051 or 9464.
        metrics_port = active["metrics_listen"].rsplit(":", 1)[0] + ":0"
        server = sk_testing.ServerProcess(
            moved(active["data_dir"]),
            extra_args=["--flagfile=" + flagfile, "--listen=127.0.0.1:0",
                        "--metrics_listen=" + metrics_port])
        self.addCleanup(server.terminate, 5)
        port = server.wait_for_port()

        with open(cert, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        channel = grpc.secure_channel("localhost:%d" % port, creds,
                                      options=[("grpc.enable_http_proxy", 0)])
        self.addCleanup(channel.close)
        stubs = sk_testing.load_stubs(tmp)
        admin = stubs.pb2_grpc.AdminStub(channel)
        policy = admin.GetPolicy(stubs.pb2.GetPolicyRequest(), timeout=RPC_TIMEOUT_S,
                                 metadata=sk_proto.admin_metadata(token))
        self.assertEqual([a.name for a in policy.apis],
                         ["external-pharmacy", "management", "public"])
        # Plaintext is refused on the TLS port.
        plain = sk_proto.channel("127.0.0.1:%d" % port)
        self.addCleanup(plain.close)
        with self.assertRaises(grpc.RpcError):
            stubs.pb2_grpc.AdminStub(plain).GetPolicy(
                stubs.pb2.GetPolicyRequest(), timeout=2, metadata=sk_proto.admin_metadata(token))
        self.assertEqual(server.terminate(timeout=20), 0, server.log_tail())
        self.assertTrue(os.path.isdir(os.path.join(var, "db")))
        self.assertFalse(os.path.exists(os.path.join(var, "admin_token")),
                         "the server generated a token instead of reading --admin_token_file")


@unittest.skipUnless(shutil.which("systemd-analyze"), "systemd-analyze is not installed")
class SystemdUnitTest(unittest.TestCase):

    def unit_copy(self):
        """The unit with ExecStart's binary pointed at the built one (verify
        checks that it exists and is executable)."""
        tmp = sk_testing.test_tmpdir(self.addCleanup)
        with open(UNIT_FILE, encoding="utf-8") as f:
            text = f.read()
        self.assertIn("ExecStart=/usr/local/bin/scopekeeper ", text)
        path = os.path.join(tmp, "scopekeeper.service")
        with open(path, "w") as f:
            f.write(text.replace("/usr/local/bin/scopekeeper",
                                 os.path.abspath(sk_testing.SERVER_BIN)))
        return path

    def test_verify_reports_nothing(self):
        sk_testing.require_server_binary()
        result = subprocess.run(["systemd-analyze", "verify", self.unit_copy()],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        out = result.stdout.decode()
        self.assertEqual(result.returncode, 0, out)
        # Unknown keys and bad values are warnings with exit status 0.
        self.assertEqual(out.strip(), "", out)

    def test_security_exposure_is_at_most_2(self):
        sk_testing.require_server_binary()
        result = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=20",
                                 "--no-pager", self.unit_copy()],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
        out = result.stdout.decode()
        self.assertEqual(result.returncode, 0, out[-2000:])
        self.assertIn("Overall exposure level", out)


if __name__ == "__main__":
    unittest.main()
