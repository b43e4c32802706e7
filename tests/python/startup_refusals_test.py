"""Start-up refusals of the real binary: bad flag values and unsafe files.

Each case starts bazel-bin/server/scopekeeper with one bad input and expects
it to exit 1 at once, without listening, with one log line `cannot start:
<CODE>: ...` naming the flag and the cause (issue #14). Before, the values
were taken as given (a sample rate of 2 or nan, a message limit of 0), a
token file anyone could read was accepted, and a FIFO hung the start.

    bazel test //tests/python:startup_refusals_test
From a checkout, after `bazel build //server:scopekeeper`:
    /usr/bin/python3 -m unittest -v tests/python/startup_refusals_test.py
"""

import os
import secrets
import unittest

import sk_testing


class StartupRefusalsTest(unittest.TestCase):

    def setUp(self):
        sk_testing.require_server_binary()
        self.tmp = sk_testing.test_tmpdir(self.addCleanup)

    def path(self, name):
        return os.path.join(self.tmp, "%s-%s" % (self.id().rsplit(".", 1)[-1], name))

    def token_file(self, name, token, mode=0o600):
        path = self.path(name)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(token + "\n")
        os.chmod(path, mode)
        return path

    def expect_refusal(self, extra_args, code, *fragments, admin_token_file=None):
        """Starts the server; it must exit 1 without listening, logging
        `cannot start: CODE: ...` with every fragment."""
        data_dir = self.path("data")
        server = sk_testing.ServerProcess(data_dir, admin_token_file=admin_token_file,
                                          policy_file=sk_testing.POLICY_FILE,
                                          extra_args=extra_args)
        try:
            port = server.wait_for_port()
        except AssertionError:
            pass  # exited before listening (or hung: the status below fails)
        else:
            server.terminate(timeout=10)
            self.fail("%s: the server started on port %d instead of refusing"
                      % (extra_args, port))
        rc = server.terminate(timeout=10)
        log = "\n".join(server.all_output)
        self.assertEqual(rc, 1, "%s: exit status %s; log:\n%s" % (extra_args, rc, log))
        self.assertIn("cannot start: %s: " % code, log)
        for fragment in fragments:
            self.assertIn(fragment, log, extra_args)
        self.assertFalse(os.path.exists(os.path.join(data_dir, "db")),
                         "%s: the data dir was touched" % extra_args)
        return log

    def test_out_of_range_flag_values(self):
        cases = [
            ("--max_receive_message_bytes=0", "--max_receive_message_bytes: must be positive"),
            ("--max_receive_message_bytes=-1", "--max_receive_message_bytes: must be positive"),
            ("--decision_log_sample_rate=2", "--decision_log_sample_rate: must be between 0 and 1"),
            ("--decision_log_sample_rate=-0.5",
             "--decision_log_sample_rate: must be between 0 and 1"),
            ("--decision_log_sample_rate=nan",
             "--decision_log_sample_rate: must be between 0 and 1 (a fraction of decisions), "
             "is nan"),
            ("--store_retry_interval=-1s", "--store_retry_interval: must be a finite duration"),
            ("--store_retry_interval=inf", "--store_retry_interval: must be a finite duration"),
            ("--key_cache_capacity=-1", "--key_cache_capacity: must be 0 (unlimited) or positive"),
            ("--listen=localhost", "--listen: expected HOST:PORT"),
            ("--metrics_listen=127.0.0.1:99999", "--metrics_listen: expected HOST:PORT"),
        ]
        for flag, message in cases:
            with self.subTest(flag=flag):
                self.expect_refusal([flag], "INVALID_ARGUMENT", message)

    def test_token_file_others_can_read(self):
        token = "refusals-" + secrets.token_hex(20)
        path = self.token_file("admin", token, mode=0o644)
        log = self.expect_refusal([], "FAILED_PRECONDITION", "--admin_token_file: " + path,
                                  "accessible by group or others (mode 0644)",
                                  admin_token_file=path)
        self.assertNotIn(token, log)

    def test_weak_authorizer_token(self):
        path = self.token_file("authorizer", "gateway-secret")
        log = self.expect_refusal(["--authorizer_token_file=" + path], "FAILED_PRECONDITION",
                                  "--authorizer_token_file: the token in " + path,
                                  "too weak: it has 14 characters; at least 32")
        self.assertNotIn("gateway-secret", log)

    def test_same_token_for_admin_and_authorizer(self):
        token = "refusals-" + secrets.token_hex(20)
        admin = self.token_file("admin", token)
        authorizer = self.token_file("authorizer", token)
        log = self.expect_refusal(["--authorizer_token_file=" + authorizer], "INVALID_ARGUMENT",
                                  "holds the admin token", admin_token_file=admin)
        self.assertNotIn(token, log)

    def test_fifo_token_file_is_refused_not_waited_on(self):
        fifo = self.path("fifo")
        os.mkfifo(fifo, 0o600)
        self.expect_refusal(["--authorizer_token_file=" + fifo], "FAILED_PRECONDITION",
                            "--authorizer_token_file: " + fifo + " is a FIFO")


if __name__ == "__main__":
    unittest.main()
