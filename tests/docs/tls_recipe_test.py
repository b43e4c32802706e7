"""Runs the "TLS and mTLS, step by step" section of docs/OPERATIONS.md.

The section's fenced blocks, in order, with $HOME a temporary directory
(the recipe works under ~/scopekeeper-tls) and nothing created beforehand:

* a ```sh block is run as written with bash -euo pipefail in $HOME, unless
  its command is `bazel-bin/server/scopekeeper ...` (started in the
  background, with port 0 for the documented port and the repository's
  policy file) or `bazel-bin/client/scopectl ...` (run against that
  server);
* a ```text block right after one of them lists lines its output (stdout
  and stderr) must hold, in order, each matched whole; "…" matches any run.
  scopectl must exit 0, or 3 when the block shows a `scopectl:` error;
* a ```log block lists lines the server's log must hold, in order, each
  matched anywhere in a line ("…" as above); they are checked once the
  server has stopped, so every line it wrote is in.

So the recipe, the subject string gRPC reports (RFC 2253 order) and what
the server logs for an admin certificate and an unlisted one are checked
against the real binaries.

Under Bazel (//tests/docs:tls_recipe_test) the paths come from SK_*
variables set by tests/python/run_py_test.sh. From a checkout, after
`bazel build //server:scopekeeper //client:scopectl`:
    /usr/bin/python3 -m unittest -v tests/docs/tls_recipe_test.py
"""

import os
import re
import subprocess
import sys
import unittest

_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))
sys.path.insert(0, os.path.join(_REPO, "tests", "python"))
sys.path.insert(0, _HERE)
import sk_testing  # noqa: E402
from docs_examples_test import fenced_blocks  # noqa: E402

OPERATIONS = os.environ.get("SK_DOC_OPERATIONS") or os.path.join(_REPO, "docs/OPERATIONS.md")
SCOPECTL_BIN = os.environ.get("SK_SCOPECTL_BIN") or os.path.join(_REPO, "bazel-bin/client/scopectl")
SECTION = "## TLS and mTLS, step by step"
DOC_PORT = "50443"
ELLIPSIS = "…"
TIMEOUT_S = 60


def section(markdown, heading):
    start = markdown.index(heading + "\n")
    end = markdown.find("\n## ", start + len(heading))
    return markdown[start:end if end >= 0 else len(markdown)]


def pattern(line):
    return ".*".join(re.escape(part) for part in line.strip().split(ELLIPSIS))


def expect_in_order(test, want_lines, got_lines, whole, where):
    """Each wanted line matches a later got line than the previous one."""
    at = 0
    for want in (l for l in want_lines if l.strip()):
        regex = re.compile(pattern(want))
        match = regex.fullmatch if whole else regex.search
        while at < len(got_lines) and not match(got_lines[at].strip()):
            at += 1
        test.assertLess(at, len(got_lines), "%s: no line %r (in order) in:\n%s"
                        % (where, want, "\n".join(got_lines)))
        at += 1


class TlsRecipeTest(unittest.TestCase):

    def test_the_recipe_as_written(self):
        sk_testing.require_server_binary()
        with open(OPERATIONS, encoding="utf-8") as f:
            blocks = fenced_blocks(section(f.read(), SECTION))
        home = os.path.join(sk_testing.test_tmpdir(self.addCleanup), "home")
        os.makedirs(home)
        env = dict(os.environ, HOME=home)
        server, port, output, rc, logs, commands = None, None, None, None, [], 0
        for i, block in enumerate(blocks):
            where = "OPERATIONS.md %s block %d" % (SECTION, i)
            text = block.text.strip()
            if block.lang == "sh" and text.startswith("bazel-bin/server/scopekeeper"):
                cmd = (text.replace("bazel-bin/server/scopekeeper", sk_testing.SERVER_BIN)
                       .replace("--listen=127.0.0.1:" + DOC_PORT, "--listen=127.0.0.1:0")
                       .replace("examples/policies/rxscale.json", sk_testing.POLICY_FILE))
                self.assertIn("--listen=127.0.0.1:0", cmd, where)
                server = sk_testing.ServerProcess(None, command=["bash", "-c", "exec " + cmd],
                                                  env=env)
                self.addCleanup(server.terminate, 5)
                port = server.wait_for_port()
                output = None
            elif block.lang == "sh" and text.startswith("bazel-bin/client/scopectl"):
                self.assertIsNotNone(server, "%s: scopectl before the server" % where)
                cmd = (text.replace("bazel-bin/client/scopectl", SCOPECTL_BIN)
                       .replace("localhost:" + DOC_PORT, "localhost:%d" % port))
                done = subprocess.run(["bash", "-c", cmd], cwd=home, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      timeout=TIMEOUT_S)
                output, rc = done.stdout.decode(), done.returncode
                commands += 1
            elif block.lang == "sh":
                done = subprocess.run(["bash", "-euo", "pipefail", "-c", text], cwd=home,
                                      env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, timeout=TIMEOUT_S)
                output, rc = done.stdout.decode(), done.returncode
                self.assertEqual(rc, 0, "%s failed:\n%s" % (where, output))
            elif block.lang == "text":
                self.assertIsNotNone(output, "%s: no command before this output" % where)
                want = text.split("\n")
                error = want[0].startswith("scopectl:")
                self.assertEqual(rc, 3 if error else 0, "%s: exit status\n%s" % (where, output))
                expect_in_order(self, want, output.split("\n"), whole=True, where=where)
            elif block.lang == "log":
                self.assertIsNotNone(port, "%s: no server before this log" % where)
                text = text.replace("127.0.0.1:" + DOC_PORT, "127.0.0.1:%d" % port)
                logs.append((where, text.split("\n")))
        self.assertIsNotNone(server, "the section starts no server")
        self.assertGreaterEqual(commands, 3, "too few scopectl commands ran")
        self.assertEqual(server.terminate(timeout=20), 0, server.log_tail())
        self.assertGreaterEqual(len(logs), 2)
        for where, want in logs:
            expect_in_order(self, want, server.all_output, whole=False, where=where)
        # The recipe's keys are private.
        for name in os.listdir(os.path.join(home, "scopekeeper-tls")):
            if name.endswith(".key"):
                mode = os.stat(os.path.join(home, "scopekeeper-tls", name)).st_mode & 0o777
                self.assertEqual(mode, 0o600, name)


if __name__ == "__main__":
    unittest.main()
