"""A real nginx with auth_request in front of an echoing upstream, configured
with deploy/nginx/scopekeeper.conf itself (only its three ports changed),
Scopekeeper's forward-auth endpoint deciding every request.

For each seed policy (examples/policies/maxcare.json, rxscale.json): an
allowed request reaches the upstream with the identity headers and without
the credential or forged identity headers; a missing scope is 403 with the
seed's JSON body; an unknown key 401; an unknown route 404; bad input 400 (or
nginx's own 4xx), never the upstream; Scopekeeper stopped -> 503/500, never
the upstream.

nginx (Debian's package) runs as a child in the foreground with its own
prefix, main config, pid file, temp dirs and stderr log, on loopback ports;
the system service is never touched. Under Bazel (//tests/gateway:nginx_test)
the paths come from SK_* variables (tests/python/run_py_test.sh). From a
checkout, after `bazel build //server:scopekeeper`:
    /usr/bin/python3 -m unittest -v tests/gateway/nginx_test.py
"""

import http.client
import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import unittest

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))
sys.path.insert(0, os.path.join(_REPO, "tests", "python"))
import sk_testing  # noqa: E402  (puts scripts/ on sys.path)
import sk_proto  # noqa: E402

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
NGINX_CONF = os.environ.get("SK_NGINX_CONF") or os.path.join(_REPO, "deploy/nginx/scopekeeper.conf")
MAXCARE_POLICY = os.environ.get("SK_MAXCARE_POLICY_FILE") or os.path.join(
    _REPO, "examples/policies/maxcare.json")
RXSCALE_POLICY = sk_testing.POLICY_FILE
HTTP_AUTHZ = re.compile(r"http authz on http://127\.0\.0\.1:(\d+)/authz")
RPC_TIMEOUT_S = 10
HTTP_TIMEOUT_S = 10


_STUBS = []


def _stubs(test_class):
    """The scopekeeper.v1 stubs, generated once per process."""
    if not _STUBS:
        tmp = sk_testing.test_tmpdir(test_class.addClassCleanup)
        _STUBS.append(sk_testing.load_stubs(os.path.join(tmp, "stubs")))
    return _STUBS[0]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EchoUpstream:
    """The API behind nginx: answers 200 with the request it got, as JSON."""

    def __init__(self):
        requests = self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _echo(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                headers = {}
                for name, value in self.headers.items():
                    headers.setdefault(name.lower(), []).append(value)
                requests.append({"method": self.command, "path": self.path, "headers": headers})
                body = json.dumps(requests[-1]).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _echo

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Nginx:
    """nginx in the foreground with deploy/nginx/scopekeeper.conf included."""

    def __init__(self, prefix, port, upstream_port, authz_port, extra_conf="", command_prefix=()):
        with open(NGINX_CONF) as f:
            conf = f.read()
        for default, port_now in (("127.0.0.1:8000", port), ("127.0.0.1:8080", upstream_port),
                                  ("127.0.0.1:8181", authz_port)):
            if conf.count(default) != 1:
                raise AssertionError("%s: expected %s once" % (NGINX_CONF, default))
            conf = conf.replace(default, "127.0.0.1:%d" % port_now)
        os.makedirs(os.path.join(prefix, "tmp"), exist_ok=True)
        with open(os.path.join(prefix, "scopekeeper.conf"), "w") as f:
            f.write(conf)
        tmp = os.path.join(prefix, "tmp")
        main = """
daemon off;
master_process on;
worker_processes 1;
%(user)s
pid %(prefix)s/nginx.pid;
error_log stderr notice;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path %(tmp)s/body;
    proxy_temp_path %(tmp)s/proxy;
    fastcgi_temp_path %(tmp)s/fastcgi;
    uwsgi_temp_path %(tmp)s/uwsgi;
    scgi_temp_path %(tmp)s/scgi;
    include %(prefix)s/scopekeeper.conf;
%(extra)s
}
""" % {"prefix": prefix, "tmp": tmp, "extra": extra_conf,
       "user": "user root root;" if os.geteuid() == 0 else ""}
        main_conf = os.path.join(prefix, "nginx.conf")
        with open(main_conf, "w") as f:
            f.write(main)
        self.proc = subprocess.Popen(
            list(command_prefix) + [NGINX, "-p", prefix, "-c", main_conf, "-e", "stderr"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.log = []
        # The master logs this after it has bound the listening socket.
        for raw in self.proc.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            self.log.append(line)
            if "start worker process" in line:
                break
        else:
            raise AssertionError("nginx did not start:\n" + "\n".join(self.log))
        self._drainer = threading.Thread(target=self._drain, daemon=True)
        self._drainer.start()

    def _drain(self):
        for raw in self.proc.stderr:
            self.log.append(raw.decode("utf-8", "replace").rstrip())

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()  # SIGTERM: fast shutdown
        self.proc.wait(timeout=20)


class GatewayFixture:
    """Scopekeeper (with --http_authz_listen) + echo upstream + nginx."""

    def __init__(self, test_class, policy_file, name):
        tmp = os.path.join(sk_testing.test_tmpdir(test_class.addClassCleanup), name)
        os.makedirs(tmp, exist_ok=True)
        stubs = _stubs(test_class)
        self.pb2 = stubs.pb2
        sk_testing.require_server_binary()
        data_dir = os.path.join(tmp, "data")
        self.server = sk_testing.ServerProcess(data_dir, policy_file=policy_file,
                                               extra_args=["--http_authz_listen=127.0.0.1:0"])
        test_class.addClassCleanup(self.server.terminate, 10)
        authz_port = self.server.wait_for_port(HTTP_AUTHZ)
        grpc_port = self.server.wait_for_port()
        self.channel = sk_proto.channel("127.0.0.1:%d" % grpc_port)
        test_class.addClassCleanup(self.channel.close)
        self.admin = stubs.pb2_grpc.AdminStub(self.channel)
        self.admin_md = sk_proto.admin_metadata(
            sk_proto.read_admin_token(os.path.join(data_dir, "admin_token")))
        self.upstream = EchoUpstream()
        test_class.addClassCleanup(self.upstream.close)
        self.port = free_port()
        self.nginx = Nginx(os.path.join(tmp, "nginx"), self.port, self.upstream.port, authz_port)
        test_class.addClassCleanup(self.nginx.stop)

    def create_key(self, org, apis, scopes=(), installation_id=""):
        return self.admin.CreateKey(
            self.pb2.CreateKeyRequest(organization_id=org, name="gateway test", apis=apis,
                                      scopes=list(scopes), installation_id=installation_id),
            timeout=RPC_TIMEOUT_S, metadata=self.admin_md)

    def request(self, host, method, path, headers=None):
        """(status, headers dict, body bytes) of a request through nginx."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=HTTP_TIMEOUT_S)
        try:
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            conn.putheader("Host", host)
            for name, value in (headers or {}).items():
                conn.putheader(name, value)
            conn.endheaders()
            res = conn.getresponse()
            return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
        finally:
            conn.close()

    def raw_request(self, data):
        """The status line of the answer to raw bytes sent to nginx."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=HTTP_TIMEOUT_S) as s:
            s.sendall(data)
            answer = b""
            while b"\r\n" not in answer:
                chunk = s.recv(4096)
                if not chunk:
                    break
                answer += chunk
            return answer.split(b"\r\n", 1)[0].decode("latin-1")


class GatewayTestCase(unittest.TestCase):
    """Checks shared by both seeds."""

    gw = None

    def assert_reached_upstream(self, status, body, key, org, app_id=""):
        self.assertEqual(status, 200, body)
        echoed = json.loads(body)
        headers = echoed["headers"]
        self.assertEqual(headers["x-scopekeeper-key-id"], [key.key.key_id])
        self.assertEqual(headers["x-scopekeeper-organization-id"], [org])
        if app_id:
            self.assertEqual(headers["x-scopekeeper-app-id"], [app_id])
        else:
            self.assertNotIn("x-scopekeeper-app-id", headers)
        # nginx's $request_id (X-Request-Id), adopted as the trace id.
        self.assertRegex(headers["x-scopekeeper-trace-id"][0], r"^[0-9a-f]{32}$")
        # The credential stops at nginx; nothing Scopekeeper-ish the client
        # sent gets through.
        for name in ("authorization", "x-api-key", "x-scopekeeper-api"):
            self.assertNotIn(name, headers)
        return echoed

    def assert_denied(self, status, headers, body, want_status, code, message=None):
        self.assertEqual(status, want_status, body)
        self.assertEqual(headers.get("content-type"), "application/json")
        decoded = json.loads(body)
        self.assertEqual(list(decoded), ["code", "message", "trace_id"])
        self.assertEqual(decoded["code"], code)
        if message is not None:
            self.assertEqual(decoded["message"], message)
        self.assertTrue(decoded["trace_id"])
        return decoded

    def upstream_calls(self):
        return len(self.gw.upstream.requests)

    def check_bad_input_never_reaches_upstream(self, host, path, key_header):
        before = self.upstream_calls()
        # An encoded '..' the upstream could decode: 400 from Scopekeeper.
        status, headers, body = self.gw.request(host, "GET", path + "/%2e%2e/x", key_header)
        self.assert_denied(status, headers, body, 400, "bad_request")
        # Not UTF-8: 400 from Scopekeeper.
        line = self.gw.raw_request(
            b"GET " + path.encode() + b"/\xff\xfe HTTP/1.1\r\nHost: " + host.encode() +
            b"\r\n" + b"".join(k.encode() + b": " + v.encode() + b"\r\n"
                               for k, v in key_header.items()) + b"Connection: close\r\n\r\n")
        self.assertEqual(line.split(" ")[1], "400", line)
        # A header larger than nginx's buffers: nginx's own 4xx.
        status, _, _ = self.gw.request(host, "GET", path, dict(key_header, **{"X-Big": "b" * 20000}))
        self.assertIn(status, (400, 431, 494))
        # No credential at all: 401.
        status, headers, body = self.gw.request(host, "GET", path)
        self.assert_denied(status, headers, body, 401, "unauthorized",
                           "Invalid or expired API key")
        self.assertEqual(self.upstream_calls(), before)


class MaxCareThroughNginxTest(GatewayTestCase):
    """Max AI marketplace: one API, selected by the policy (host)."""

    ORG = "org_abc123"

    @classmethod
    def setUpClass(cls):
        cls.gw = GatewayFixture(cls, MAXCARE_POLICY, "maxcare")
        pb2 = cls.gw.pb2
        cls.gw.admin.PutApp(pb2.PutAppRequest(app=pb2.App(
            app_id="app_scheduler", slug="scheduler", live_version_id="v1",
            requested_scopes=["read:patients", "read:appointments"])),
            timeout=RPC_TIMEOUT_S, metadata=cls.gw.admin_md)
        installation = cls.gw.admin.ApproveInstallation(pb2.ApproveInstallationRequest(
            organization_id=cls.ORG, app_id="app_scheduler", approved_scopes=["read:patients"]),
            timeout=RPC_TIMEOUT_S, metadata=cls.gw.admin_md)
        cls.key = cls.gw.create_key(cls.ORG, ["marketplace"],
                                    installation_id=installation.installation_id)
        cls.bearer = {"Authorization": "Bearer " + cls.key.secret,
                      "X-Organization-Id": cls.ORG}

    def test_allowed_request_reaches_upstream_with_identity_headers(self):
        status, _, body = self.gw.request(
            "api.maxcare.ai", "GET", "/v1/patients/p_1?fields=name",
            dict(self.bearer, **{"X-Scopekeeper-Key-Id": "forged",
                                 "X-Scopekeeper-Redact": "forged",
                                 "X-Scopekeeper-Api": "marketplace"}))
        echoed = self.assert_reached_upstream(status, body, self.key, self.ORG, "app_scheduler")
        self.assertEqual(echoed["path"], "/v1/patients/p_1?fields=name")
        self.assertNotIn("x-scopekeeper-redact", echoed["headers"])
        # X-API-Key works too, and is stripped as well.
        status, _, body = self.gw.request(
            "api.maxcare.ai", "GET", "/v1/patients",
            {"X-API-Key": self.key.secret, "X-Organization-Id": self.ORG})
        self.assert_reached_upstream(status, body, self.key, self.ORG, "app_scheduler")

    def test_missing_scope_is_403_with_the_seed_body(self):
        before = self.upstream_calls()
        status, headers, body = self.gw.request("api.maxcare.ai", "GET", "/v1/appointments",
                                                self.bearer)
        decoded = self.assert_denied(status, headers, body, 403, "forbidden",
                                     "Insufficient scope. Required: read:appointments")
        self.assertEqual(headers.get("x-scopekeeper-trace-id"), decoded["trace_id"])
        self.assertEqual(self.upstream_calls(), before)

    def test_unknown_key_is_401(self):
        status, headers, body = self.gw.request(
            "api.maxcare.ai", "GET", "/v1/patients",
            {"Authorization": "Bearer max_prd_ak_made_up", "X-Organization-Id": self.ORG})
        self.assert_denied(status, headers, body, 401, "unauthorized",
                           "Invalid or expired API key")

    def test_unknown_route_or_host_is_404(self):
        before = self.upstream_calls()
        for host, path in (("api.maxcare.ai", "/v1/nothing"), ("other.example", "/v1/patients")):
            status, headers, body = self.gw.request(host, "GET", path, self.bearer)
            self.assert_denied(status, headers, body, 404, "not_found", "Not found")
        self.assertEqual(self.upstream_calls(), before)

    def test_other_organization_is_403(self):
        status, headers, body = self.gw.request(
            "api.maxcare.ai", "GET", "/v1/patients",
            dict(self.bearer, **{"X-Organization-Id": "org_other"}))
        self.assert_denied(status, headers, body, 403, "forbidden")

    def test_bad_input_never_reaches_upstream(self):
        self.check_bad_input_never_reaches_upstream("api.maxcare.ai", "/v1/patients", self.bearer)

    def test_zz_scopekeeper_stopped_is_503_never_the_upstream(self):
        # Runs last in this class (unittest sorts by name).
        self.assertEqual(self.gw.server.terminate(timeout=20), 0)
        before = self.upstream_calls()
        status, headers, body = self.gw.request("api.maxcare.ai", "GET", "/v1/patients",
                                                self.bearer)
        self.assert_denied(status, headers, body, 503, "unavailable")
        self.assertEqual(self.upstream_calls(), before)


class RxScaleThroughNginxTest(GatewayTestCase):
    """RxScale: the pharmacy API by host + prefix; Management and Public named
    by nginx's map (they share route shapes)."""

    ORG = "org_rx"

    @classmethod
    def setUpClass(cls):
        cls.gw = GatewayFixture(cls, RXSCALE_POLICY, "rxscale")
        cls.pharmacy = cls.gw.create_key(cls.ORG, ["external-pharmacy"], ["orders_read"])
        cls.management = cls.gw.create_key(cls.ORG, ["management"], ["order:read"])
        cls.public = cls.gw.create_key(cls.ORG, ["public"], ["product:read"])

    @staticmethod
    def bearer(key):
        return {"Authorization": "Bearer " + key.secret}

    def test_allowed_requests_reach_upstream_with_identity_headers(self):
        status, _, body = self.gw.request(
            "api.rxscale.com", "GET", "/v1/external-pharmacy-api-v1/pharmacy_orders/?page=2",
            self.bearer(self.pharmacy))
        self.assert_reached_upstream(status, body, self.pharmacy, self.ORG)
        # Named by nginx's map; the redaction travels to the upstream.
        status, _, body = self.gw.request("management.rxscale.example", "GET", "/orders/o_1",
                                          {"X-API-Key": self.management.secret})
        echoed = self.assert_reached_upstream(status, body, self.management, self.ORG)
        self.assertEqual(echoed["headers"]["x-scopekeeper-redact"], ["prescription"])
        status, _, body = self.gw.request("public.rxscale.example", "GET", "/products/shop_1",
                                          self.bearer(self.public))
        self.assert_reached_upstream(status, body, self.public, self.ORG)

    def test_missing_scope_is_403_with_the_seed_body(self):
        status, headers, body = self.gw.request(
            "api.rxscale.com", "PATCH", "/v1/external-pharmacy-api-v1/pharmacy_orders/o_1/status",
            self.bearer(self.pharmacy))
        self.assert_denied(status, headers, body, 403, "forbidden",
                           "Insufficient scope. Required: orders_write")
        # A key of another API on a host nginx names.
        status, headers, body = self.gw.request("public.rxscale.example", "GET", "/orders/shop_1",
                                                self.bearer(self.management))
        self.assert_denied(status, headers, body, 403, "forbidden",
                           "API key is not valid for this API")

    def test_unknown_key_is_401(self):
        status, headers, body = self.gw.request(
            "management.rxscale.example", "GET", "/orders/o_1",
            {"Authorization": "Bearer rxs_mg_made_up"})
        self.assert_denied(status, headers, body, 401, "unauthorized")

    def test_unknown_route_is_404_and_clients_cannot_pick_the_api(self):
        before = self.upstream_calls()
        for host, path, key, extra in (
                ("api.rxscale.com", "/v1/external-pharmacy-api-v1/nothing", self.pharmacy, {}),
                ("management.rxscale.example", "/nothing", self.management, {}),
                # No API is selected for this host and path; a client's own
                # X-Scopekeeper-Api does not change that.
                ("api.rxscale.com", "/orders/o_1", self.management, {}),
                ("api.rxscale.com", "/orders/o_1", self.management,
                 {"X-Scopekeeper-Api": "management"})):
            status, headers, body = self.gw.request(host, "GET", path,
                                                    dict(self.bearer(key), **extra))
            self.assert_denied(status, headers, body, 404, "not_found")
        self.assertEqual(self.upstream_calls(), before)

    def test_bad_input_never_reaches_upstream(self):
        self.check_bad_input_never_reaches_upstream(
            "api.rxscale.com", "/v1/external-pharmacy-api-v1/pharmacy_orders",
            self.bearer(self.pharmacy))
        # A client adding the header family nginx does not use is refused.
        status, headers, body = self.gw.request(
            "api.rxscale.com", "GET", "/v1/external-pharmacy-api-v1/pharmacy_orders/",
            dict(self.bearer(self.pharmacy), **{"X-Forwarded-Uri": "/elsewhere"}))
        self.assertEqual(status, 200, body)  # nginx clears it for the subrequest

    def test_zz_scopekeeper_stopped_is_503_never_the_upstream(self):
        self.assertEqual(self.gw.server.terminate(timeout=20), 0)
        before = self.upstream_calls()
        status, headers, body = self.gw.request(
            "api.rxscale.com", "GET", "/v1/external-pharmacy-api-v1/pharmacy_orders/",
            self.bearer(self.pharmacy))
        self.assert_denied(status, headers, body, 503, "unavailable")
        self.assertEqual(self.upstream_calls(), before)


if __name__ == "__main__":
    unittest.main()
