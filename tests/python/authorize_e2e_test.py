"""End-to-end test of the real scopekeeper binary from a Python gRPC client.

Starts the server on port 0 with the RxScale example policy and a fresh data
directory, then drives it through stubs generated from the .proto at test time
(scripts/sk_proto.py): an allowed and a denied decision, admin authentication,
revocation taking effect on the very next Authorize, server reflection and
health, and a clean exit on SIGTERM; and that a damaged data dir stops
start-up with exit status 1 naming it.

The server process is started and stopped by sk_testing.ServerProcess (shared
with tests/crash). Under Bazel (//tests/python:authorize_e2e_test) the paths
come from the SK_* environment variables set by run_py_test.sh. From a checkout, after
`bazel build //server:scopekeeper`:
    /usr/bin/python3 -m unittest -v tests/python/authorize_e2e_test.py
"""

import os
import socket
import unittest

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool

import sk_testing  # first: puts scripts/ (sk_proto) on sys.path
import sk_proto  # noqa: E402

RPC_TIMEOUT_S = 10
PREFIX = "/v1/external-pharmacy-api-v1"
ORG = "org_e2e"


class AuthorizeE2ETest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        tmp = sk_testing.test_tmpdir(cls.addClassCleanup)
        stubs = sk_testing.load_stubs(tmp, with_reflection=True)
        cls.pb2, cls.reflection_pb2 = stubs.pb2, stubs.reflection_pb2
        cls.data_dir = os.path.join(tmp, "data")
        sk_testing.require_server_binary()
        cls.server = sk_testing.ServerProcess(cls.data_dir, policy_file=sk_testing.POLICY_FILE)
        cls.addClassCleanup(cls.server.terminate, 5)  # safety net if setUp fails below
        port = cls.server.wait_for_port()
        cls.channel = sk_proto.channel("127.0.0.1:%d" % port)
        cls.addClassCleanup(cls.channel.close)
        cls.authorizer = stubs.pb2_grpc.AuthorizerStub(cls.channel)
        cls.admin = stubs.pb2_grpc.AdminStub(cls.channel)
        cls.reflection = stubs.reflection_pb2_grpc.ServerReflectionStub(cls.channel)
        token_file = os.path.join(cls.data_dir, "admin_token")
        cls.admin_md = sk_proto.admin_metadata(sk_proto.read_admin_token(token_file))

    @classmethod
    def tearDownClass(cls):
        rc = cls.server.terminate(timeout=20)
        if rc != 0:
            raise AssertionError("after SIGTERM the server exited with %s, want 0; output:\n%s"
                                 % ("a hang (killed)" if rc is None else rc, cls.server.log_tail()))

    # Helpers.

    def create_key(self, scopes, name):
        resp = self.admin.CreateKey(
            self.pb2.CreateKeyRequest(organization_id=ORG, name=name, apis=["external-pharmacy"],
                                      scopes=scopes),
            timeout=RPC_TIMEOUT_S, metadata=self.admin_md)
        self.assertTrue(resp.key.key_id)
        self.assertTrue(resp.secret.startswith("rxs_ph_"), resp.secret[:10])
        self.assertGreater(resp.revision, 0)
        return resp

    def authorize(self, secret, method, path):
        return self.authorizer.Authorize(
            self.pb2.AuthorizeRequest(
                api_key=secret,
                http=self.pb2.HttpRequestTarget(api="external-pharmacy", method=method, path=path)),
            timeout=RPC_TIMEOUT_S)

    def reflect(self, **request):
        responses = list(self.reflection.ServerReflectionInfo(
            iter([self.reflection_pb2.ServerReflectionRequest(**request)]), timeout=RPC_TIMEOUT_S))
        self.assertEqual(len(responses), 1)
        self.assertFalse(responses[0].HasField("error_response"), responses[0].error_response)
        return responses[0]

    # Tests.

    def test_key_with_scope_is_allowed(self):
        key = self.create_key(["orders_read"], "e2e allowed")
        resp = self.authorize(key.secret, "GET", PREFIX + "/pharmacy_orders/")
        self.assertTrue(resp.allowed, resp)
        self.assertEqual(resp.reason, self.pb2.ALLOWED)
        self.assertEqual(resp.http_status, 200)
        self.assertEqual(resp.matched_route, "GET /pharmacy_orders/")
        self.assertEqual(resp.key_id, key.key.key_id)
        self.assertEqual(resp.organization_id, ORG)
        self.assertEqual(list(resp.missing_scopes), [])
        self.assertTrue(resp.trace_id)  # generated when the request has none

    def test_key_without_scope_is_denied_with_missing_scope(self):
        key = self.create_key(["orders_read"], "e2e denied")
        resp = self.authorize(key.secret, "PATCH", PREFIX + "/pharmacy_orders/x/status")
        self.assertFalse(resp.allowed, resp)
        self.assertEqual(resp.reason, self.pb2.INSUFFICIENT_SCOPE)
        self.assertEqual(list(resp.missing_scopes), ["orders_write"])
        self.assertEqual(resp.http_status, 403)
        self.assertEqual(resp.message, "Insufficient scope. Required: orders_write")
        self.assertEqual(resp.matched_route, "PATCH /pharmacy_orders/{uid}/status")

    def test_admin_call_without_token_is_unauthenticated(self):
        request = self.pb2.CreateKeyRequest(organization_id=ORG, apis=["external-pharmacy"],
                                            scopes=["orders_read"])
        with self.assertRaises(grpc.RpcError) as ctx:
            self.admin.CreateKey(request, timeout=RPC_TIMEOUT_S)
        self.assertEqual(ctx.exception.code(), grpc.StatusCode.UNAUTHENTICATED,
                         ctx.exception.details())
        with self.assertRaises(grpc.RpcError) as ctx:
            self.admin.CreateKey(request, timeout=RPC_TIMEOUT_S,
                                 metadata=sk_proto.admin_metadata("not-the-admin-token"))
        self.assertIn(ctx.exception.code(),
                      (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED),
                      ctx.exception.details())

    def test_revoked_key_is_denied_on_the_next_call(self):
        key = self.create_key(["orders_read"], "e2e revoked")
        path = PREFIX + "/pharmacy_orders/"
        self.assertTrue(self.authorize(key.secret, "GET", path).allowed)
        revoked = self.admin.RevokeKey(
            self.pb2.RevokeKeyRequest(key_id=key.key.key_id, reason="e2e"),
            timeout=RPC_TIMEOUT_S, metadata=self.admin_md)
        self.assertEqual(revoked.status, self.pb2.REVOKED)
        resp = self.authorize(key.secret, "GET", path)
        self.assertFalse(resp.allowed, resp)
        self.assertEqual(resp.reason, self.pb2.KEY_REVOKED)
        self.assertEqual(resp.http_status, 401)
        self.assertEqual(resp.message, "Invalid or expired API key")

    def test_reflection_lists_services_and_describes_authorizer(self):
        listed = self.reflect(list_services="")
        names = {s.name for s in listed.list_services_response.service}
        self.assertLessEqual({"scopekeeper.v1.Authorizer", "scopekeeper.v1.Admin",
                              "grpc.health.v1.Health"}, names)

        found = self.reflect(file_containing_symbol="scopekeeper.v1.Authorizer")
        files = [descriptor_pb2.FileDescriptorProto.FromString(b)
                 for b in found.file_descriptor_response.file_descriptor_proto]
        methods = {m.name for f in files if f.package == "scopekeeper.v1"
                   for s in f.service if s.name == "Authorizer" for m in s.method}
        self.assertIn("Authorize", methods, [f.name for f in files])

    def test_reflection_describes_authorize_method_like_grpcurl(self):
        # `grpcurl describe scopekeeper.v1.Authorizer.Authorize`: asks for the
        # file containing the method's full name, builds a descriptor pool from
        # the answer (the file and its imports) and looks the method up there.
        found = self.reflect(file_containing_symbol="scopekeeper.v1.Authorizer.Authorize")
        files = [descriptor_pb2.FileDescriptorProto.FromString(b)
                 for b in found.file_descriptor_response.file_descriptor_proto]
        by_name = {f.name: f for f in files}
        pool = descriptor_pool.DescriptorPool()
        added = set()
        while len(added) < len(by_name):  # imports first, as a pool requires
            ready = [f for n, f in by_name.items()
                     if n not in added and all(d in added for d in f.dependency)]
            self.assertTrue(ready, "imports missing from the reflection answer: %s" % sorted(
                {d for f in files for d in f.dependency} - set(by_name)))
            for f in ready:
                pool.Add(f)
                added.add(f.name)
        method = pool.FindMethodByName("scopekeeper.v1.Authorizer.Authorize")
        self.assertEqual(method.containing_service.full_name, "scopekeeper.v1.Authorizer")
        self.assertEqual(method.input_type.full_name, "scopekeeper.v1.AuthorizeRequest")
        self.assertEqual(method.output_type.full_name, "scopekeeper.v1.AuthorizeResponse")
        self.assertFalse(method.client_streaming or method.server_streaming)
        # The request's oneof target and a field of an imported message type
        # resolve, so the whole request can be described and built.
        self.assertEqual([f.name for f in method.input_type.oneofs_by_name["target"].fields],
                         ["requirement", "http"])
        key = pool.FindMessageTypeByName("scopekeeper.v1.Key")
        self.assertEqual(key.fields_by_name["create_time"].message_type.full_name,
                         "google.protobuf.Timestamp")

    def test_health_check_is_serving(self):
        # grpc.health.v1.Health/Check with raw bytes: an empty HealthCheckRequest
        # (service "" = the whole server); the answer is {status: SERVING (1)}.
        check = self.channel.unary_unary("/grpc.health.v1.Health/Check")
        self.assertEqual(check(b"", timeout=RPC_TIMEOUT_S), b"\x08\x01")


class SigtermTest(unittest.TestCase):

    def test_sigterm_does_not_wait_for_idle_connections(self):
        # With an hour of grace, an idle connection used to hold SIGTERM
        # for the whole hour; only calls in flight are waited for.
        tmp = sk_testing.test_tmpdir(self.addCleanup)
        server = sk_testing.ServerProcess(
            os.path.join(tmp, "sigterm"), policy_file=sk_testing.POLICY_FILE,
            extra_args=["--shutdown_grace=3600s"])
        self.addCleanup(server.kill)
        port = server.wait_for_port()
        idle = socket.create_connection(("127.0.0.1", port))
        self.addCleanup(idle.close)
        idle.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        self.assertEqual(server.terminate(timeout=20), 0, server.log_tail())
        self.assertIn("stopped", server.log_tail())


class DamagedDataDirTest(unittest.TestCase):
    """The binary refuses a damaged data dir: exit status 1, the path named."""

    def test_missing_manifest_stops_start_up(self):
        tmp = sk_testing.test_tmpdir(self.addCleanup)
        sk_testing.require_server_binary()
        data_dir = os.path.join(tmp, "data")
        first = sk_testing.ServerProcess(data_dir, policy_file=sk_testing.POLICY_FILE)
        self.addCleanup(first.terminate, 5)
        first.wait_for_port()
        self.assertEqual(first.terminate(timeout=20), 0, first.log_tail())
        db = os.path.join(data_dir, "db")
        manifests = [n for n in os.listdir(db) if n.startswith("MANIFEST-")]
        self.assertTrue(manifests, os.listdir(db))
        for name in manifests:
            os.remove(os.path.join(db, name))

        second = sk_testing.ServerProcess(data_dir)
        self.addCleanup(second.terminate, 5)
        rc = second.proc.wait(timeout=sk_testing.STARTUP_DEADLINE_S)
        second.terminate(timeout=5)  # reaps the output
        self.assertEqual(rc, 1, second.log_tail())
        self.assertIn("cannot start", second.log_tail())
        self.assertIn(db, second.log_tail())
        self.assertNotIn("listening on", second.log_tail())

if __name__ == "__main__":
    unittest.main()
