"""Crash safety: acknowledged writes survive SIGKILL, and none is half-applied.

Starts the real scopekeeper binary on a data directory, drives acknowledged
writes (CreateKey, GrantScopes, RevokeScopes, RevokeKey from KEY_WRITERS
concurrent clients, each owning the keys of its own organization, and PutPolicy
from one more client), SIGKILLs the server at a random moment, restarts it on
the same data directory (same admin token file) and checks:

* every acknowledged write is there: each key's existence, direct grants,
  revoked state and revision equal the last acknowledged state, or the state
  after that client's single in-flight write, never anything else (a mutation
  is all or nothing); GetPolicy returns the last acknowledged policy or the
  in-flight one;
* revisions: the log of the restarted server reaches at least the largest
  acknowledged revision, and its audit events are contiguous from 1;
* the audit log has an event (same action and key) at every acknowledged
  revision, and the only other new events are those of in-flight writes whose
  effect is visible: a record without its event, or an event without its
  record, fails; each key's revision is the revision of its last audit event;
* decisions agree: Authorize with a revoked key is KEY_REVOKED, with an active
  key and one of its scopes is allowed, and with a scope it lacks is
  INSUFFICIENT_SCOPE.

With SK_CRASH_STORE=etcd (//tests/crash:crash_etcd_test) the server is a
cluster replica on a real etcd member, and every other cycle the etcd member
is SIGKILLed with it and restarted on its data directory; revisions are then
etcd's (increasing, with gaps) instead of contiguous.

A write is acknowledged when its RPC returned OK; one that failed because of
the kill (UNAVAILABLE and the like, after the kill was decided) is in flight:
it may or may not have been applied. Kill moments are random (after a random
number of acknowledged writes plus a random few milliseconds); the choices are
drawn from a seeded RNG whose seed is printed (SK_CRASH_SEED=N replays the same
choices; thread timing still varies). The last line printed is a summary:
cycles, acknowledged writes verified, in-flight writes applied / not applied.

    bazel test //tests/crash:crash_test                      # 3 cycles (suite)
    bazel test //tests/crash:crash_test --test_env=SK_CRASH_CYCLES=20 \\
        --test_output=streamed                               # long form
From a checkout, after `bazel build //server:scopekeeper`:
    SK_CRASH_CYCLES=20 /usr/bin/python3 -m unittest -v tests/crash/crash_test.py
"""

import dataclasses
import os
import random
import secrets
import socket
import subprocess
import sys
import threading
import time
import unittest
from typing import Dict, FrozenSet, List, Optional

import grpc
from google.protobuf import json_format

sys.path.insert(0, os.path.dirname(
    os.environ.get("SK_TESTING_PY")
    or os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                    "python", "sk_testing.py")))
import sk_testing  # noqa: E402  (puts scripts/, for sk_proto, on sys.path)
import sk_proto  # noqa: E402

CYCLES = int(os.environ.get("SK_CRASH_CYCLES") or 3)
# "rocksdb" (the embedded store) or "etcd": the server is then one replica on
# a real etcd member, and every other cycle etcd is SIGKILLed with it.
STORE = os.environ.get("SK_CRASH_STORE") or "rocksdb"
SEED = int(os.environ.get("SK_CRASH_SEED") or random.SystemRandom().randrange(1 << 32))

KEY_WRITERS = 4  # clients doing key writes; one more does PutPolicy
RPC_TIMEOUT_S = 30  # every call; generous, a kill makes calls fail fast
ACK_WAIT_TIMEOUT_S = 120  # longest wait for the acknowledged writes before a kill
KILL_AFTER_ACKS = (1, 120)  # the kill follows this many acknowledged writes...
KILL_JITTER_S = 0.02  # ...plus up to this much time (the fault's timing)
MAX_LIVE_KEYS = 6  # per key writer: beyond, it stops creating keys
SCOPES = ("orders_read", "orders_write", "stock_read", "stock_write", "webhooks_read",
          "order:read")  # declared by rxscale.json and by every policy variant
# How a call cut off by the kill may fail. Any other error is a bug.
KILLED_CALL_CODES = frozenset({grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.UNKNOWN,
                               grpc.StatusCode.CANCELLED, grpc.StatusCode.INTERNAL,
                               grpc.StatusCode.DEADLINE_EXCEEDED})


@dataclasses.dataclass(frozen=True)
class KeyState:
    """What a key write determines: its direct grants and whether it is revoked."""
    scopes: FrozenSet[str]
    revoked: bool


def key_state(pb2, key):
    """The KeyState of a scopekeeper.v1.Key."""
    return KeyState(frozenset(g.scope for g in key.grants), key.status == pb2.REVOKED)


@dataclasses.dataclass
class KnownKey:
    """A key as its writer last saw it acknowledged (or found applied)."""
    key_id: str
    name: str
    secret: Optional[str]  # None for a key whose CreateKey was in flight
    state: KeyState
    revision: int


@dataclasses.dataclass(frozen=True)
class Ack:
    """An acknowledged write: the audit log must hold it at `revision`."""
    revision: int
    action: str
    key_id: str  # "" for PutPolicy


@dataclasses.dataclass
class Write:
    """A write about to be sent; if it is cut off by the kill, the in-flight one."""
    action: str
    request: object
    key_id: str = ""  # the key changed; "" for CreateKey and PutPolicy
    name: str = ""  # CreateKey: the new key's (unique) name
    after: object = None  # KeyState (or Policy) if the write is applied
    sent_at: float = 0.0  # time.monotonic() when the call was made


class WriterCrashed(Exception):
    """Raised in a writer thread when its call was cut off by the kill."""


class Writer:
    """One client: a thread per cycle doing writes until `stop`; state across cycles.

    Sends one write at a time, so at most one write is in flight at the kill.
    """

    def __init__(self, name, rng):
        self.name = name
        self.rng = rng
        self.acks: List[Ack] = []  # this cycle's
        self.in_flight: Optional[Write] = None  # this cycle's, if cut off
        self.failure: Optional[BaseException] = None
        self._seq = 0

    def next_write(self, pb2) -> Write:
        raise NotImplementedError

    def send(self, admin, pb2, md, write):
        """Sends `write`; returns its Ack after updating the model."""
        raise NotImplementedError

    def run(self, admin, pb2, md, stop, on_ack):
        """Thread body: writes until `stop` is set; records the in-flight write."""
        try:
            while not stop.is_set():
                write = self.next_write(pb2)
                write.sent_at = time.monotonic()
                try:
                    ack = self.send(admin, pb2, md, write)
                except grpc.RpcError as e:
                    if stop.is_set() and e.code() in KILLED_CALL_CODES:
                        self.in_flight = write
                        return
                    raise AssertionError("%s: %s failed before the kill: %s %s"
                                         % (self.name, write.action, e.code(), e.details()))
                self.acks.append(ack)
                on_ack()
        except BaseException as e:  # reported by the main thread
            self.failure = e
            on_ack()

    def start_cycle(self):
        self.acks = []
        self.in_flight = None


class KeyWriter(Writer):
    """Creates, grants, revokes scopes of and revokes keys of its own organization."""

    def __init__(self, index, rng):
        super().__init__("key-writer-%d" % index, rng)
        self.organization_id = "org_crash_%d" % index
        self.keys: Dict[str, KnownKey] = {}

    def next_write(self, pb2):
        live = [k for k in self.keys.values() if not k.state.revoked]
        r = self.rng.random()
        if not live or (r < 0.3 and len(live) < MAX_LIVE_KEYS):
            self._seq += 1
            name = "%s-%d-%d" % (self.name, self.rng.randrange(1 << 30), self._seq)
            scopes = sorted(self.rng.sample(SCOPES, self.rng.randint(0, 3)))
            return Write("CreateKey", pb2.CreateKeyRequest(
                organization_id=self.organization_id, name=name, apis=["external-pharmacy"],
                scopes=scopes), name=name, after=KeyState(frozenset(scopes), False))
        key = self.rng.choice(sorted(live, key=lambda k: k.key_id))
        if r < 0.92 and (r < 0.6 or not key.state.scopes):
            scopes = sorted(self.rng.sample(SCOPES, self.rng.randint(1, 2)))
            return Write("GrantScopes", pb2.GrantScopesRequest(key_id=key.key_id, scopes=scopes),
                         key_id=key.key_id,
                         after=KeyState(key.state.scopes | frozenset(scopes), False))
        if r < 0.92:
            held = sorted(key.state.scopes)
            scopes = self.rng.sample(held, self.rng.randint(1, len(held)))
            return Write("RevokeScopes", pb2.RevokeScopesRequest(key_id=key.key_id, scopes=scopes),
                         key_id=key.key_id,
                         after=KeyState(key.state.scopes - frozenset(scopes), False))
        return Write("RevokeKey", pb2.RevokeKeyRequest(key_id=key.key_id, reason="crash test"),
                     key_id=key.key_id, after=KeyState(key.state.scopes, True))

    def send(self, admin, pb2, md, write):
        if write.action == "CreateKey":
            resp = admin.CreateKey(write.request, timeout=RPC_TIMEOUT_S, metadata=md)
            key, revision = resp.key, resp.revision
            self.keys[key.key_id] = KnownKey(key.key_id, write.name, resp.secret, write.after, 0)
        else:
            key = getattr(admin, write.action)(write.request, timeout=RPC_TIMEOUT_S, metadata=md)
            revision = key.revision
        if key_state(pb2, key) != write.after or key.revision != revision:
            raise AssertionError("%s: %s answered %s at revision %d, want %s at %d"
                                 % (self.name, write.action, key_state(pb2, key), key.revision,
                                    write.after, revision))
        known = self.keys[key.key_id]
        known.state, known.revision = write.after, revision
        return Ack(revision, write.action, key.key_id)


class PolicyWriter(Writer):
    """Puts variants of the starting policy, each with its own description and scope."""

    def __init__(self, rng, policy):
        super().__init__("policy-writer", rng)
        self.base = policy
        self.policy = policy  # last acknowledged (or found applied)

    def next_write(self, pb2):
        self._seq += 1
        variant = pb2.Policy()
        variant.CopyFrom(self.base)
        tag = "crash-test variant %d.%d" % (self._seq, self.rng.randrange(1 << 30))
        variant.scopes[0].description += " (%s)" % tag
        variant.scopes.add(name="crash_variant_%d" % self._seq, description=tag)
        return Write("PutPolicy", pb2.PutPolicyRequest(policy=variant), after=variant)

    def send(self, admin, pb2, md, write):
        resp = admin.PutPolicy(write.request, timeout=RPC_TIMEOUT_S, metadata=md)
        self.policy = write.after
        return Ack(resp.revision, "PutPolicy", "")


@dataclasses.dataclass
class Totals:
    cycles: int = 0
    acked_writes: int = 0
    in_flight_applied: int = 0
    in_flight_not_applied: int = 0
    sent_after_kill: int = 0  # of the not applied: sent once the server was dead
    keys_checked: int = 0
    decisions_checked: int = 0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class EtcdMember:
    """One etcd member (/usr/bin/etcd) on free loopback ports; its data survives kill()."""

    def __init__(self, directory):
        self.data_dir = os.path.join(directory, "etcd-data")
        self.log = os.path.join(directory, "etcd.log")
        self.client_port, self.peer_port = free_port(), free_port()
        self.endpoint = "127.0.0.1:%d" % self.client_port
        self.proc = None

    def start(self):
        peer = "http://127.0.0.1:%d" % self.peer_port
        cmd = sk_testing._die_with_parent_prefix() + [
            "/usr/bin/etcd", "--name=crash", "--data-dir=" + self.data_dir,
            "--listen-client-urls=http://" + self.endpoint,
            "--advertise-client-urls=http://" + self.endpoint,
            "--listen-peer-urls=" + peer, "--initial-advertise-peer-urls=" + peer,
            "--initial-cluster=crash=" + peer, "--log-level=warn", "--logger=zap"]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log,
                                         stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # polling a process, bounded
            health = subprocess.run(
                ["/usr/bin/etcdctl", "--endpoints=" + self.endpoint, "--command-timeout=2s",
                 "endpoint", "health"], env=dict(os.environ, ETCDCTL_API="3"),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if health.returncode == 0:
                return
            if self.proc.poll() is not None:
                raise AssertionError("etcd exited: see " + self.log)
            time.sleep(0.05)
        raise AssertionError("etcd not healthy within 60 s")

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


class CrashTest(unittest.TestCase):

    def setUp(self):
        tmp = sk_testing.test_tmpdir(self.addCleanup)
        self.stubs = sk_testing.load_stubs(tmp)
        self.pb2 = self.stubs.pb2
        sk_testing.require_server_binary()
        self.data_dir = os.path.join(tmp, "crash-data")
        self.token_file = os.path.join(tmp, "crash-admin-token")
        token = "crash-" + secrets.token_hex(16)
        with open(os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                  "w") as f:
            f.write(token + "\n")
        self.md = sk_proto.admin_metadata(token)
        self.server = None
        self.channels = []
        self.killed_at = float("inf")  # time.monotonic() of the last kill
        self.etcd = None
        if STORE == "etcd":
            self.etcd = EtcdMember(tmp)
            self.etcd.start()
            self.addCleanup(self.etcd.kill)
        self.addCleanup(self._stop_server)

    def _stop_server(self):
        for channel in self.channels:
            channel.close()
        self.channels = []
        if self.server is not None:
            self.server.terminate(timeout=5)
            self.server = None

    def start_server(self, policy_file=None):
        """Starts the server on the data dir; returns its address."""
        extra = []
        if self.etcd is not None:
            extra = ["--etcd_endpoints=" + self.etcd.endpoint, "--etcd_prefix=/crash/"]
        self.server = sk_testing.ServerProcess(self.data_dir, admin_token_file=self.token_file,
                                               policy_file=policy_file, extra_args=extra)
        return "127.0.0.1:%d" % self.server.wait_for_port()

    def channel(self, address):
        channel = sk_proto.channel(address)
        self.channels.append(channel)
        return channel

    def fail_with_log(self, message):
        self.fail("%s (seed %d)\nserver output:\n%s"
                  % (message, SEED, self.server.log_tail() if self.server else "(none)"))

    # The test.

    def test_acknowledged_writes_survive_sigkill(self):
        print("crash test (%s store): %d cycles, seed %d (SK_CRASH_SEED=%d to replay)"
              % (STORE, CYCLES, SEED, SEED), flush=True)
        self.assertGreaterEqual(CYCLES, 1)
        rng = random.Random(SEED)
        # The first start applies the example policy; restarts keep the stored one.
        address = self.start_server(policy_file=sk_testing.POLICY_FILE)
        admin = self.stubs.pb2_grpc.AdminStub(self.channel(address))
        policy = admin.GetPolicy(self.pb2.GetPolicyRequest(), timeout=RPC_TIMEOUT_S,
                                 metadata=self.md)
        with open(sk_testing.POLICY_FILE, encoding="utf-8") as f:
            self.assertEqual(policy, json_format.Parse(f.read(), self.pb2.Policy()))
        verified_revision = self.check_audit_log(admin, [])[0]
        key_writers = [KeyWriter(i, random.Random("%d/%d" % (SEED, i)))
                       for i in range(KEY_WRITERS)]
        policy_writer = PolicyWriter(random.Random("%d/policy" % SEED), policy)
        writers = key_writers + [policy_writer]
        totals = Totals()
        earlier_acks = []  # acknowledged in earlier cycles: checked again after each restart

        for cycle in range(1, CYCLES + 1):
            kill_after = rng.randint(*KILL_AFTER_ACKS)
            jitter = rng.uniform(0, KILL_JITTER_S)
            # etcd: every other cycle the etcd member dies with the replica.
            kill_etcd = self.etcd is not None and cycle % 2 == 1
            self.run_until_killed(address, writers, kill_after, jitter, kill_etcd)
            if kill_etcd:
                self.etcd.start()
            address = self.start_server()
            admin = self.stubs.pb2_grpc.AdminStub(self.channel(address))
            authorizer = self.stubs.pb2_grpc.AuthorizerStub(self.channel(address))
            applied, not_applied, verified_revision = self.verify(
                admin, authorizer, key_writers, policy_writer, verified_revision, earlier_acks,
                totals)
            acked = sum(len(w.acks) for w in writers)
            earlier_acks += [a for w in writers for a in w.acks]
            totals.cycles += 1
            totals.acked_writes += acked
            totals.in_flight_applied += applied
            totals.in_flight_not_applied += not_applied
            late = sum(1 for w in writers
                       if w.in_flight is not None and w.in_flight.sent_at > self.killed_at)
            totals.sent_after_kill += late
            print("cycle %d: killed after %d acknowledged writes (+%.1f ms); restarted at "
                  "revision %d; in flight: %d applied, %d not applied (%d of them sent after "
                  "the kill)" % (cycle, acked, jitter * 1000, verified_revision, applied,
                                 not_applied, late),
                  flush=True)

        rc = self.server.terminate(timeout=20)
        self.server = None
        self.assertEqual(rc, 0, "after SIGTERM the server exited with %s" % rc)
        print("crash test summary: %d cycles, %d acknowledged writes verified, in-flight writes "
              "%d applied / %d not applied (%d of them sent after the kill); %d key states and %d "
              "decisions checked; seed %d"
              % (totals.cycles, totals.acked_writes, totals.in_flight_applied,
                 totals.in_flight_not_applied, totals.sent_after_kill, totals.keys_checked,
                 totals.decisions_checked, SEED), flush=True)

    def run_until_killed(self, address, writers, kill_after, jitter, kill_etcd=False):
        """Runs every writer until `kill_after` acks (+ `jitter` s), then SIGKILLs the server
        (and the etcd member, with `kill_etcd`)."""
        stop = threading.Event()
        acked = threading.Condition()
        threads = []

        def notify():
            with acked:
                acked.notify_all()

        for writer in writers:
            writer.start_cycle()
            admin = self.stubs.pb2_grpc.AdminStub(self.channel(address))
            threads.append(threading.Thread(
                target=writer.run, name=writer.name,
                args=(admin, self.pb2, self.md, stop, notify)))
        for t in threads:
            t.start()
        with acked:
            reached = acked.wait_for(
                lambda: sum(len(w.acks) for w in writers) >= kill_after
                or any(w.failure for w in writers), timeout=ACK_WAIT_TIMEOUT_S)
        time.sleep(jitter)  # the fault's timing, not synchronisation
        stop.set()
        if kill_etcd:
            self.etcd.kill()
        self.server.kill()
        self.killed_at = time.monotonic()  # a call made later cannot be applied
        for t in threads:
            t.join(timeout=2 * RPC_TIMEOUT_S)  # every call has a deadline
            if t.is_alive():
                self.fail_with_log("%s still running %d s after the kill"
                                   % (t.name, 2 * RPC_TIMEOUT_S))
        for channel in self.channels:
            channel.close()
        self.channels = []
        for w in writers:
            if w.failure is not None:
                self.fail_with_log("%s: %s" % (w.name, w.failure))
        if not reached:
            self.fail_with_log("fewer than %d writes acknowledged within %d s"
                               % (kill_after, ACK_WAIT_TIMEOUT_S))

    def check_audit_log(self, admin, acks):
        """Pages through the whole audit log; checks it is contiguous from revision 1
        (etcd: increasing; its revisions have gaps) and holds every ack. Returns
        (last revision, {revision: event})."""
        events = {}
        after = 0
        while True:
            page = admin.ListAuditEvents(
                self.pb2.ListAuditEventsRequest(after_revision=after, page_size=1000),
                timeout=RPC_TIMEOUT_S, metadata=self.md).events
            if not page:
                break
            for event in page:
                if event.revision != after + 1 and (self.etcd is None
                                                    or event.revision <= after):
                    self.fail_with_log("audit log: revision %d follows %d" % (event.revision, after))
                events[event.revision] = event
                after = event.revision
        for ack in acks:
            event = events.get(ack.revision)
            if event is None:
                self.fail_with_log("acknowledged %s of %r at revision %d: no audit event "
                                   "(log ends at %d)" % (ack.action, ack.key_id, ack.revision,
                                                         after))
            if (event.action, event.key_id) != (ack.action, ack.key_id):
                self.fail_with_log("acknowledged %s of %r at revision %d: the audit event there "
                                   "is %s of %r" % (ack.action, ack.key_id, ack.revision,
                                                    event.action, event.key_id))
        return after, events

    def verify(self, admin, authorizer, key_writers, policy_writer, verified_revision,
               earlier_acks, totals):
        """Checks the restarted server against what was acknowledged; folds the in-flight
        writes found applied into the writers' models.

        Returns (in-flight applied, in-flight not applied, last revision).
        """
        pb2 = self.pb2
        writers = key_writers + [policy_writer]
        acks = [a for w in writers for a in w.acks]
        revision, events = self.check_audit_log(admin, earlier_acks + acks)
        max_acked = max([a.revision for a in acks], default=verified_revision)
        if revision < max_acked:
            self.fail_with_log("revision went back: %d after restart, %d acknowledged"
                               % (revision, max_acked))
        # Events of this cycle that no ack explains: in-flight writes that were
        # applied, each accounted for below.
        acked_revisions = {a.revision for a in acks}
        unexplained = {r: e for r, e in events.items()
                       if verified_revision < r <= revision and r not in acked_revisions}
        applied = not_applied = 0

        def account(write, key_id, at_revision):
            action = write.action
            if write.sent_at > self.killed_at:
                self.fail_with_log("%s of %r sent after the server was killed is applied"
                                   % (action, key_id))
            event = unexplained.pop(at_revision, None)
            if event is None or (event.action, event.key_id) != (action, key_id):
                self.fail_with_log("in-flight %s of %r is applied (revision %d) but the audit "
                                   "log has %s there" % (action, key_id, at_revision,
                                                         event or "no unaccounted event"))

        for writer in key_writers:
            write = writer.in_flight
            found = None  # (key_id, revision) of the in-flight write, if applied
            for known in sorted(writer.keys.values(), key=lambda k: k.key_id):
                key = admin.GetKey(pb2.GetKeyRequest(key_id=known.key_id),
                                   timeout=RPC_TIMEOUT_S, metadata=self.md)
                state = key_state(pb2, key)
                totals.keys_checked += 1
                if (state, key.revision) == (known.state, known.revision):
                    continue
                if (write is not None and write.key_id == known.key_id
                        and state == write.after and key.revision > known.revision):
                    found = (known.key_id, key.revision)
                    known.state, known.revision = state, key.revision
                    continue
                self.fail_with_log(
                    "%s: key %s is %s at revision %d; acknowledged: %s at %d; in flight: %s"
                    % (writer.name, known.key_id, state, key.revision, known.state,
                       known.revision, write and (write.action, write.key_id, write.after)))
            listed = self.list_keys(admin, writer.organization_id)
            extra = {k: v for k, v in listed.items() if k not in writer.keys}
            if write is not None and write.action == "CreateKey" and extra:
                key = next(iter(extra.values()))
                if (len(extra) == 1 and key.name == write.name
                        and key_state(pb2, key) == write.after):
                    writer.keys[key.key_id] = KnownKey(key.key_id, key.name, None,
                                                       write.after, key.revision)
                    found = (key.key_id, key.revision)
                    extra = {}
            if extra:
                self.fail_with_log("%s: keys never acknowledged: %s (in flight: %s)"
                                   % (writer.name, sorted(extra), write and write.action))
            if found is not None:
                account(write, found[0], found[1])
                applied += 1
            elif write is not None:
                not_applied += 1

        write = policy_writer.in_flight
        policy = admin.GetPolicy(pb2.GetPolicyRequest(), timeout=RPC_TIMEOUT_S, metadata=self.md)
        if policy != policy_writer.policy:
            if write is None or policy != write.after:
                self.fail_with_log("GetPolicy returns neither the acknowledged policy nor the "
                                   "in-flight one (first scope: %s)" % policy.scopes[0])
            policy_writer.policy = policy
            at = [r for r, e in unexplained.items() if e.action == "PutPolicy"]
            if len(at) != 1:
                self.fail_with_log("in-flight PutPolicy is applied, but the audit log has %d "
                                   "unaccounted PutPolicy events" % len(at))
            account(write, "", at[0])
            applied += 1
        elif write is not None:
            not_applied += 1

        if unexplained:
            self.fail_with_log("audit events of writes that are neither acknowledged nor "
                               "applied: %s" % sorted((r, e.action, e.key_id)
                                                      for r, e in unexplained.items()))
        self.check_key_revisions_match_audit(key_writers, events)
        self.check_decisions(authorizer, key_writers, max_acked, totals)
        return applied, not_applied, revision

    def list_keys(self, admin, organization_id):
        """Every key of the organization, revoked included, by key_id."""
        keys, token = {}, ""
        while True:
            resp = admin.ListKeys(
                self.pb2.ListKeysRequest(organization_id=organization_id, page_size=1000,
                                         page_token=token, include_revoked=True),
                timeout=RPC_TIMEOUT_S, metadata=self.md)
            keys.update((k.key_id, k) for k in resp.keys)
            token = resp.next_page_token
            if not token:
                return keys

    def check_key_revisions_match_audit(self, key_writers, events):
        """Each key's revision is that of the last audit event naming it."""
        last_event = {}
        for revision in sorted(events):
            if events[revision].key_id:
                last_event[events[revision].key_id] = revision
        for writer in key_writers:
            for known in writer.keys.values():
                if last_event.get(known.key_id) != known.revision:
                    self.fail_with_log("key %s is at revision %d, its last audit event at %s"
                                       % (known.key_id, known.revision,
                                          last_event.get(known.key_id)))

    def check_decisions(self, authorizer, key_writers, min_revision, totals):
        """Authorize agrees with the keys' states (for keys whose secret we hold)."""
        pb2 = self.pb2
        for writer in key_writers:
            for known in writer.keys.values():
                if known.secret is None:
                    continue
                checks = []  # (scope, want_reason)
                if known.state.revoked:
                    checks.append((SCOPES[0], pb2.KEY_REVOKED))
                else:
                    checks += [(s, pb2.ALLOWED) for s in sorted(known.state.scopes)[:1]]
                    lacking = sorted(set(SCOPES) - known.state.scopes)
                    checks += [(s, pb2.INSUFFICIENT_SCOPE) for s in lacking[:1]]
                for scope, want in checks:
                    resp = authorizer.Authorize(
                        pb2.AuthorizeRequest(api_key=known.secret,
                                             requirement=pb2.Requirement(all_of=[scope])),
                        timeout=RPC_TIMEOUT_S)
                    totals.decisions_checked += 1
                    if resp.reason != want or resp.allowed != (want == pb2.ALLOWED):
                        self.fail_with_log(
                            "Authorize(%s, all_of=[%s]) for %s: %s, want %s"
                            % (known.key_id, scope, known.state, pb2.Reason.Name(resp.reason),
                               pb2.Reason.Name(want)))
                    if resp.revision < min_revision:
                        self.fail_with_log("Authorize at revision %d, below acknowledged %d"
                                           % (resp.revision, min_revision))


if __name__ == "__main__":
    unittest.main()
