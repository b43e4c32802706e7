"""A real full disk under the real server (the adversarial run's ENOSPC).

A helper process holds a mount namespace of its own (unshare) with a small
tmpfs; servers run inside it (nsenter), so their data dir survives their
restarts. The test fills that file system through the helper's
/proc/PID/root view, then checks what an operator meets:
  * writes fail UNAVAILABLE naming the cause; the process stays up,
  * decisions keep being served from the last durable state,
  * /metrics shows scopekeeper_store_writable 0 and the cause's class,
  * once space is freed, writes resume without a restart and nothing
    acknowledged is lost (also across a SIGKILL),
  * a start on a full disk refuses, saying why.
It used to abort with SIGABRT at the first failed write.
"""

import errno
import os
import shutil
import subprocess
import unittest
import urllib.request

import grpc

import sk_testing  # first: puts scripts/ (sk_proto) on sys.path
import sk_proto  # noqa: E402

RPC_TIMEOUT_S = 10
TMPFS_BYTES = 24 << 20


def fill(root):
    """Writes a filler file into `root` until the file system is full."""
    path = os.path.join(root, "filler")
    chunk = b"\0" * (64 << 10)
    with open(path, "ab", buffering=0) as f:
        try:
            while True:
                f.write(chunk)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
    return path


class FullDiskTest(unittest.TestCase):

    def setUp(self):
        for tool in ("unshare", "nsenter"):
            if shutil.which(tool) is None:
                self.skipTest(tool + " (util-linux) is not installed")
        tmp = sk_testing.test_tmpdir(self.addCleanup)
        self.stubs = sk_testing.load_stubs(tmp)
        self.pb2 = self.stubs.pb2
        self.mount_point = os.path.join(tmp, "disk")
        os.makedirs(self.mount_point, exist_ok=True)
        # The namespace holder: mounts the tmpfs, then waits on its stdin
        # (closed by the cleanup) to keep the namespace alive.
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c",
             'mount -t tmpfs -o size=%d,mode=0700 tmpfs "$0" && echo mounted && exec cat'
             % TMPFS_BYTES, self.mount_point],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.addCleanup(self.holder.wait)
        self.addCleanup(self.holder.stdin.close)
        self.assertEqual(self.holder.stdout.readline(), b"mounted\n")
        # The tmpfs as seen from outside the namespace.
        self.disk = "/proc/%d/root%s" % (self.holder.pid, self.mount_point)
        self.data_dir = os.path.join(self.mount_point, "data")

    def start(self):
        server = sk_testing.ServerProcess(
            self.data_dir, policy_file=sk_testing.POLICY_FILE,
            extra_args=["--metrics_listen=127.0.0.1:0", "--store_retry_interval=0s"],
            wrapper=["nsenter", "--target", str(self.holder.pid), "--mount", "--"])
        self.addCleanup(server.kill)
        return server

    def connect(self, server):
        port = server.wait_for_port()
        channel = sk_proto.channel("127.0.0.1:%d" % port)
        self.addCleanup(channel.close)
        token = sk_proto.read_admin_token(os.path.join(self.disk, "data", "admin_token"))
        self.admin = self.stubs.pb2_grpc.AdminStub(channel)
        self.authorizer = self.stubs.pb2_grpc.AuthorizerStub(channel)
        self.md = sk_proto.admin_metadata(token)

    def create_key(self):
        return self.admin.CreateKey(self.pb2.CreateKeyRequest(
            organization_id="org_1", name="n" * 200, apis=["external-pharmacy"],
            scopes=["orders_read"]), timeout=RPC_TIMEOUT_S, metadata=self.md)

    def allowed(self, secret):
        return self.authorizer.Authorize(self.pb2.AuthorizeRequest(
            api_key=secret, http=self.pb2.HttpRequestTarget(
                api="external-pharmacy", method="GET",
                path="/v1/external-pharmacy-api-v1/pharmacy_orders/")),
            timeout=RPC_TIMEOUT_S).allowed

    def fill_until_a_write_fails(self, acknowledged):
        filler = fill(self.disk)
        for _ in range(10000):  # until a write needs a block the disk lacks
            try:
                acknowledged.append(self.create_key())
            except grpc.RpcError as e:
                return filler, e
        self.fail("the full disk never failed a write")

    def test_full_disk_refuses_writes_keeps_deciding_and_recovers(self):
        server = self.start()
        metrics_port = server.wait_for_port(sk_testing.METRICS_LISTENING)
        self.connect(server)

        def scrape():
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port,
                                        timeout=RPC_TIMEOUT_S) as page:
                return page.read().decode("utf-8")

        acknowledged = [self.create_key()]
        self.assertTrue(self.allowed(acknowledged[0].secret))
        self.assertIn("scopekeeper_store_writable 1\n", scrape())

        filler, failure = self.fill_until_a_write_fails(acknowledged)
        self.assertEqual(failure.code(), grpc.StatusCode.UNAVAILABLE, failure.details())
        self.assertIn("no space left on device", failure.details())
        self.assertIsNone(server.proc.poll(), "the server died:\n" + server.log_tail())

        # Still full: writes keep failing, clearly; decisions go on.
        with self.assertRaises(grpc.RpcError) as again:
            self.create_key()
        self.assertEqual(again.exception.code(), grpc.StatusCode.UNAVAILABLE)
        for key in acknowledged:
            self.assertTrue(self.allowed(key.secret))
        metrics = scrape()
        self.assertIn("scopekeeper_store_writable 0\n", metrics)
        self.assertIn('scopekeeper_store_write_failure{cause="no_space"} 1\n', metrics)
        log = "\n".join(server.all_output)
        self.assertIn("store write failed", log)
        self.assertIn("no space left on device", log)

        # Space is freed: the next write recovers the store, no restart.
        os.remove(filler)
        acknowledged.append(self.create_key())
        self.assertTrue(self.allowed(acknowledged[-1].secret))
        self.assertIn("scopekeeper_store_writable 1\n", scrape())

        # Nothing acknowledged is lost across a crash.
        server.kill()
        self.connect(self.start())
        for key in acknowledged:
            self.assertTrue(self.allowed(key.secret), key.key.key_id)

    def test_start_on_a_full_disk_refuses_naming_the_cause(self):
        server = self.start()
        self.connect(server)
        acknowledged = [self.create_key()]
        filler, _ = self.fill_until_a_write_fails(acknowledged)
        self.assertEqual(server.terminate(timeout=20), 0, server.log_tail())
        fill(self.disk)  # what closing the store freed, taken again

        # Opening the store needs space (a new MANIFEST, the WAL's replay):
        # on the full disk the server refuses, saying why, and exits 1.
        refused = self.start()
        rc = refused.proc.wait(timeout=60)
        refused.kill()
        self.assertEqual(rc, 1, refused.log_tail())
        self.assertIn("cannot start", refused.log_tail())
        self.assertIn("no space left on device", refused.log_tail())

        # Freed: it starts with everything that was acknowledged.
        os.remove(filler)
        self.connect(self.start())
        acknowledged.append(self.create_key())
        for key in acknowledged:
            self.assertTrue(self.allowed(key.secret), key.key.key_id)


if __name__ == "__main__":
    unittest.main()
