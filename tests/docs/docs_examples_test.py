"""Runs the grpcurl examples of docs/API.md and docs/WALKTHROUGHS.md.

Documentation that is executed cannot rot. Each document is a script read
from its fenced code blocks, in order:

* A ```sh block whose command is `bazel-bin/server/scopekeeper ...` starts a
  fresh server (new data dir, port 0) with the block's --policy_file. The
  documented --data_dir's parent (e.g. /tmp/scopekeeper-api) is mapped to a
  temporary directory in every later command and response; like the
  documented directory on a fresh machine, it does not exist before the
  server starts.
* A ```grpcurl block is one grpcurl command. It is run with a Python gRPC
  client: the JSON of `-d '...'` (or of a `<<EOF` here-document with
  `-d @`) is parsed into the request message with protobuf's json_format,
  as grpcurl does; `-H "authorization: Bearer $(cat DIR/admin_token)"` sends
  that server's admin token; `-emit-defaults` and `-max-time N` (the
  deadline, for Watch) are honoured; `jq '{policy: .}' FILE | grpcurl -d @`
  sends FILE as PutPolicyRequest.policy. Other flags fail the test.
* The fenced block right after it (```json or ```text) is what grpcurl
  prints, in part: the response as JSON (lowerCamelCase names, 64-bit
  integers as strings, default values omitted unless -emit-defaults; one
  object per message of a stream), or grpcurl's error
  (`ERROR:` / `  Code: NotFound` / `  Message: ...`), or for `list` the
  service names. A DeadlineExceeded error matches whatever message is
  shown if grpcurl's own timer fired first (which of the two answers first
  is a race). Objects are matched as subsets: only the fields shown are
  checked. Lists must match element by element; a last element "…" allows
  more. A string "…" is any value; "abc…" is a prefix (… matches any run);
  a string that is exactly "$NAME" binds NAME to the actual value the first
  time and must equal it afterwards. Bound names ($KEY, $KEY_ID, ...) are
  substituted into later commands and expected messages.

A wrong example fails with the document, line and the difference. With
SK_DOCS_PRINT=1 the test prints what every command returned (for writing
new examples).

Under Bazel (//tests/docs:docs_examples_test) the paths come from SK_*
variables set by tests/python/run_py_test.sh. From a checkout, after
`bazel build //server:scopekeeper`:
    /usr/bin/python3 -m unittest -v tests/docs/docs_examples_test.py
"""

import collections
import json
import os
import re
import shlex
import sys
import unittest

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))
sys.path.insert(0, os.path.join(_REPO, "tests", "python"))
import sk_testing  # noqa: E402  (puts scripts/ on sys.path)
import sk_proto  # noqa: E402

import grpc  # noqa: E402
from google.protobuf import descriptor_pb2, json_format  # noqa: E402

DOCS = {
    "API.md": os.environ.get("SK_DOC_API") or os.path.join(_REPO, "docs/API.md"),
    "WALKTHROUGHS.md": os.environ.get("SK_DOC_WALKTHROUGHS") or os.path.join(
        _REPO, "docs/WALKTHROUGHS.md"),
}
# Files the documents name, by their path in the repository.
REPO_FILES = {
    "examples/policies/rxscale.json": sk_testing.POLICY_FILE,
    "examples/policies/maxcare.json": os.environ.get("SK_MAXCARE_POLICY_FILE") or os.path.join(
        _REPO, "examples/policies/maxcare.json"),
}
DOC_ADDRESS = "localhost:50061"
DEFAULT_TIMEOUT_S = 10
ELLIPSIS = "…"
# What grpcurl (Go) prints when its own deadline (-max-time) fires first; the
# server may answer DEADLINE_EXCEEDED with its own message just before.
CLIENT_DEADLINE_MESSAGE = "context deadline exceeded"
PLACEHOLDER = re.compile(r"\$\{?([A-Z][A-Z0-9_]*)\}?")
ADMIN_TOKEN_SUBST = re.compile(r"\$\(cat ([^)\s]+)/admin_token\)")

Block = collections.namedtuple("Block", "lang text line")


def fenced_blocks(markdown):
    """The ``` blocks of a markdown text: language (first word of the info
    string), content, and the line number of the opening fence."""
    blocks, lines, i = [], markdown.split("\n"), 0
    while i < len(lines):
        m = re.match(r"^(\s*)(```+)\s*([^\s`]*)", lines[i])
        if not m:
            i += 1
            continue
        fence, start, body = m.group(2), i + 1, []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(fence):
            body.append(lines[i][len(m.group(1)):] if lines[i].startswith(m.group(1)) else lines[i])
            i += 1
        blocks.append(Block(m.group(3), "\n".join(body), start))
        i += 1
    return blocks


def grpc_code_name(code):
    """grpcurl's (Go's) spelling of a status code: NotFound, Canceled, ..."""
    if code == grpc.StatusCode.CANCELLED:
        return "Canceled"
    return "".join(part.capitalize() for part in code.name.split("_"))


def redact(text):
    """The server's RedactSecretShapedRuns() (base/redact.h)."""
    return re.sub(r"[A-Za-z0-9]{28,}", "<redacted>", text)


class Mismatch(AssertionError):
    pass


class DocRunner:
    """Runs one document's blocks against servers it starts."""

    def __init__(self, test, doc_name, stubs, tmp):
        self.test, self.doc, self.stubs, self.tmp = test, doc_name, stubs, tmp
        self.pb2 = stubs.pb2
        self.vars = {}
        self.server = self.channel = None
        self.doc_root = self.test_root = self.doc_data_dir = None
        self.servers_started = 0
        self.calls = 0
        self.services = {}
        for service in self.pb2.DESCRIPTOR.services_by_name.values():
            proto = descriptor_pb2.ServiceDescriptorProto()
            service.CopyToProto(proto)
            streaming = {m.name: m.server_streaming for m in proto.method}
            for method in service.methods:
                self.services["%s/%s" % (service.full_name, method.name)] = (
                    method, streaming[method.name])

    # Servers.

    def start_server(self, command, where):
        args = shlex.split(command.replace("\\\n", " "))
        if not args or os.path.basename(args[0]) != "scopekeeper":
            raise Mismatch("%s: not a scopekeeper command: %s" % (where, command))
        flags = {}
        for arg in args[1:]:
            m = re.match(r"^--([a-z_]+)=(.*)$", arg)
            if not m or m.group(1) not in ("listen", "data_dir", "policy_file"):
                raise Mismatch("%s: the test only honours --listen, --data_dir and "
                               "--policy_file, not %r" % (where, arg))
            flags[m.group(1)] = m.group(2)
        if flags.get("listen", "127.0.0.1:50061") not in ("127.0.0.1:50061", DOC_ADDRESS):
            raise Mismatch("%s: examples call %s; listen there" % (where, DOC_ADDRESS))
        if "data_dir" not in flags:
            raise Mismatch("%s: give --data_dir (the admin token is read from it)" % where)
        self.stop_server()
        self.servers_started += 1
        self.doc_data_dir = flags["data_dir"].rstrip("/")
        self.doc_root = os.path.dirname(self.doc_data_dir)
        # Not created here: the reader is not told to create it either (the
        # server creates the data dir's missing parents).
        self.test_root = os.path.join(self.tmp, "%s-%d" % (self.doc.replace(".", "_"),
                                                           self.servers_started))
        policy = None
        if "policy_file" in flags:
            policy = REPO_FILES.get(flags["policy_file"])
            if policy is None:
                raise Mismatch("%s: unknown --policy_file %s (known: %s)"
                               % (where, flags["policy_file"], sorted(REPO_FILES)))
        self.server = sk_testing.ServerProcess(self.map_path(self.doc_data_dir), policy_file=policy)
        port = self.server.wait_for_port()
        self.channel = sk_proto.channel("127.0.0.1:%d" % port)
        self.admin_token = sk_proto.read_admin_token(
            os.path.join(self.map_path(self.doc_data_dir), "admin_token"))

    def stop_server(self):
        if self.channel is not None:
            self.channel.close()
            self.channel = None
        if self.server is not None:
            rc = self.server.terminate(timeout=20)
            if rc != 0:
                raise Mismatch("%s: server exited with %s after SIGTERM:\n%s"
                               % (self.doc, rc, self.server.log_tail()))
            self.server = None

    def map_path(self, text):
        if self.doc_root and self.doc_root != "/":
            return text.replace(self.doc_root, self.test_root)
        return text

    # Substitution.

    def substitute(self, text, where):
        def admin_token(m):
            if m.group(1) != self.doc_data_dir:
                raise Mismatch("%s: admin token read from %s/admin_token, but the server's "
                               "--data_dir is %s" % (where, m.group(1), self.doc_data_dir))
            return self.admin_token

        text = ADMIN_TOKEN_SUBST.sub(admin_token, text)

        def var(m):
            if m.group(1) not in self.vars:
                raise Mismatch("%s: $%s is not bound by an earlier response (bound: %s)"
                               % (where, m.group(1), sorted(self.vars)))
            return self.vars[m.group(1)]

        return self.map_path(PLACEHOLDER.sub(var, text))

    # grpcurl.

    def parse_grpcurl(self, text, where):
        lines = [l for l in text.split("\n") if not l.lstrip().startswith("#")]
        text = "\n".join(lines).replace("\\\n", " ")
        stdin = None
        m = re.search(r"<<\s*(\w+)[ \t]*\n(.*?)\n\1[ \t]*(\n|$)", text, re.S)
        if m:
            stdin = m.group(2)
            text = text[:m.start()] + text[m.end():]
        jq = re.match(r"\s*jq '\{policy: \.\}' (\S+) \|\s*(.*)$", text, re.S)
        if jq:
            path = REPO_FILES.get(jq.group(1))
            if path is None:
                raise Mismatch("%s: unknown file %s" % (where, jq.group(1)))
            with open(path, encoding="utf-8") as f:
                stdin = json.dumps({"policy": json.load(f)})
            text = jq.group(2)
        args = shlex.split(text)
        if not args or args[0] != "grpcurl":
            raise Mismatch("%s: a grpcurl block must hold one grpcurl command" % where)
        cmd = {"data": None, "headers": [], "emit_defaults": False, "max_time": None}
        rest, i = [], 1
        while i < len(args):
            a = args[i]
            if a == "-plaintext":
                cmd["plaintext"] = True
            elif a == "-emit-defaults":
                cmd["emit_defaults"] = True
            elif a in ("-d", "-H", "-max-time") and i + 1 < len(args):
                i += 1
                if a == "-d":
                    cmd["data"] = stdin if args[i] == "@" else args[i]
                    if args[i] == "@" and stdin is None:
                        raise Mismatch("%s: -d @ without a here-document or jq pipe" % where)
                elif a == "-H":
                    cmd["headers"].append(args[i])
                else:
                    cmd["max_time"] = float(args[i])
            elif a.startswith("-"):
                raise Mismatch("%s: grpcurl flag %s is not emulated by the test" % (where, a))
            else:
                rest.append(a)
            i += 1
        if not cmd.get("plaintext"):
            raise Mismatch("%s: examples use -plaintext (the test server has no TLS)" % where)
        if not rest or rest[0] != DOC_ADDRESS:
            raise Mismatch("%s: examples call %s" % (where, DOC_ADDRESS))
        cmd["target"] = rest[1:]
        return cmd

    def run_grpcurl(self, block, where):
        """Returns (messages, error): JSON-like dicts, and (code, message) or None."""
        if self.channel is None:
            raise Mismatch("%s: no server started before this call" % where)
        cmd = self.parse_grpcurl(self.substitute(block.text, where), where)
        if cmd["target"] == ["list"]:
            return self.list_services(), None
        if len(cmd["target"]) != 1 or cmd["target"][0] not in self.services:
            raise Mismatch("%s: unknown method %s" % (where, " ".join(cmd["target"])))
        method, streaming = self.services[cmd["target"][0]]
        request = getattr(self.pb2, method.input_type.name)()
        if cmd["data"] is not None:
            try:
                json_format.Parse(cmd["data"], request)
            except json_format.ParseError as e:
                raise Mismatch("%s: -d is not a valid %s: %s" % (where, method.input_type.name, e))
        metadata = []
        for header in cmd["headers"]:
            name, _, value = header.partition(":")
            metadata.append((name.strip().lower(), value.strip()))
        response_type = getattr(self.pb2, method.output_type.name)
        path = "/%s/%s" % (method.containing_service.full_name, method.name)
        timeout = cmd["max_time"] or DEFAULT_TIMEOUT_S
        render = lambda m: json_format.MessageToDict(  # noqa: E731
            m, including_default_value_fields=cmd["emit_defaults"])
        self.calls += 1
        messages = []
        try:
            if streaming:
                call = self.channel.unary_stream(path, request_serializer=request.SerializeToString,
                                                 response_deserializer=response_type.FromString)
                for message in call(request, timeout=timeout, metadata=metadata):
                    messages.append(render(message))
            else:
                call = self.channel.unary_unary(path, request_serializer=request.SerializeToString,
                                                response_deserializer=response_type.FromString)
                messages.append(render(call(request, timeout=timeout, metadata=metadata)))
        except grpc.RpcError as e:
            details = e.details()
            if e.code() == grpc.StatusCode.DEADLINE_EXCEEDED and details == "Deadline Exceeded":
                details = CLIENT_DEADLINE_MESSAGE
            return messages, (grpc_code_name(e.code()), details)
        return messages, None

    def list_services(self):
        stubs = self.stubs
        stub = stubs.reflection_pb2_grpc.ServerReflectionStub(self.channel)
        [response] = list(stub.ServerReflectionInfo(
            iter([stubs.reflection_pb2.ServerReflectionRequest(list_services="")]),
            timeout=DEFAULT_TIMEOUT_S))
        return sorted(s.name for s in response.list_services_response.service)

    # Expected output.

    def check(self, expected_block, messages, error, where):
        text = self.map_path(expected_block.text).strip()
        if isinstance(messages, list) and messages and isinstance(messages[0], str):  # list
            want = [l.strip() for l in text.split("\n") if l.strip()]
            if want != messages:
                raise Mismatch("%s: grpcurl list prints %s, the doc shows %s"
                               % (where, messages, want))
            return
        objects, pos, decoder = [], 0, json.JSONDecoder()
        while True:
            while pos < len(text) and text[pos].isspace():
                pos += 1
            if pos >= len(text) or text[pos] != "{":
                break
            try:
                obj, pos = decoder.raw_decode(text, pos)
            except json.JSONDecodeError as e:
                raise Mismatch("%s: the expected response is not JSON: %s" % (where, e))
            objects.append(obj)
        rest = text[pos:].strip()
        want_error = None
        if rest:
            m = re.match(r"^ERROR:\s*\n\s*Code:\s*(\w+)\s*\n\s*Message:\s*(.*)$", rest, re.S)
            if not m:
                raise Mismatch("%s: cannot read the expected output after the JSON: %r"
                               % (where, rest))
            want_error = (m.group(1), m.group(2).strip())
        if len(objects) != len(messages):
            raise Mismatch("%s: %d response message(s), the doc shows %d%s:\n%s"
                           % (where, len(messages), len(objects),
                              "" if error is None else " (error %s: %s)" % error,
                              json.dumps(messages, indent=2)))
        for i, (want, got) in enumerate(zip(objects, messages)):
            try:
                self.match(want, got, "response" + ("[%d]" % i if len(messages) > 1 else ""))
            except Mismatch as e:
                raise Mismatch("%s: %s\nactual response:\n%s"
                               % (where, e, json.dumps(got, indent=2)))
        if want_error is None and error is not None:
            raise Mismatch("%s: the call failed (%s: %s), the doc shows success"
                           % ((where,) + error))
        if want_error is not None:
            if error is None:
                raise Mismatch("%s: the call succeeded, the doc shows %s" % (where, want_error))
            if want_error[0] != error[0]:
                raise Mismatch("%s: code %s, the doc shows %s (message %r)"
                               % (where, error[0], want_error[0], error[1]))
            if want_error[0] == "DeadlineExceeded" and error[1] == CLIENT_DEADLINE_MESSAGE:
                return  # the client's timer fired before the server's answer came
            # The server quotes paths through its redaction (runs of 28+
            # letters and digits, like the hashes in Bazel's temp dirs,
            # become <redacted>): undo that for the test's own root.
            got_message = error[1].replace(redact(self.test_root), self.test_root)
            self.match(want_error[1], got_message, "error message", where=where)

    def match(self, want, got, path, where=None):
        if isinstance(want, dict):
            if not isinstance(got, dict):
                raise Mismatch("%s: want an object, got %r" % (path, got))
            for k, v in want.items():
                if k not in got:
                    raise Mismatch("%s.%s: missing (fields present: %s)" % (path, k, sorted(got)))
                self.match(v, got[k], "%s.%s" % (path, k))
        elif isinstance(want, list):
            if not isinstance(got, list):
                raise Mismatch("%s: want a list, got %r" % (path, got))
            open_ended = bool(want) and want[-1] == ELLIPSIS
            items = want[:-1] if open_ended else want
            if len(got) < len(items) or (not open_ended and len(got) != len(items)):
                raise Mismatch("%s: want %s, got %s" % (path, want, got))
            for i, w in enumerate(items):
                self.match(w, got[i], "%s[%d]" % (path, i))
        elif isinstance(want, str):
            whole = re.fullmatch(r"\$([A-Z][A-Z0-9_]*)", want)
            if whole and whole.group(1) not in self.vars:
                if not isinstance(got, str) or not got:
                    raise Mismatch("%s: want a value to bind to %s, got %r" % (path, want, got))
                self.vars[whole.group(1)] = got
                return
            pattern = PLACEHOLDER.sub(lambda m: self.vars.get(m.group(1), m.group(0)), want)
            regex = ".*".join(re.escape(p) for p in pattern.split(ELLIPSIS))
            if not isinstance(got, str) or not re.fullmatch(regex, got, re.S):
                raise Mismatch("%s: want %r, got %r" % ((where + ": " if where else "") + path,
                                                        pattern, got))
        elif want != got or type(want) is not type(got):
            raise Mismatch("%s: want %r, got %r" % (path, want, got))

    # The document.

    def run(self, path):
        with open(path, encoding="utf-8") as f:
            blocks = fenced_blocks(f.read())
        i = 0
        while i < len(blocks):
            block = blocks[i]
            where = "%s:%d" % (self.doc, block.line)
            if block.lang == "sh" and re.match(r"^\s*(bazel-bin/server/)?scopekeeper\s",
                                               block.text.lstrip("# \n")):
                command = "\n".join(l for l in block.text.split("\n")
                                    if not l.lstrip().startswith("#"))
                self.start_server(command.strip(), where)
            elif block.lang == "grpcurl":
                if i + 1 >= len(blocks) or blocks[i + 1].lang not in ("json", "text"):
                    raise Mismatch("%s: a grpcurl block must be followed by a json or text "
                                   "block with what it prints" % where)
                messages, error = self.run_grpcurl(block, where)
                if os.environ.get("SK_DOCS_PRINT"):  # for writing examples
                    print("\n%s:\n%s%s" % (where, json.dumps(messages, indent=2),
                                          "" if error is None else "\nERROR: %s: %s" % error))
                self.check(blocks[i + 1], messages, error, where)
                i += 1
            i += 1
        self.stop_server()


class DocsExamplesTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        sk_testing.require_server_binary()
        cls.tmp = sk_testing.test_tmpdir(cls.addClassCleanup)
        cls.stubs = sk_testing.load_stubs(cls.tmp, with_reflection=True)

    def run_doc(self, name, min_calls):
        runner = DocRunner(self, name, self.stubs, self.tmp)
        self.addCleanup(lambda: runner.server and runner.server.terminate(5))
        try:
            runner.run(DOCS[name])
        except Mismatch as e:
            log = runner.server.log_tail() if runner.server else ""
            self.fail("%s\n(server log tail:\n%s)" % (e, log))
        # A document whose blocks stopped being recognised must not pass empty.
        self.assertGreaterEqual(runner.calls, min_calls, "%s: too few examples ran" % name)
        return runner

    def test_api_guide(self):
        self.run_doc("API.md", min_calls=30)

    def test_walkthroughs(self):
        runner = self.run_doc("WALKTHROUGHS.md", min_calls=25)
        self.assertEqual(runner.servers_started, 2)

    def test_every_rpc_has_an_example(self):
        with open(DOCS["API.md"], encoding="utf-8") as f:
            blocks = [b.text for b in fenced_blocks(f.read()) if b.lang == "grpcurl"]
        runner = DocRunner(self, "API.md", self.stubs, self.tmp)
        missing = [m for m in sorted(runner.services)
                   if not any(re.search(r"\s%s(\s|$)" % re.escape(m), t) for t in blocks)]
        self.assertEqual(missing, [], "RPCs without a grpcurl example in docs/API.md")


def github_anchors(markdown):
    """The anchors GitHub gives the headings of a markdown text."""
    anchors, seen = set(), collections.Counter()
    in_fence = False
    for line in markdown.split("\n"):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
        m = None if in_fence else re.match(r"^#{1,6}\s+(.*?)\s*$", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
            anchors.add(slug if not seen[slug] else "%s-%d" % (slug, seen[slug]))
            seen[slug] += 1
    return anchors


class LinksTest(unittest.TestCase):
    """Links from the two documents into docs/*.md point at real headings."""

    def test_anchors_exist(self):
        docs_dir = os.path.dirname(DOCS["API.md"])
        broken = []
        for name, path in sorted(DOCS.items()):
            with open(path, encoding="utf-8") as f:
                text = f.read()
            for target, anchor in re.findall(r"\]\(([A-Za-z_]*\.md)?#([^)\s]+)\)", text):
                target_path = DOCS.get(target) or os.path.join(docs_dir, target) if target else path
                if not os.path.exists(target_path):
                    broken.append("%s: %s (file missing)" % (name, target))
                    continue
                with open(target_path, encoding="utf-8") as f:
                    if anchor not in github_anchors(f.read()):
                        broken.append("%s: %s#%s" % (name, target or name, anchor))
        self.assertEqual(broken, [], "links to headings that do not exist")


class ConventionTest(unittest.TestCase):
    """The matcher itself: a wrong doc must fail."""

    def setUp(self):
        self.runner = DocRunner.__new__(DocRunner)
        self.runner.vars = {}

    def test_subset_patterns_and_binding(self):
        m = self.runner.match
        m({"a": "x…", "b": ["1", "…"], "c": "$K"},
          {"a": "xyz", "b": ["1", "2"], "c": "v", "d": 1}, "r")
        self.assertEqual(self.runner.vars, {"K": "v"})
        m({"c": "$K", "e": "id $K!"}, {"c": "v", "e": "id v!"}, "r")
        for want, got in [({"c": "$K"}, {"c": "w"}), ({"a": 1}, {"a": "1"}), ({"a": 1}, {}),
                          ({"b": ["1"]}, {"b": ["1", "2"]}), ({"a": "x…"}, {"a": "yx"}),
                          ({"a": False}, {"a": 0})]:
            with self.assertRaises(Mismatch, msg=(want, got)):
                m(want, got, "r")

    def test_fenced_blocks(self):
        blocks = fenced_blocks("x\n```grpcurl\ngrpcurl a \\\n  b\n```\n\n```json\n{}\n```\n")
        self.assertEqual([(b.lang, b.line) for b in blocks], [("grpcurl", 2), ("json", 7)])
        self.assertEqual(blocks[0].text, "grpcurl a \\\n  b")


if __name__ == "__main__":
    unittest.main()
