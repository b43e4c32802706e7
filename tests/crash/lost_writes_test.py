"""Lost acknowledged writes are refused, not served (issue #14).

The adversarial run's reproduction, on the real scopekeeper binary: create a
key, restart, RevokeKey (acknowledged), SIGKILL, then damage the write-ahead
log, db/*.log, one of three ways: flip a byte in its last record, cut its
tail, delete it. The server used to start SERVING with the key active and
allowed again, and the next write reused the lost revision. Each damage must
now stop the start with DATA_LOSS naming both revisions, the WAL and the
recovery; --accept_data_loss must then start it without reusing a revision.
Controls: a SIGKILL without damage, a restore from a backup and a fresh data
dir all start normally; a data dir whose db/ was deleted is refused.

    bazel test //tests/crash:lost_writes_test
From a checkout, after `bazel build //server:scopekeeper`:
    /usr/bin/python3 -m unittest -v tests/crash/lost_writes_test.py
"""

import glob
import os
import secrets
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(
    os.environ.get("SK_TESTING_PY")
    or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    "python", "sk_testing.py")))
import sk_testing  # noqa: E402  (puts scripts/, for sk_proto, on sys.path)
import sk_proto  # noqa: E402

RPC_TIMEOUT_S = 10
SCOPE = "orders_read"


class LostWritesTest(unittest.TestCase):

    def setUp(self):
        self.tmp = sk_testing.test_tmpdir(self.addCleanup)
        self.stubs = sk_testing.load_stubs(self.tmp)
        self.pb2 = self.stubs.pb2
        sk_testing.require_server_binary()
        self.data_dir = os.path.join(self.tmp, "data-" + self.id().rsplit(".", 1)[-1])
        self.token_file = self.data_dir + "-admin-token"
        token = "lost-writes-" + secrets.token_hex(20)
        with open(os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                  "w") as f:
            f.write(token + "\n")
        self.md = sk_proto.admin_metadata(token)
        self.server = None
        self.channels = []
        self.addCleanup(self.stop)

    # Running the server.

    def start(self, *extra_args, policy=False, token_file=True):
        """Starts the server on the data dir (not waiting for it)."""
        self.stop()
        self.server = sk_testing.ServerProcess(
            self.data_dir, admin_token_file=self.token_file if token_file else None,
            policy_file=sk_testing.POLICY_FILE if policy else None, extra_args=extra_args)
        return self.server

    def serve(self, *extra_args, policy=False, token_file=True):
        """Starts the server; returns (admin, authorizer) stubs once it listens."""
        server = self.start(*extra_args, policy=policy, token_file=token_file)
        channel = sk_proto.channel("127.0.0.1:%d" % server.wait_for_port())
        self.channels.append(channel)
        return (self.stubs.pb2_grpc.AdminStub(channel),
                self.stubs.pb2_grpc.AuthorizerStub(channel))

    def stop(self, kill=False):
        for channel in self.channels:
            channel.close()
        self.channels = []
        if self.server is not None:
            if kill:
                self.server.kill()
            else:
                self.assertEqual(self.server.terminate(timeout=20), 0, self.server.log_tail())
            self.server = None

    def expect_refusal(self, *extra_args, token_file=True):
        """Starts the server, which must exit 1 without listening; returns its log."""
        server = self.start(*extra_args, token_file=token_file)
        try:
            port = server.wait_for_port()
        except AssertionError:
            pass  # exited before listening (or hung: then the status below fails)
        else:
            self.fail("the server started serving on port %d instead of refusing; log:\n%s"
                      % (port, server.log_tail()))
        rc = server.terminate(timeout=10)
        self.server = None
        log = "\n".join(server.all_output)
        self.assertEqual(rc, 1, "exit status %s; log:\n%s" % (rc, log))
        return log

    # The state the reproduction needs.

    def revoked_key_then_sigkill(self):
        """Creates a key, restarts, revokes it (acknowledged) and SIGKILLs the
        server. Returns (secret, revision of the revocation)."""
        admin, authorizer = self.serve(policy=True)
        created = admin.CreateKey(
            self.pb2.CreateKeyRequest(organization_id="org_lost", apis=["external-pharmacy"],
                                      scopes=[SCOPE]),
            timeout=RPC_TIMEOUT_S, metadata=self.md)
        self.assertTrue(self.authorize(authorizer, created.secret).allowed)
        self.stop()
        # The restart flushed everything so far into table files; the
        # revocation below is only in the new WAL.
        admin, _ = self.serve()
        revoked = admin.RevokeKey(self.pb2.RevokeKeyRequest(key_id=created.key.key_id),
                                  timeout=RPC_TIMEOUT_S, metadata=self.md)
        self.assertEqual(revoked.status, self.pb2.REVOKED)
        self.stop(kill=True)
        return created.secret, revoked.revision

    def authorize(self, authorizer, secret):
        return authorizer.Authorize(
            self.pb2.AuthorizeRequest(api_key=secret,
                                      requirement=self.pb2.Requirement(all_of=[SCOPE])),
            timeout=RPC_TIMEOUT_S)

    def wals(self):
        return sorted(glob.glob(os.path.join(self.data_dir, "db", "*.log")))

    # Damage, refusal, and accepting the loss.

    def check_damage_is_refused(self, damage):
        secret, revision = self.revoked_key_then_sigkill()
        wals = self.wals()
        self.assertTrue(wals, "no WAL in %s" % os.listdir(os.path.join(self.data_dir, "db")))
        damage(wals)

        log = self.expect_refusal()
        self.assertIn("cannot start: DATA_LOSS", log)
        self.assertIn("acknowledged writes are lost: the store recovered to revision %d, but "
                      "revision %d was acknowledged" % (revision - 1, revision), log)
        self.assertIn(os.path.join(self.data_dir, "db") + "/*.log", log)
        self.assertIn("from a backup", log)
        self.assertIn("--accept_data_loss", log)
        # Refusing changed nothing: it refuses again.
        self.expect_refusal()

        # An operator who decides to serve this state anyway.
        admin, authorizer = self.serve("--accept_data_loss")
        self.assertIn("ACCEPTED DATA LOSS", "\n".join(self.server.all_output))
        decision = self.authorize(authorizer, secret)
        self.assertTrue(decision.allowed)  # the lost revocation: the loss accepted
        self.assertGreater(decision.revision, revision)  # revisions never go back
        events = admin.ListAuditEvents(
            self.pb2.ListAuditEventsRequest(after_revision=revision - 1, page_size=10),
            timeout=RPC_TIMEOUT_S, metadata=self.md).events
        self.assertEqual([(e.revision, e.action) for e in events],
                         [(revision + 1, "AcceptDataLoss")])
        created = admin.CreateKey(
            self.pb2.CreateKeyRequest(organization_id="org_lost", apis=["external-pharmacy"]),
            timeout=RPC_TIMEOUT_S, metadata=self.md)
        self.assertEqual(created.revision, revision + 2, "a lost revision was reused")
        self.stop()
        self.serve()  # accepted once; later starts need no flag

    def test_flipped_byte_in_the_last_wal_record_is_refused(self):
        def flip_last_byte(wals):
            with open(wals[-1], "r+b") as f:
                f.seek(-1, os.SEEK_END)
                byte = f.read(1)[0]
                f.seek(-1, os.SEEK_END)
                f.write(bytes([byte ^ 0x40]))
        self.check_damage_is_refused(flip_last_byte)

    def test_cut_wal_tail_is_refused(self):
        def cut_tail(wals):
            os.truncate(wals[-1], os.path.getsize(wals[-1]) - 8)
        self.check_damage_is_refused(cut_tail)

    def test_deleted_wal_is_refused(self):
        def delete(wals):
            for wal in wals:
                os.remove(wal)
        self.check_damage_is_refused(delete)

    # What must still start.

    def test_sigkill_without_damage_starts_with_every_acknowledged_write(self):
        secret, revision = self.revoked_key_then_sigkill()
        _, authorizer = self.serve()
        decision = self.authorize(authorizer, secret)
        self.assertEqual(decision.reason, self.pb2.KEY_REVOKED)
        self.assertEqual(decision.revision, revision)

    def test_restore_from_a_backup_starts(self):
        admin, authorizer = self.serve(policy=True)
        created = admin.CreateKey(
            self.pb2.CreateKeyRequest(organization_id="org_lost", apis=["external-pharmacy"],
                                      scopes=[SCOPE]),
            timeout=RPC_TIMEOUT_S, metadata=self.md)
        backup_dir = os.path.join(self.tmp, "backup-" + secrets.token_hex(4))
        backup = admin.CreateBackup(self.pb2.CreateBackupRequest(destination=backup_dir),
                                    timeout=RPC_TIMEOUT_S, metadata=self.md)
        admin.RevokeKey(self.pb2.RevokeKeyRequest(key_id=created.key.key_id),
                        timeout=RPC_TIMEOUT_S, metadata=self.md)
        self.stop()
        # docs/OPERATIONS.md, "Restore".
        db = os.path.join(self.data_dir, "db")
        os.rename(db, db + ".broken")
        shutil.copytree(backup_dir, db, symlinks=True)
        _, authorizer = self.serve()
        decision = self.authorize(authorizer, created.secret)
        self.assertEqual(decision.revision, backup.revision)
        self.assertTrue(decision.allowed)  # revoked after the backup: re-apply it

    def test_deleted_database_is_refused(self):
        # Generated admin token: the data dir keeps it, db/ goes.
        self.serve(policy=True, token_file=False)
        self.stop()
        self.assertTrue(os.path.exists(os.path.join(self.data_dir, "admin_token")))
        shutil.rmtree(os.path.join(self.data_dir, "db"))
        log = self.expect_refusal(token_file=False)
        self.assertIn("cannot start: DATA_LOSS", log)
        self.assertIn(os.path.join(self.data_dir, "db") + " is missing", log)
        self.assertIn("Restore db/ from a backup", log)
        self.assertIn("--accept_data_loss", log)
        self.serve("--accept_data_loss", token_file=False)
        self.assertIn("ACCEPTED DATA LOSS", "\n".join(self.server.all_output))


if __name__ == "__main__":
    unittest.main()
