"""Shared helpers for tests that run the real scopekeeper binary as a child.

Used by tests/python/authorize_e2e_test.py and tests/crash/crash_test.py.
Under Bazel the paths come from the SK_* environment variables that
run_py_test.sh exports; from a checkout they default to the repository's
files (after `bazel build //server:scopekeeper`). Run with /usr/bin/python3
(it has grpc and grpc_tools).

    data_dir = os.path.join(sk_testing.test_tmpdir(cleanup), "data")
    server = sk_testing.ServerProcess(data_dir, policy_file=sk_testing.POLICY_FILE)
    port = server.wait_for_port()
    ...
    rc = server.terminate(timeout=20)      # SIGTERM; or server.kill()
"""

import collections
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _path(env_name, repo_relative):
    return os.environ.get(env_name) or os.path.join(_REPO, repo_relative)


SERVER_BIN = _path("SK_SERVER_BIN", "bazel-bin/server/scopekeeper")
PROTO_FILE = _path("SK_PROTO_FILE", "proto/scopekeeper/v1/scopekeeper.proto")
POLICY_FILE = _path("SK_POLICY_FILE", "examples/policies/rxscale.json")
SK_PROTO_PY = _path("SK_PROTO_PY", "scripts/sk_proto.py")

sys.path.insert(0, os.path.dirname(SK_PROTO_PY))
import sk_proto  # noqa: E402

STARTUP_DEADLINE_S = 30
LISTENING = re.compile(r"listening on 127\.0\.0\.1:(\d+)")
METRICS_LISTENING = re.compile(r"metrics on http://127\.0\.0\.1:(\d+)/metrics")


def test_tmpdir(add_cleanup):
    """Bazel's TEST_TMPDIR, or a fresh directory removed via add_cleanup."""
    tmp = os.environ.get("TEST_TMPDIR")
    if not tmp:
        tmp = tempfile.mkdtemp(prefix="scopekeeper-test-")
        add_cleanup(shutil.rmtree, tmp, True)
    return tmp


def load_stubs(tmp, with_reflection=False):
    """The scopekeeper.v1 stubs, generated into tmp/pystubs (sk_proto.load)."""
    return sk_proto.load(cache_dir=os.path.join(tmp, "pystubs"), proto_file=PROTO_FILE,
                         with_reflection=with_reflection)


def require_server_binary():
    """Raises AssertionError naming the build command if the binary is missing."""
    if not os.access(SERVER_BIN, os.X_OK):
        raise AssertionError(SERVER_BIN + " is missing; run `bazel build //server:scopekeeper`")


def _die_with_parent_prefix():
    """Command prefix that SIGTERMs the server if this test process dies first.

    setpriv (util-linux) sets PR_SET_PDEATHSIG and execs the server. Not a
    preexec_fn: Python code run between fork and exec can deadlock when other
    threads (gRPC's, the test's clients) hold locks at the fork, and then
    Popen() never returns.
    """
    setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
    return [setpriv, "--pdeathsig", "TERM", "--"]


class ServerProcess:
    """The scopekeeper binary as a child process, its output drained by a thread.

    Listens on 127.0.0.1 port 0; wait_for_port() returns the port it chose.
    Flags left as None are not passed (the server then generates the admin
    token in <data_dir>/admin_token, and keeps the stored policy).
    """

    def __init__(self, data_dir, admin_token_file=None, policy_file=None, extra_args=(),
                 wrapper=(), command=None, env=None):
        """`wrapper`: a command that runs the server, given as its last
        arguments (it must exec them, so the process is the server's).
        `command`: the whole command instead (it must exec the server; the
        other arguments are then ignored), e.g. ["bash", "-c", "exec ..."]
        for a documented command line. `env`: the server's environment."""
        if command is not None:
            cmd = _die_with_parent_prefix() + list(command)
        else:
            cmd = _die_with_parent_prefix() + list(wrapper) + [
                SERVER_BIN, "--listen=127.0.0.1:0", "--data_dir=" + data_dir]
            if admin_token_file is not None:
                cmd.append("--admin_token_file=" + admin_token_file)
            if policy_file is not None:
                cmd.append("--policy_file=" + policy_file)
            cmd.extend(extra_args)
        # stdout is merged into the stderr pipe so a log line is never missed
        # (or left to block the server) whichever stream the server uses.
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=env)
        self.output = collections.deque(maxlen=200)  # last lines, for failure messages
        self.all_output = []  # every line, for tests that inspect the whole log
        self._lines = queue.Queue()
        self._drainer = threading.Thread(target=self._drain, name="server-output", daemon=True)
        self._drainer.start()

    def _drain(self):
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.output.append(line)
            self.all_output.append(line)
            self._lines.put(line)
        self._lines.put(None)  # EOF: the server closed its output or exited

    def log_tail(self):
        return "\n".join(self.output) or "(no output)"

    def wait_for_port(self, pattern=LISTENING):
        """Returns the port from the `listening on 127.0.0.1:PORT` line (or the
        first group of another `pattern`, e.g. the metrics line, which the
        server logs before it)."""
        deadline = time.monotonic() + STARTUP_DEADLINE_S
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("no 'listening on 127.0.0.1:PORT' line within %d s; output:\n%s"
                                     % (STARTUP_DEADLINE_S, self.log_tail()))
            try:
                line = self._lines.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                rc = self.proc.wait(timeout=STARTUP_DEADLINE_S)
                raise AssertionError("server exited (status %s) before listening; output:\n%s"
                                     % (rc, self.log_tail()))
            m = pattern.search(line)
            if m:
                return int(m.group(1))

    def terminate(self, timeout):
        """SIGTERM, then the exit status (SIGKILL and None if it hangs)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            rc = None
        self._reap_output()
        return rc

    def kill(self):
        """SIGKILL (a crash: nothing is flushed or closed) and reap the process."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._reap_output()

    def _reap_output(self):
        """After exit: lets the drainer read to EOF, then closes the pipe."""
        self._drainer.join(timeout=5)
        if not self._drainer.is_alive():
            self.proc.stdout.close()
