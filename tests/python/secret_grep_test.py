"""No secret leaves Scopekeeper: grep every output for the secrets we made.

Starts the real binary with decision logging at 100 %, metrics on, an admin
token file and an authorizer (data-plane) token file, then creates, rotates,
uses, misuses and revokes keys, calls with wrong tokens, and takes a backup.
Afterwards every place a secret could leak is searched for every secret the
test created or presented (API keys, rotated keys, an unknown key, the admin
token, the authorizer token, a wrong token):
  * the server's whole log (stdout + stderr), including shutdown;
  * every error message the server returned;
  * every audit event (ListAuditEvents) and Watch event, as text;
  * the Prometheus metrics page;
  * every byte of every file under the data dir and the backup (RocksDB
    tables, WAL, MANIFEST, ...).
Secrets are looked for as raw bytes: RocksDB stores values unencoded, so a
secret written anywhere in the database would show up as is.

Run under Bazel (//tests/python:secret_grep_test) or from a checkout after
`bazel build //server:scopekeeper`:
    /usr/bin/python3 -m unittest -v tests/python/secret_grep_test.py
"""

import os
import stat
import re
import unittest
import urllib.request

import grpc

import sk_testing  # first: puts scripts/ (sk_proto) on sys.path
import sk_proto  # noqa: E402

RPC_TIMEOUT_S = 10
PREFIX = "/v1/external-pharmacy-api-v1"
ORG = "org_secrets"
METRICS = re.compile(r"metrics on http://127\.0\.0\.1:(\d+)/metrics")


class SecretGrepTest(unittest.TestCase):

    def test_no_secret_in_logs_errors_audit_metrics_or_data_dir(self):
        tmp = sk_testing.test_tmpdir(self.addCleanup)
        stubs = sk_testing.load_stubs(tmp)
        pb2 = stubs.pb2
        sk_testing.require_server_binary()
        admin_token = "adm-" + os.urandom(16).hex()
        authorizer_token = "gw-" + os.urandom(16).hex()
        wrong_token = "wrong-" + os.urandom(16).hex()
        admin_file = os.path.join(tmp, "admin_token")
        authorizer_file = os.path.join(tmp, "authorizer_token")
        for path, token in ((admin_file, admin_token), (authorizer_file, authorizer_token)):
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
                f.write(token + "\n")
        data_dir = os.path.join(tmp, "data")
        server = sk_testing.ServerProcess(
            data_dir, admin_token_file=admin_file, policy_file=sk_testing.POLICY_FILE,
            extra_args=["--decision_log_sample_rate=1", "--metrics_listen=127.0.0.1:0",
                        "--authorizer_token_file=" + authorizer_file])
        self.addCleanup(server.terminate, 5)
        metrics_port = server.wait_for_port(METRICS)
        port = server.wait_for_port()
        channel = sk_proto.channel("127.0.0.1:%d" % port)
        self.addCleanup(channel.close)
        admin = stubs.pb2_grpc.AdminStub(channel)
        authorizer = stubs.pb2_grpc.AuthorizerStub(channel)
        admin_md = sk_proto.admin_metadata(admin_token)
        gw_md = (("authorization", "Bearer " + authorizer_token),)

        secrets = {"admin token": admin_token, "authorizer token": authorizer_token,
                   "wrong token": wrong_token}
        errors = []

        def expect_error(call, code):
            with self.assertRaises(grpc.RpcError) as raised:
                call()
            self.assertEqual(raised.exception.code(), code, raised.exception.details())
            errors.append(raised.exception.details() or "")

        def authorize(secret, path, method="GET", md=gw_md, organization_id=""):
            return authorizer.Authorize(
                pb2.AuthorizeRequest(
                    api_key=secret, organization_id=organization_id,
                    http=pb2.HttpRequestTarget(api="external-pharmacy", method=method,
                                               path=PREFIX + path)),
                timeout=RPC_TIMEOUT_S, metadata=md)

        # Keys: created, used (allowed, denied, wrong org), rotated, revoked.
        keys = []
        for i in range(3):
            created = admin.CreateKey(
                pb2.CreateKeyRequest(organization_id=ORG, name="key %d" % i,
                                     apis=["external-pharmacy"], scopes=["orders_read"]),
                timeout=RPC_TIMEOUT_S, metadata=admin_md)
            secrets["key %d" % i] = created.secret
            keys.append(created)
            self.assertTrue(authorize(created.secret, "/pharmacy_orders/").allowed)
            self.assertFalse(authorize(created.secret, "/pharmacy_skus/").allowed)
            self.assertFalse(authorize(created.secret, "/pharmacy_orders/",
                                       organization_id="org_other").allowed)
        rotated = admin.RotateKey(pb2.RotateKeyRequest(key_id=keys[0].key.key_id),
                                  timeout=RPC_TIMEOUT_S, metadata=admin_md)
        secrets["rotated key 0"] = rotated.secret
        self.assertTrue(authorize(rotated.secret, "/pharmacy_orders/").allowed)
        self.assertFalse(authorize(keys[0].secret, "/pharmacy_orders/").allowed)
        admin.RevokeKey(pb2.RevokeKeyRequest(key_id=keys[1].key.key_id),
                        timeout=RPC_TIMEOUT_S, metadata=admin_md)
        self.assertFalse(authorize(keys[1].secret, "/pharmacy_orders/").allowed)
        unknown = "rxs_ph_" + os.urandom(16).hex()
        secrets["unknown key"] = unknown
        self.assertFalse(authorize(unknown, "/pharmacy_orders/").allowed)
        described = authorizer.DescribeKey(pb2.DescribeKeyRequest(api_key=keys[2].secret),
                                           timeout=RPC_TIMEOUT_S, metadata=gw_md)
        self.assertEqual(described.key.key_id, keys[2].key.key_id)

        # An over-long key holding a secret is a malformed key: denied.
        self.assertEqual(authorize(keys[2].secret + "x" * 300, "/pharmacy_orders/").reason,
                         pb2.KEY_INVALID)
        # Misuse: every one of these carries a secret somewhere it is refused.
        expect_error(lambda: authorize(keys[2].secret, "/pharmacy_orders/",
                                       md=(("authorization", "Bearer " + wrong_token),)),
                     grpc.StatusCode.UNAUTHENTICATED)
        expect_error(lambda: authorize(keys[2].secret, "/pharmacy_orders/",
                                       md=(("authorization", "Bearer " + admin_token),)),
                     grpc.StatusCode.UNAUTHENTICATED)
        expect_error(lambda: admin.GetPolicy(pb2.GetPolicyRequest(), timeout=RPC_TIMEOUT_S,
                                             metadata=sk_proto.admin_metadata(wrong_token)),
                     grpc.StatusCode.UNAUTHENTICATED)
        expect_error(lambda: admin.GetPolicy(pb2.GetPolicyRequest(), timeout=RPC_TIMEOUT_S,
                                             metadata=sk_proto.admin_metadata(authorizer_token)),
                     grpc.StatusCode.UNAUTHENTICATED)
        expect_error(lambda: authorizer.DescribeKey(
            pb2.DescribeKeyRequest(api_key=unknown), timeout=RPC_TIMEOUT_S, metadata=gw_md),
            grpc.StatusCode.UNAUTHENTICATED)
        expect_error(lambda: authorizer.Authorize(
            pb2.AuthorizeRequest(api_key=keys[2].secret, organization_id="bad org " + unknown,
                                 requirement=pb2.Requirement(all_of=["orders_read"])),
            timeout=RPC_TIMEOUT_S, metadata=gw_md), grpc.StatusCode.INVALID_ARGUMENT)

        # Audit trail and change stream.
        audit = admin.ListAuditEvents(pb2.ListAuditEventsRequest(page_size=1000),
                                      timeout=RPC_TIMEOUT_S, metadata=admin_md)
        self.assertGreaterEqual(len(audit.events), 6)  # policy, 3 keys, rotate, revoke
        last_revision = max(e.revision for e in audit.events)
        watch_events = []
        for event in admin.Watch(pb2.WatchRequest(from_revision=0), timeout=RPC_TIMEOUT_S,
                                 metadata=admin_md):
            watch_events.append(event)
            if event.revision >= last_revision:
                break
        self.assertEqual(watch_events[-1].revision, last_revision)

        backup_dir = os.path.join(tmp, "backup")
        admin.CreateBackup(pb2.CreateBackupRequest(destination=backup_dir),
                           timeout=RPC_TIMEOUT_S, metadata=admin_md)
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port,
                                    timeout=RPC_TIMEOUT_S) as page:
            metrics = page.read().decode("utf-8")
        self.assertIn('reason="ALLOWED"', metrics)
        self.assertEqual(server.terminate(timeout=20), 0, server.log_tail())

        # The decision log was on: it must have logged, so the grep means something.
        log = "\n".join(server.all_output)
        self.assertIn('msg="decision"', log)
        self.assertIn(keys[2].key.key_id, log)

        places = {
            "server log": log.encode(),
            "error messages": "\n".join(errors).encode(),
            "audit events": "\n".join(str(e) for e in audit.events).encode(),
            "watch events": "\n".join(str(e) for e in watch_events).encode(),
            "metrics": metrics.encode(),
        }
        for root in (data_dir, backup_dir):
            files = 0
            for directory, _, names in os.walk(root):
                # Private to the server's user: the data dir, the database
                # (RocksDB creates files with the process umask) and the
                # backup (it hard-links the database's files).
                self.assertEqual(stat.S_IMODE(os.stat(directory).st_mode), 0o700, directory)
                for name in names:
                    path = os.path.join(directory, name)
                    self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600, path)
                    with open(path, "rb") as f:
                        places[path] = f.read()
                    files += 1
            self.assertGreater(files, 3, root)
        for what, secret in secrets.items():
            for where, content in places.items():
                self.assertNotIn(secret.encode(), content,
                                 "%s found in %s" % (what, where))


if __name__ == "__main__":
    unittest.main()
