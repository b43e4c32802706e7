"""End-to-end test of the scopectl binary against the real scopekeeper binary.

Starts the server on port 0 with a fresh data directory and no policy, then
runs bazel-bin/client/scopectl as a subprocess for a whole admin flow: policy
apply, key create, check (allowed / denied), grant, revoke-scopes, rotate,
revoke, audit, watch, app put and install approve; every --json output is
parsed, and bad input must give a clear message and the documented exit
status (client/scopectl.h). Secrets: a created or rotated secret appears once
in its own command's output and nowhere else; the admin token never.
ScopectlCommandsE2ETest gives each of the other commands (backup, install
get, batch, check with a requirement, watch ending once caught up, -o
json/yaml, --version, completion, contexts, --secret_file) a fresh server;
ScopectlTlsE2ETest runs over mTLS. YAML is read back with Debian's
python3-yaml.

Under Bazel (//tests/python:scopectl_e2e_test) the paths come from the SK_*
environment variables set by run_py_test.sh. From a checkout, after
`bazel build //server:scopekeeper //client:scopectl`:
    /usr/bin/python3 -m unittest -v tests/python/scopectl_e2e_test.py
"""

import json
import os
import subprocess
import unittest

import yaml  # Debian python3-yaml

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

    def scopectl(self, *args, want=EXIT_OK, env=None, input=None):
        """Runs scopectl; asserts its exit status; returns (stdout, stderr)."""
        proc = subprocess.run([SCOPECTL_BIN] + list(args), env=env or self.env,
                              input=input, stdin=None if input is not None else subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=CALL_TIMEOUT_S)
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
        self.assertEqual(decision.get("allowed", False), want == EXIT_OK, decision)
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
        secret, key_id = created["secret"], created["key"]["keyId"]
        self.assertTrue(secret.startswith("rxs_ph_"), secret[:10])
        self.assert_printed_once(secret)
        first_revision = int(created["revision"])

        decision = self.check(secret, "GET", "/pharmacy_orders/", EXIT_OK)
        self.assertEqual(decision["matchedRoute"], "GET /pharmacy_orders/")
        key_file = os.path.join(self.tmp, "api_key")
        with open(key_file, "w") as f:
            f.write(secret + "\n")
        described = self.json("describe", "--key_file", key_file)
        self.assertEqual(described["key"]["keyId"], key_id)
        self.assertEqual(described["scopes"], ["orders_read"])
        decision = self.check(secret, "GET", "/pharmacy_skus/", EXIT_DENIED)
        self.assertEqual(decision["reason"], "INSUFFICIENT_SCOPE")
        self.assertEqual(decision["missingScopes"], ["stock_read"])
        out, _ = self.scopectl("check", "--key", secret, "--api", "external-pharmacy",
                               "GET", PREFIX + "/pharmacy_skus/", want=EXIT_DENIED)
        self.assertIn("DENIED", out)
        self.assertIn("Insufficient scope. Required: stock_read", out)

        key = self.json("key", "grant", key_id, "--scope", "stock_read")
        self.assertEqual(key["effectiveScopes"], ["orders_read", "stock_read"])
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
            self.assertEqual(decision["httpStatus"], 401)
        self.assertEqual(self.json("key", "get", key_id)["status"], "REVOKED")
        active = self.json("key", "list", "--org", ORG).get("keys", [])  # [] is omitted
        self.assertNotIn(key_id, [k["keyId"] for k in active])
        listed = self.json("key", "list", "--org", ORG, "--include_revoked")
        self.assertIn(key_id, [k["keyId"] for k in listed["keys"]])
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
        self.assertEqual(event["key"]["keyId"], key_id)
        # A live event: the watcher starts after the last revision, the write follows.
        last_revision = int(events[-1]["revision"])
        watcher = subprocess.Popen(
            [SCOPECTL_BIN, "--json", "watch", "--follow", "--from_revision",
             str(last_revision), "--max_events", "1", "--max_duration",
             "%ds" % CALL_TIMEOUT_S],
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
        self.assertEqual(installation["approvedScopes"], ["orders_read"])
        self.assertEqual(installation["pendingScopes"], ["stock_read"])
        bound = self.json("key", "create", "--org", ORG, "--api", "external-pharmacy",
                          "--installation_id", installation["installationId"])
        self.assertEqual(bound["key"]["effectiveScopes"], ["orders_read"])
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


class ScopectlCommandsE2ETest(unittest.TestCase):
    """The commands beyond the admin flow, each against a fresh server whose
    history is known: backup, install get, batch, check with an explicit
    requirement, watch ending when caught up, output formats, --version,
    completion, contexts, --secret_file, and settings errors."""

    def setUp(self):
        self.tmp = os.path.join(sk_testing.test_tmpdir(self.addCleanup), self.id().split(".")[-1])
        os.makedirs(self.tmp)
        self.server = sk_testing.ServerProcess(os.path.join(self.tmp, "data"))
        self.addCleanup(self.server.terminate, 20)
        self.port = self.server.wait_for_port()
        self.token_file = os.path.join(self.tmp, "data", "admin_token")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SCOPEKEEPER_")}
        self.env.update(SCOPEKEEPER_ADDR="127.0.0.1:%d" % self.port,
                        SCOPEKEEPER_ADMIN_TOKEN_FILE=self.token_file,
                        SCOPEKEEPER_CONFIG=os.path.join(self.tmp, "config"))

    def scopectl(self, *args, want=EXIT_OK, env=None, input=None):
        proc = subprocess.run([SCOPECTL_BIN] + list(args), env=env or self.env, input=input,
                              stdin=None if input is not None else subprocess.DEVNULL,
                              capture_output=True, text=True, timeout=CALL_TIMEOUT_S)
        self.assertEqual(proc.returncode, want, "scopectl %s\nstdout:\n%s\nstderr:\n%s"
                         % (" ".join(args), proc.stdout, proc.stderr))
        return proc.stdout, proc.stderr

    def json(self, *args, want=EXIT_OK, input=None):
        return json.loads(self.scopectl("-o", "json", *args, want=want, input=input)[0])

    def create_key(self, *scopes):
        """A key with `scopes`; returns (key_id, path of its secret file)."""
        secret_file = os.path.join(self.tmp, "key-%d" % len(os.listdir(self.tmp)))
        created = self.json("key", "create", "--org", ORG, "--api", "external-pharmacy",
                            "--scope", ",".join(scopes), "--secret_file", secret_file)
        self.assertNotIn("secret", created)
        return created["key"]["keyId"], secret_file

    def test_watch_ends_once_the_history_is_shown(self):
        self.scopectl("policy", "apply", sk_testing.POLICY_FILE)  # revision 1
        self.create_key("orders_read")                          # 2
        self.create_key("stock_read")                           # 3
        # The reported bug: this never returned. Now: the 3 events, exit 0.
        out, _ = self.scopectl("-o", "json", "watch", "--from_revision", "0",
                               "--max_events", "10")
        events = [json.loads(line) for line in out.splitlines()]
        self.assertEqual([int(e["revision"]) for e in events], [1, 2, 3])
        self.assertEqual(events[0]["event"]["action"], "PutPolicy")
        self.assertTrue(events[0]["policyChanged"])
        out, _ = self.scopectl("watch", "--from_revision", "3")
        self.assertEqual(out, "")  # caught up already: nothing, exit 0
        out, _ = self.scopectl("watch", "--from_revision", "1", "--max_events", "1")
        self.assertEqual(len(out.splitlines()), 1, out)
        self.assertIn("CreateKey", out)

    def test_output_formats_use_the_proto_json_mapping(self):
        self.scopectl("policy", "apply", sk_testing.POLICY_FILE)
        key_id, _ = self.create_key("orders_read")
        as_json = self.json("key", "get", key_id)
        self.assertEqual(as_json["keyId"], key_id)
        self.assertEqual(as_json["effectiveScopes"], ["orders_read"])
        self.assertNotIn("key_id", as_json)
        self.assertNotIn("name", as_json)  # empty: omitted, as grpcurl does
        out, _ = self.scopectl("--json", "key", "get", key_id)
        self.assertEqual(json.loads(out), as_json)  # --json is -o json
        # YAML holds the same data (64-bit integers as numbers, not strings).
        out, _ = self.scopectl("-o", "yaml", "key", "get", key_id)
        norm = lambda v: int(v) if isinstance(v, str) and v.isdigit() else (
            {k: norm(x) for k, x in v.items()} if isinstance(v, dict) else
            [norm(x) for x in v] if isinstance(v, list) else v)
        self.assertEqual(yaml.safe_load(out), norm(as_json))
        out, _ = self.scopectl("-o", "yaml", "policy", "get")
        self.assertEqual(norm(yaml.safe_load(out)), norm(self.json("policy", "get")))

    def test_check_with_a_requirement_and_batch(self):
        self.scopectl("policy", "apply", sk_testing.POLICY_FILE)
        _, key_file = self.create_key("orders_read")
        with open(key_file) as f:
            secret = f.read().strip()
        self.scopectl("check", "--key_file", key_file, "--all_of", "orders_read")
        decision = self.json("check", "--key_file", key_file, "--any_of",
                             "stock_read,orders_write", want=EXIT_DENIED)
        self.assertEqual(decision["reason"], "INSUFFICIENT_SCOPE")
        self.assertEqual(decision["missingScopes"], ["orders_write", "stock_read"])  # policy order
        self.assertNotIn("matchedRoute", decision)  # no route involved
        self.scopectl("check", "--key_file", key_file, "--authenticated_only")

        lines = [json.dumps({"api_key": secret, "http": {
                     "api": "external-pharmacy", "method": "GET",
                     "path": PREFIX + "/pharmacy_orders/"}}),
                 "",
                 json.dumps({"apiKey": secret, "requirement": {"allOf": ["stock_read"]}}),
                 json.dumps({"apiKey": "rxs_ph_unknown", "requirement": {
                     "authenticatedOnly": True}})]
        out, err = self.scopectl("-o", "json", "batch", input="\n".join(lines) + "\n",
                                 want=EXIT_DENIED)
        decisions = [json.loads(line) for line in out.splitlines()]
        self.assertEqual([d.get("allowed", False) for d in decisions], [True, False, False])
        self.assertEqual([d["reason"] for d in decisions],
                         ["ALLOWED", "INSUFFICIENT_SCOPE", "KEY_INVALID"])
        self.assertNotIn(secret, out + err)
        batch_file = os.path.join(self.tmp, "requests.jsonl")
        with open(batch_file, "w") as f:
            f.write(lines[0] + "\n")
        out, _ = self.scopectl("batch", batch_file)
        self.assertRegex(out, r"^LINE +DECISION")
        self.assertRegex(out, r"\n1 +ALLOWED +ALLOWED +200 ")
        _, err = self.scopectl("batch", input='{"apiKey": %s}\n' % secret, want=EXIT_USAGE)
        self.assertIn("standard input line 1: not a JSON AuthorizeRequest", err)
        self.assertNotIn(secret, err)

    def test_backup_install_get_and_key_list_paging(self):
        self.scopectl("policy", "apply", sk_testing.POLICY_FILE)
        destination = os.path.join(self.tmp, "backup-1")
        backup = self.json("backup", destination)
        self.assertEqual(backup, {"revision": "1", "path": destination})
        self.assertTrue(os.path.isdir(destination))
        _, err = self.scopectl("backup", destination, want=EXIT_RPC)
        self.assertIn("FAILED_PRECONDITION", err)
        _, err = self.scopectl("backup", "relative/dir", want=EXIT_USAGE)
        self.assertIn("absolute path", err)

        self.scopectl("app", "put", "app_cli", "--live_version_id", "v1", "--scope",
                      "orders_read,stock_read")
        self.scopectl("install", "approve", "--org", ORG, "--app_id", "app_cli", "--scope",
                      "orders_read")
        installation = self.json("install", "get", "--org", ORG, "--app_id", "app_cli")
        self.assertEqual(installation["approvedScopes"], ["orders_read"])
        self.assertEqual(installation["pendingScopes"], ["stock_read"])
        _, err = self.scopectl("install", "get", "--org", "org_other", "--app_id", "app_cli",
                               want=EXIT_RPC)
        self.assertIn("NOT_FOUND", err)

        first, _ = self.create_key("orders_read")
        second, _ = self.create_key("orders_read")
        page = self.json("key", "list", "--org", ORG, "--page_size", "1")
        self.assertEqual(len(page["keys"]), 1)
        rest = self.json("key", "list", "--org", ORG, "--page_token", page["nextPageToken"])
        self.assertEqual(sorted(k["keyId"] for k in page["keys"] + rest["keys"]),
                         sorted([first, second]))
        # Both keys are new and unused: none has been unused for an hour.
        self.assertEqual(self.json("key", "list", "--org", ORG, "--unused_for", "1h"), {})
        self.assertEqual(len(self.json("key", "list", "--org", ORG)["keys"]), 2)

    def test_secret_file_is_private_and_never_overwritten(self):
        self.scopectl("policy", "apply", sk_testing.POLICY_FILE)
        key_file = os.path.join(self.tmp, "my.key")
        # The README's two steps.
        out, err = self.scopectl("key", "create", "--org", ORG, "--api", "external-pharmacy",
                                 "--scope", "orders_read", "--secret_file", key_file)
        self.assertIn("secret: written to " + key_file, out)
        self.assertEqual(os.stat(key_file).st_mode & 0o777, 0o600)
        with open(key_file) as f:
            secret = f.read()
        self.assertTrue(secret.startswith("rxs_ph_") and secret.endswith("\n"))
        self.assertNotIn(secret.strip(), out + err)
        self.scopectl("check", "--key_file", key_file, "--api", "external-pharmacy", "GET",
                      PREFIX + "/pharmacy_orders/")
        _, err = self.scopectl("key", "create", "--org", ORG, "--secret_file", key_file,
                               want=EXIT_USAGE)
        self.assertIn("already exists", err)
        with open(key_file) as f:
            self.assertEqual(f.read(), secret)
        self.assertEqual(len(self.json("key", "list", "--org", ORG)["keys"]), 1)

    def test_contexts_version_completion_and_settings_errors(self):
        out, _ = self.scopectl("--version")
        self.assertRegex(out, r"^scopectl \d+\.\d+\.\d+ \(commit ([0-9a-f]{12}(-dirty)?|unknown)\)\n$")

        # A context instead of the environment; the flag still wins.
        env = {k: v for k, v in self.env.items()
               if k not in ("SCOPEKEEPER_ADDR", "SCOPEKEEPER_ADMIN_TOKEN_FILE")}
        self.scopectl("context", "set", "local", "--addr", "127.0.0.1:%d" % self.port,
                      "--admin_token_file", self.token_file, env=env)
        self.assertEqual(os.stat(env["SCOPEKEEPER_CONFIG"]).st_mode & 0o777, 0o600)
        out, _ = self.scopectl("context", "list", env=env)
        self.assertRegex(out, r"\n\* +local +127\.0\.0\.1:%d " % self.port)
        self.scopectl("policy", "apply", sk_testing.POLICY_FILE, env=env)
        _, err = self.scopectl("--addr", "127.0.0.1:1", "--timeout", "2", "policy", "get",
                               env=env, want=EXIT_RPC)
        self.assertIn("UNAVAILABLE", err)
        _, err = self.scopectl("--context", "prod", "policy", "get", env=env, want=EXIT_USAGE)
        self.assertIn('--context "prod" is not in', err)

        # Settings mistakes are usage errors (2) that name the setting.
        for addr in ("127.0.0.1", "foo bar"):
            _, err = self.scopectl("--addr", addr, "check", "--key", "x", "--api", "a",
                                   "GET", "/", want=EXIT_USAGE)
            self.assertIn('--addr "%s"' % addr, err)
            self.assertIn("expected HOST:PORT", err)
        _, err = self.scopectl("policy", "get", "--admin_token_file", "/nonexistent/token",
                               want=EXIT_USAGE)
        self.assertIn("/nonexistent/token: No such file or directory", err)

        # The completion script completes in bash.
        script, _ = self.scopectl("completion", "bash")
        script_file = os.path.join(self.tmp, "scopectl.bash")
        with open(script_file, "w") as f:
            f.write(script)

        def complete(*words):
            line = " ".join("'%s'" % w for w in words)
            proc = subprocess.run(
                ["bash", "-c", 'source "$0"; COMP_WORDS=(%s); COMP_CWORD=%d; _scopectl; '
                 'echo "${COMPREPLY[*]}"' % (line, len(words) - 1), script_file],
                capture_output=True, text=True, timeout=CALL_TIMEOUT_S, check=True)
            return sorted(proc.stdout.split())

        self.assertEqual(complete("scopectl", "install", ""), ["approve", "get"])
        self.assertEqual(complete("scopectl", "--addr", "h:1", "ba"), ["backup", "batch"])
        self.assertEqual(complete("scopectl", "key", "create", "--sec"), ["--secret_file"])
        self.assertEqual(complete("scopectl", "-o", "y"), ["yaml"])


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
        # mTLS server, no client certificate: the call fails, with a hint.
        ca = os.path.join(self.dir, "ca.pem")
        proc = self.run_scopectl("--tls_ca", ca, "--timeout", "5", "check", "--key", "x",
                                 "--api", "a", "GET", "/")
        self.assertEqual(proc.returncode, EXIT_RPC, proc.stderr)
        self.assertIn("the server may require a client certificate", proc.stderr)
        # A CA file that is not PEM: one clear line before any call.
        proc = self.run_scopectl("--tls_ca", os.path.join(self.dir, "admin.key"), "check",
                                 "--key", "x", "--api", "a", "GET", "/")
        self.assertEqual(proc.returncode, EXIT_USAGE, proc.stderr)
        self.assertEqual(proc.stderr.count("\n"), 1, proc.stderr)
        self.assertIn("not a PEM certificate", proc.stderr)
        # Without a certificate an admin command has no credential at all.
        proc = self.run_scopectl("--tls_ca", os.path.join(self.dir, "ca.pem"), "policy", "get")
        self.assertEqual(proc.returncode, EXIT_USAGE, proc.stderr)
        self.assertIn("no admin token", proc.stderr)


if __name__ == "__main__":
    unittest.main()
