"""End-to-end test of the scopectl binary against the real scopekeeper binary.

Starts the server on port 0 with a fresh data directory and no policy, then
runs bazel-bin/client/scopectl as a subprocess for a whole admin flow: policy
apply, key create, check (allowed / denied), grant, revoke-scopes, rotate,
revoke, audit, watch, app put and install approve; every --json output is
parsed, and bad input must give a clear message and the documented exit
status (client/scopectl.h). Secrets: a created or rotated secret appears once
in its own command's output and nowhere else; the admin token never.

Under Bazel (//tests/python:scopectl_e2e_test) the paths come from the SK_*
environment variables set by run_py_test.sh. From a checkout, after
`bazel build //server:scopekeeper //client:scopectl`:
    /usr/bin/python3 -m unittest -v tests/python/scopectl_e2e_test.py
"""

import json
import os
import subprocess
import unittest

import sk_testing

SCOPECTL_BIN = os.environ.get("SK_SCOPECTL_BIN") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "bazel-bin/client/scopectl")
CALL_TIMEOUT_S = 30
PREFIX = "/v1/external-pharmacy-api-v1"
ORG = "org_cli"

EXIT_OK, EXIT_DENIED, EXIT_USAGE, EXIT_RPC = 0, 1, 2, 3


class ScopectlE2ETest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        tmp = sk_testing.test_tmpdir(cls.addClassCleanup)
        sk_testing.require_server_binary()
        if not os.access(SCOPECTL_BIN, os.X_OK):
            raise AssertionError(SCOPECTL_BIN + " is missing; run `bazel build //client:scopectl`")
        cls.data_dir = os.path.join(tmp, "data")
        cls.server = sk_testing.ServerProcess(cls.data_dir)
        cls.addClassCleanup(cls.server.terminate, 5)
        port = cls.server.wait_for_port()
        token_file = os.path.join(cls.data_dir, "admin_token")
        with open(token_file) as f:
            cls.admin_token = f.readline().strip()
        cls.env = dict(os.environ, SCOPEKEEPER_ADDR="127.0.0.1:%d" % port,
                       SCOPEKEEPER_ADMIN_TOKEN_FILE=token_file)
        cls.tmp = tmp
        cls.outputs = []  # every stdout and stderr, for the never-printed checks

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.terminate(timeout=20)
        if rc != 0:
            raise AssertionError("after SIGTERM the server exited with %s; output:\n%s"
                                 % (rc, cls.server.log_tail()))

    # Helpers.

    def scopectl(self, *args, want=EXIT_OK, env=None):
        """Runs scopectl; asserts its exit status; returns (stdout, stderr)."""
        proc = subprocess.run([SCOPECTL_BIN] + list(args), env=env or self.env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=CALL_TIMEOUT_S)
        self.outputs += [proc.stdout, proc.stderr]
        self.assertEqual(proc.returncode, want, "scopectl %s\nstdout:\n%s\nstderr:\n%s"
                         % (" ".join(args), proc.stdout, proc.stderr))
        return proc.stdout, proc.stderr

    def json(self, *args, want=EXIT_OK):
        out, _ = self.scopectl("--json", *args, want=want)
        return json.loads(out)

    def check(self, secret, method, path, want):
        decision = self.json("check", "--key", secret, "--api", "external-pharmacy",
                             method, PREFIX + path, want=want)
        self.assertEqual(decision["allowed"], want == EXIT_OK, decision)
        return decision

    def assert_printed_once(self, secret):
        self.assertEqual(sum(o.count(secret) for o in self.outputs), 1,
                         "secret printed more than once (or not at all)")

    # Tests. One flow: each step builds on the state the previous ones left.

    def test_admin_flow(self):
        out, _ = self.scopectl("policy", "apply", sk_testing.POLICY_FILE)
        self.assertRegex(out, r"^policy applied at revision \d+: \d+ scopes, 3 APIs")
        policy = self.json("policy", "get")
        self.assertIn("external-pharmacy", [api["name"] for api in policy["apis"]])
        out, _ = self.scopectl("policy", "get")
        self.assertIn("GET     /pharmacy_orders/", out)

        created = self.json("key", "create", "--org", ORG, "--api", "external-pharmacy",
                            "--scope", "orders_read", "--name", "cli e2e")
        secret, key_id = created["secret"], created["key"]["key_id"]
        self.assertTrue(secret.startswith("rxs_ph_"), secret[:10])
        self.assert_printed_once(secret)
        first_revision = int(created["revision"])

        decision = self.check(secret, "GET", "/pharmacy_orders/", EXIT_OK)
        self.assertEqual(decision["matched_route"], "GET /pharmacy_orders/")
        key_file = os.path.join(self.tmp, "api_key")
        with open(key_file, "w") as f:
            f.write(secret + "\n")
        described = self.json("describe", "--key_file", key_file)
        self.assertEqual(described["key"]["key_id"], key_id)
        self.assertEqual(described["scopes"], ["orders_read"])
        decision = self.check(secret, "GET", "/pharmacy_skus/", EXIT_DENIED)
        self.assertEqual(decision["reason"], "INSUFFICIENT_SCOPE")
        self.assertEqual(decision["missing_scopes"], ["stock_read"])
        out, _ = self.scopectl("check", "--key", secret, "--api", "external-pharmacy",
                               "GET", PREFIX + "/pharmacy_skus/", want=EXIT_DENIED)
        self.assertIn("DENIED", out)
        self.assertIn("Insufficient scope. Required: stock_read", out)

        key = self.json("key", "grant", key_id, "--scope", "stock_read")
        self.assertEqual(key["effective_scopes"], ["orders_read", "stock_read"])
        self.check(secret, "GET", "/pharmacy_skus/", EXIT_OK)
        self.json("key", "revoke-scopes", key_id, "--scope", "stock_read")
        self.check(secret, "GET", "/pharmacy_skus/", EXIT_DENIED)

        out, _ = self.scopectl("key", "rotate", key_id, "--grace_period", "1h")
        rotated = [line.split(": ", 1)[1] for line in out.splitlines()
                   if line.startswith("secret: ")]
        self.assertEqual(len(rotated), 1, out)
        new_secret = rotated[0]
        self.assertNotEqual(new_secret, secret)
        self.assertIn("shown once", out)
        self.assert_printed_once(new_secret)
        self.check(new_secret, "GET", "/pharmacy_orders/", EXIT_OK)
        self.check(secret, "GET", "/pharmacy_orders/", EXIT_OK)  # within the grace period

        out, _ = self.scopectl("key", "revoke", key_id, "--reason", "cli e2e done")
        self.assertRegex(out, r"status:\s+REVOKED")
        for s in (secret, new_secret):
            decision = self.check(s, "GET", "/pharmacy_orders/", EXIT_DENIED)
            self.assertEqual(decision["reason"], "KEY_REVOKED")
            self.assertEqual(decision["http_status"], 401)
        self.assertEqual(self.json("key", "get", key_id)["status"], "REVOKED")
        active = self.json("key", "list", "--org", ORG)["keys"]
        self.assertNotIn(key_id, [k["key_id"] for k in active])
        listed = self.json("key", "list", "--org", ORG, "--include_revoked")
        self.assertIn(key_id, [k["key_id"] for k in listed["keys"]])
        out, _ = self.scopectl("key", "list", "--org", ORG, "--include_revoked")
        self.assertTrue(out.startswith("KEY_ID "), out)
        self.assertIn(key_id, out)

        events = self.json("audit", "--key_id", key_id)["events"]
        self.assertEqual([e["action"] for e in events],
                         ["CreateKey", "GrantScopes", "RevokeScopes", "RotateKey", "RevokeKey"])
        out, _ = self.scopectl("audit", "--key_id", key_id)
        self.assertIn("RevokeKey", out)

        # watch replays history after --from_revision, so no race with writes.
        out, _ = self.scopectl("--json", "watch", "--from_revision", str(first_revision - 1),
                               "--max_events", "1")
        lines = out.splitlines()
        self.assertEqual(len(lines), 1, out)
        event = json.loads(lines[0])
        self.assertEqual(int(event["revision"]), first_revision)
        self.assertEqual(event["event"]["action"], "CreateKey")
        self.assertEqual(event["key"]["key_id"], key_id)
        # A live event: the watcher starts after the last revision, the write follows.
        last_revision = int(events[-1]["revision"])
        watcher = subprocess.Popen(
            [SCOPECTL_BIN, "--json", "watch", "--from_revision", str(last_revision),
             "--max_events", "1", "--max_duration", "%ds" % CALL_TIMEOUT_S],
            env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        try:
            self.json("app", "put", "app_cli", "--slug", "cli", "--live_version_id", "v1",
                      "--scope", "orders_read,stock_read")
            watched, watch_err = watcher.communicate(timeout=CALL_TIMEOUT_S)
        finally:
            if watcher.poll() is None:
                watcher.kill()
                watcher.wait()
        self.outputs += [watched, watch_err]
        self.assertEqual(watcher.returncode, EXIT_OK, watch_err)
        event = json.loads(watched)
        self.assertEqual(event["event"]["action"], "PutApp")

        installation = self.json("install", "approve", "--org", ORG, "--app_id", "app_cli",
                                 "--scope", "orders_read")
        self.assertEqual(installation["approved_scopes"], ["orders_read"])
        self.assertEqual(installation["pending_scopes"], ["stock_read"])
        bound = self.json("key", "create", "--org", ORG, "--api", "external-pharmacy",
                          "--installation_id", installation["installation_id"])
        self.assertEqual(bound["key"]["effective_scopes"], ["orders_read"])
        self.assert_printed_once(bound["secret"])

        for output in self.outputs:
            self.assertNotIn(self.admin_token, output)

    def test_errors_are_clear_with_documented_exit_codes(self):
        _, err = self.scopectl("key", "get", "key_does_not_exist", want=EXIT_RPC)
        self.assertRegex(err, r"^scopectl: key get: NOT_FOUND: ")
        _, err = self.scopectl("key", "create", want=EXIT_USAGE)
        self.assertIn("--org is required", err)
        _, err = self.scopectl("frobnicate", want=EXIT_USAGE)
        self.assertTrue(err.startswith("scopectl: "), err)
        _, err = self.scopectl("check", "--key", "x", "--api", "external-pharmacy", "GET",
                               want=EXIT_USAGE)
        self.assertIn("PATH is required", err)
        bad_json = os.path.join(self.tmp, "bad_policy.json")
        with open(bad_json, "w") as f:
            f.write('{"scopes": [{"name": ')
        _, err = self.scopectl("policy", "apply", bad_json, want=EXIT_USAGE)
        self.assertIn("is not a JSON Policy", err)

        # A server-side rejection of a request is an RPC error, not a decision.
        _, err = self.scopectl("check", "--key", "x", "--api", "no-such-api", "GET", "/",
                               want=EXIT_RPC)
        self.assertIn("INVALID_ARGUMENT", err)
        self.assertIn("treat as denied", err)

        wrong_token = os.path.join(self.tmp, "wrong_token")
        with open(wrong_token, "w") as f:
            f.write("not-the-admin-token\n")
        _, err = self.scopectl("policy", "get", "--admin_token_file", wrong_token, want=EXIT_RPC)
        self.assertRegex(err, r"UNAUTHENTICATED|PERMISSION_DENIED")
        self.assertNotIn("not-the-admin-token", err)

        # Nothing listens on port 1: fail closed with UNAVAILABLE (or the deadline).
        _, err = self.scopectl("--addr", "127.0.0.1:1", "--timeout", "2", "check", "--key",
                               "x", "--api", "a", "GET", "/", want=EXIT_RPC)
        self.assertRegex(err, r"UNAVAILABLE|DEADLINE_EXCEEDED")
        out, _ = self.scopectl("--help")
        self.assertIn("Exit status", out)


class ScopectlTlsE2ETest(unittest.TestCase):
    """scopectl over mTLS: an admin certificate stands in for the token."""

    def openssl(self, *args):
        subprocess.run(["openssl"] + list(args), cwd=self.dir, check=True,
                       capture_output=True, timeout=CALL_TIMEOUT_S)

    def make_cert(self, name, subject, *extra):
        self.openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                     "-nodes", "-keyout", name + ".key", "-out", name + ".csr", "-subj", subject,
                     *extra)
        self.openssl("x509", "-req", "-in", name + ".csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                     "-CAcreateserial", "-out", name + ".pem", "-days", "1",
                     "-copy_extensions", "copy")

    def setUp(self):
        self.dir = os.path.join(sk_testing.test_tmpdir(self.addCleanup), "tls")
        os.makedirs(self.dir, exist_ok=True)
        self.openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                     "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "1",
                     "-subj", "/CN=ca")
        self.make_cert("server", "/CN=localhost",
                       "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")
        # One RDN: the server's --admin_subjects is a comma-separated list, so
        # a subject with a comma ("CN=ops-admin,O=Example") cannot be given.
        self.make_cert("admin", "/CN=ops-admin")
        path = lambda name: os.path.join(self.dir, name)
        self.server = sk_testing.ServerProcess(
            path("data"), extra_args=[
                "--tls_cert=" + path("server.pem"), "--tls_key=" + path("server.key"),
                "--tls_client_ca=" + path("ca.pem"), "--admin_subjects=CN=ops-admin"])
        self.addCleanup(self.server.terminate, 20)
        port = self.server.wait_for_port()
        # No admin token anywhere: the certificate is the admin identity.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SCOPEKEEPER_")}
        self.env["SCOPEKEEPER_ADDR"] = "127.0.0.1:%d" % port
        self.tls = ["--tls_ca", path("ca.pem"), "--tls_cert", path("admin.pem"),
                    "--tls_key", path("admin.key")]

    def run_scopectl(self, *args):
        return subprocess.run([SCOPECTL_BIN] + list(args), env=self.env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=CALL_TIMEOUT_S)

    def test_admin_certificate_instead_of_token(self):
        proc = self.run_scopectl(*self.tls, "policy", "apply", sk_testing.POLICY_FILE)
        self.assertEqual(proc.returncode, EXIT_OK, proc.stderr)
        proc = self.run_scopectl(*self.tls, "--json", "audit")
        self.assertEqual(proc.returncode, EXIT_OK, proc.stderr)
        self.assertEqual(json.loads(proc.stdout)["events"][0]["action"], "PutPolicy")
        # Plaintext against a TLS server: the call fails, it is not a usage error.
        proc = self.run_scopectl("--timeout", "2", "check", "--key", "x", "--api", "a", "GET",
                                 "/")
        self.assertEqual(proc.returncode, EXIT_RPC, proc.stderr)
        # Without a certificate an admin command has no credential at all.
        proc = self.run_scopectl("--tls_ca", os.path.join(self.dir, "ca.pem"), "policy", "get")
        self.assertEqual(proc.returncode, EXIT_USAGE, proc.stderr)
        self.assertIn("no admin token", proc.stderr)


if __name__ == "__main__":
    unittest.main()
