"""What an operator sees of the real scopekeeper binary.

* --log_format=json: every line of the process is one JSON object, gRPC's
  own lines included (a plaintext client on the TLS port makes gRPC log its
  handshake failure), with admin writes and refused credentials.
* --log_level=warning: no info line, warnings still.
* The restore of docs/OPERATIONS.md: writes after the backup listed from
  the old server's log and audit trail, the checkpoint started as a new
  data dir with --hold_decisions (a new admin token; the Authorizer
  NOT_SERVING and UNAVAILABLE while Admin re-applies a revocation), and
  SIGUSR1 releasing it (seen on a health Watch stream, no polling).
* Reflection describes grpc.health.v1.Health, so a client without the
  .proto (grpcurl) can build a HealthCheckRequest and call Check per
  service.
* scopekeeper_build_info and `scopectl --version` report the same stamped
  version and commit; process_* series are on /metrics.

Under Bazel (//tests/python:operator_e2e_test) the paths come from SK_*
variables set by run_py_test.sh. From a checkout, after
`bazel build //server:scopekeeper //client:scopectl`:
    /usr/bin/python3 -m unittest -v tests/python/operator_e2e_test.py
"""

import json
import os
import re
import signal
import socket
import subprocess
import unittest
import urllib.request

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

import sk_testing  # first: puts scripts/ (sk_proto) on sys.path
import sk_proto  # noqa: E402

RPC_TIMEOUT_S = 10
SCOPECTL_BIN = os.environ.get("SK_SCOPECTL_BIN") or os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "bazel-bin/client/scopectl")
PREFIX = "/v1/external-pharmacy-api-v1"
SERVING, NOT_SERVING = b"\x08\x01", b"\x08\x02"
METRICS = re.compile(r"metrics on http://127\.0\.0\.1:(\d+)/metrics")


def health_request(service):
    """A serialized grpc.health.v1.HealthCheckRequest{service}."""
    data = service.encode()
    return b"\x0a" + bytes([len(data)]) + data if data else b""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OperatorE2ETest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        sk_testing.require_server_binary()
        cls.tmp = sk_testing.test_tmpdir(cls.addClassCleanup)
        cls.stubs = sk_testing.load_stubs(cls.tmp, with_reflection=True)
        cls.pb2 = cls.stubs.pb2

    def start(self, name, *args, wait=True):
        server = sk_testing.ServerProcess(os.path.join(self.tmp, name),
                                          policy_file=sk_testing.POLICY_FILE, extra_args=args)
        self.addCleanup(server.terminate, 5)
        if not wait:
            return server, None
        port = server.wait_for_port()
        channel = sk_proto.channel("127.0.0.1:%d" % port)
        self.addCleanup(channel.close)
        return server, channel

    def admin_md(self, name):
        token = sk_proto.read_admin_token(os.path.join(self.tmp, name, "admin_token"))
        return sk_proto.admin_metadata(token)

    def health(self, channel, service):
        check = channel.unary_unary("/grpc.health.v1.Health/Check")
        return check(health_request(service), timeout=RPC_TIMEOUT_S)

    def create_key(self, channel, md):
        admin = self.stubs.pb2_grpc.AdminStub(channel)
        return admin.CreateKey(self.pb2.CreateKeyRequest(
            organization_id="org_ops", apis=["external-pharmacy"], scopes=["orders_read"]),
            timeout=RPC_TIMEOUT_S, metadata=md)

    def authorize(self, channel, secret):
        return self.stubs.pb2_grpc.AuthorizerStub(channel).Authorize(
            self.pb2.AuthorizeRequest(api_key=secret, http=self.pb2.HttpRequestTarget(
                api="external-pharmacy", method="GET", path=PREFIX + "/pharmacy_orders/")),
            timeout=RPC_TIMEOUT_S)

    def test_json_lines_carry_grpc_admin_and_refusal_lines(self):
        cert, key = os.path.join(self.tmp, "server.pem"), os.path.join(self.tmp, "server.key")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj",
                        "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                        "-keyout", key, "-out", cert], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        server, _ = self.start("json", "--log_format=json", "--tls_cert=" + cert,
                               "--tls_key=" + key, wait=False)
        port = server.wait_for_port()
        with open(cert, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        tls = grpc.secure_channel("localhost:%d" % port, creds,
                                  options=[("grpc.enable_http_proxy", 0)])
        self.addCleanup(tls.close)
        admin = self.stubs.pb2_grpc.AdminStub(tls)
        with self.assertRaises(grpc.RpcError) as refused:
            admin.GetPolicy(self.pb2.GetPolicyRequest(), timeout=RPC_TIMEOUT_S,
                            metadata=sk_proto.admin_metadata("wrong-token-value"))
        self.assertEqual(refused.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        # A plaintext client on the TLS port: gRPC logs the failed handshake.
        plain = sk_proto.channel("127.0.0.1:%d" % port)
        self.addCleanup(plain.close)
        with self.assertRaises(grpc.RpcError):
            self.health(plain, "")
        # The health check answers once gRPC has logged, so after it the
        # line is in the output (the drainer reads in order; SIGTERM below).
        self.assertEqual(server.terminate(timeout=20), 0, server.log_tail())

        lines = [json.loads(line) for line in server.all_output]  # each one JSON
        self.assertTrue(all({"ts", "level", "msg"} <= set(l) for l in lines), lines)
        grpc_lines = [l for l in lines if l.get("logger") == "grpc"]
        self.assertTrue(any("Handshake failed" in l["msg"] for l in grpc_lines),
                        server.log_tail())
        self.assertTrue(all(re.match(r"^\w+\.cc:\d+$", l["source"]) for l in grpc_lines))
        writes = [l for l in lines if l["msg"] == "admin write"]
        self.assertEqual(writes[0]["action"], "PutPolicy")
        self.assertEqual(writes[0]["actor"], "policy_file")
        self.assertEqual(writes[0]["outcome"], "ok")
        [refusal] = [l for l in lines if l["msg"] == "credential refused"]
        self.assertEqual((refusal["level"], refusal["service"], refusal["reason"]),
                         ("warning", "scopekeeper.v1.Admin", "wrong_token"))
        [started] = [l for l in lines if l["msg"].startswith("listening on")]
        self.assertEqual((started["tls"], started["data_plane"], started["store"]),
                         ("on", "open", "rocksdb"))
        self.assertNotIn("wrong-token-value", "\n".join(server.all_output))

    def test_warning_level_drops_info_lines(self):
        port = free_port()
        server, _ = self.start("quiet", "--log_level=warning",
                               "--listen=127.0.0.1:%d" % port, wait=False)
        channel = sk_proto.channel("127.0.0.1:%d" % port)
        self.addCleanup(channel.close)
        grpc.channel_ready_future(channel).result(timeout=30)
        md = self.admin_md("quiet")
        self.create_key(channel, md)  # an info line: dropped
        with self.assertRaises(grpc.RpcError):  # a warning line: kept
            self.stubs.pb2_grpc.AdminStub(channel).RevokeKey(
                self.pb2.RevokeKeyRequest(key_id="key_nosuchkey"), timeout=RPC_TIMEOUT_S,
                metadata=md)
        self.assertEqual(server.terminate(timeout=20), 0, server.log_tail())
        levels = {re.search(r" level=(\w+) ", l).group(1) for l in server.all_output}
        self.assertNotIn("info", levels, server.log_tail())
        self.assertIn("warning", levels, server.log_tail())
        self.assertTrue(any("action=RevokeKey" in l and "outcome=NOT_FOUND" in l
                            for l in server.all_output), server.log_tail())

    def test_restore_holds_decisions_until_sigusr1(self):
        # docs/OPERATIONS.md "Restore", step by step.
        server, channel = self.start("live")
        md = self.admin_md("live")
        admin = self.stubs.pb2_grpc.AdminStub(channel)
        leaked, kept = self.create_key(channel, md), self.create_key(channel, md)
        backup_dir = os.path.join(self.tmp, "backup-1")
        backup = admin.CreateBackup(self.pb2.CreateBackupRequest(destination=backup_dir),
                                    timeout=RPC_TIMEOUT_S, metadata=md)
        admin.RevokeKey(self.pb2.RevokeKeyRequest(key_id=leaked.key.key_id, reason="leaked"),
                        timeout=RPC_TIMEOUT_S, metadata=md)  # after the backup
        self.assertEqual(server.terminate(timeout=20), 0, server.log_tail())

        # Writes made after the backup, from the old server's log ...
        after = [l for l in server.all_output if 'msg="admin write"' in l
                 and int(re.search(r" revision=(\d+)", l + " revision=0").group(1))
                 > backup.revision]
        self.assertEqual(len(after), 1, after)
        self.assertIn("action=RevokeKey key_id=%s" % leaked.key.key_id,
                      after[0].replace("actor=admin-token ", ""))
        # ... and from its audit trail, read with decisions held so the old
        # database serves none meanwhile.
        old, old_channel = self.start("live", "--hold_decisions")
        events = self.stubs.pb2_grpc.AdminStub(old_channel).ListAuditEvents(
            self.pb2.ListAuditEventsRequest(after_revision=backup.revision),
            timeout=RPC_TIMEOUT_S, metadata=md).events
        self.assertEqual([(e.action, e.key_id) for e in events],
                         [("RevokeKey", leaked.key.key_id)])
        self.assertEqual(old.terminate(timeout=20), 0, old.log_tail())

        # The restore: the checkpoint becomes db/ of a new data dir.
        restored_dir = os.path.join(self.tmp, "restored")
        os.makedirs(restored_dir, mode=0o700)
        subprocess.run(["cp", "-a", backup_dir, os.path.join(restored_dir, "db")], check=True)
        server, channel = self.start("restored", "--hold_decisions")
        # The backup holds db/ only: a new data dir gets a new admin token.
        self.assertTrue(any("generated admin token in " + restored_dir in l
                            for l in server.all_output), server.log_tail())
        new_md = self.admin_md("restored")
        self.assertNotEqual(new_md, md)
        self.assertTrue(any(" decisions=held " in l and "listening on" in l
                            for l in server.all_output), server.log_tail())
        self.assertEqual(self.health(channel, "scopekeeper.v1.Authorizer"), NOT_SERVING)
        self.assertEqual(self.health(channel, "scopekeeper.v1.Admin"), SERVING)
        self.assertEqual(self.health(channel, ""), SERVING)
        with self.assertRaises(grpc.RpcError) as held:
            self.authorize(channel, leaked.secret)
        self.assertEqual(held.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertIn("--hold_decisions", held.exception.details())
        # The leaked key is active again in the restored state: revoke it
        # again before letting traffic through.
        self.assertEqual(self.stubs.pb2_grpc.AdminStub(channel).RevokeKey(
            self.pb2.RevokeKeyRequest(key_id=leaked.key.key_id, reason="leaked"),
            timeout=RPC_TIMEOUT_S, metadata=new_md).status, self.pb2.REVOKED)
        watch = channel.unary_stream("/grpc.health.v1.Health/Watch")(
            health_request("scopekeeper.v1.Authorizer"), timeout=RPC_TIMEOUT_S)
        self.assertEqual(next(watch), NOT_SERVING)
        server.proc.send_signal(signal.SIGUSR1)
        self.assertEqual(next(watch), SERVING)
        watch.cancel()
        self.assertEqual(self.authorize(channel, leaked.secret).reason, self.pb2.KEY_REVOKED)
        self.assertTrue(self.authorize(channel, kept.secret).allowed)
        self.assertEqual(server.terminate(timeout=20), 0, server.log_tail())
        self.assertTrue(any("decisions are served again" in l and "released_by=hold_decisions"
                            in l for l in server.all_output), server.log_tail())

    def test_reflection_describes_health_like_grpcurl(self):
        # grpcurl without -proto: the file holding the symbol, a pool built
        # from it, the request message made from the pool.
        _, channel = self.start("reflect")
        reflection = self.stubs.reflection_pb2_grpc.ServerReflectionStub(channel)
        [answer] = list(reflection.ServerReflectionInfo(iter([
            self.stubs.reflection_pb2.ServerReflectionRequest(
                file_containing_symbol="grpc.health.v1.Health")]), timeout=RPC_TIMEOUT_S))
        self.assertFalse(answer.HasField("error_response"), answer.error_response)
        pool = descriptor_pool.DescriptorPool()
        for raw in answer.file_descriptor_response.file_descriptor_proto:
            pool.Add(descriptor_pb2.FileDescriptorProto.FromString(raw))
        service = pool.FindServiceByName("grpc.health.v1.Health")
        self.assertEqual([m.name for m in service.methods], ["Check", "Watch"])
        factory = message_factory.MessageFactory(pool)
        request_class = factory.GetPrototype(service.methods_by_name["Check"].input_type)
        response_class = factory.GetPrototype(service.methods_by_name["Check"].output_type)
        check = channel.unary_unary("/grpc.health.v1.Health/Check",
                                    request_serializer=request_class.SerializeToString,
                                    response_deserializer=response_class.FromString)
        for name in ("scopekeeper.v1.Authorizer", "scopekeeper.v1.Admin"):
            answer = check(request_class(service=name), timeout=RPC_TIMEOUT_S)
            self.assertEqual(answer.DESCRIPTOR.fields_by_name["status"].enum_type
                             .values_by_number[answer.status].name, "SERVING")

    def test_build_info_and_scopectl_version_agree(self):
        server, _ = self.start("build", "--metrics_listen=127.0.0.1:0", wait=False)
        metrics_port = server.wait_for_port(METRICS)
        server.wait_for_port()
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % metrics_port,
                                    timeout=RPC_TIMEOUT_S) as r:
            page = r.read().decode()
        m = re.search(r'^scopekeeper_build_info\{version="([^"]+)",commit="([^"]+)",'
                      r'mode="\w+"\} 1$', page, re.M)
        self.assertIsNotNone(m, page[:2000])
        version, commit = m.groups()
        self.assertRegex(version, r"^\d+\.\d+\.\d+")
        self.assertRegex(commit, r"^([0-9a-f]{12}(-dirty)?|unknown)$")
        out = subprocess.run([SCOPECTL_BIN, "--version"], stdout=subprocess.PIPE,
                             check=True, timeout=30).stdout.decode()
        self.assertEqual(out, "scopectl %s (commit %s)\n" % (version, commit))
        for series in ("process_cpu_seconds_total", "process_resident_memory_bytes",
                       "process_open_fds", "process_max_fds", "process_start_time_seconds"):
            self.assertRegex(page, r"(?m)^%s [0-9.e+]+$" % series)


if __name__ == "__main__":
    unittest.main()
