// Scopekeeper replicas (in-process servers, over gRPC) on a real 3-member
// etcd cluster: read-your-writes across replicas, the revocation bound,
// concurrent writes, losing one etcd member under load, losing quorum
// (fail closed, NOT_SERVING, recovery without restarting replicas),
// falling behind etcd's compaction, and backup/restore.
#include <httplib.h>
#include <sys/stat.h>

#include <atomic>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cluster/cluster_testing.h"

namespace scopekeeper::testing {
namespace {

using ::testing::HasSubstr;
using Serving = grpc::health::v1::HealthCheckResponse;

inline const absl::Status& StatusOf(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}
#define ASSERT_OK(expr)                                              \
  do {                                                               \
    const auto& s_ = (expr);                                         \
    ASSERT_TRUE(StatusOf(s_).ok()) << #expr << ": " << StatusOf(s_); \
  } while (false)

constexpr char kAuthorizer[] = "scopekeeper.v1.Authorizer";

class ClusterTest : public ClusterFixture {
 protected:
  void SetUp() override { StartEtcd(3); }

  // LeaderIndex() is the member that leads, or -1.
  int LeaderIndex() {
    absl::StatusOr<std::unique_ptr<storage::etcd::EtcdClient>> client =
        etcd_->Client();
    if (!client.ok()) return -1;
    for (int i = 0; i < etcd_->size(); ++i) {
      if (!etcd_->running(i)) continue;
      absl::StatusOr<storage::etcd::MemberStatus> status =
          (*client)->Status(etcd_->endpoint(i));
      if (status.ok() && status->leader == status->member_id) return i;
    }
    return -1;
  }
};

TEST_F(ClusterTest, WritesOnAnyReplicaAreReadOnEveryReplica) {
  TestServer* a = StartReplica();
  TestServer* b = StartReplica();
  ASSERT_TRUE(a != nullptr && b != nullptr);
  // CreateKey on A, Authorize on B with min_revision: allowed at once.
  absl::StatusOr<v1::CreateKeyResponse> key = CreateKey(*a, {"s0"});
  ASSERT_OK(key);
  absl::StatusOr<v1::AuthorizeResponse> on_b =
      Check(*b, key->secret(), key->revision());
  ASSERT_OK(on_b);
  EXPECT_TRUE(on_b->allowed());
  EXPECT_GE(on_b->revision(), key->revision());
  // A revision no replica wrote: B reads the cluster's head (it may have
  // been written a moment ago elsewhere) and answers OUT_OF_RANGE, well
  // before the call's deadline.
  const absl::Time asked = absl::Now();
  absl::StatusOr<v1::AuthorizeResponse> bogus =
      Check(*b, key->secret(), uint64_t{1} << 40, absl::Seconds(20));
  EXPECT_EQ(bogus.status().code(), absl::StatusCode::kOutOfRange)
      << bogus.status();
  EXPECT_THAT(
      bogus.status().message(),
      ::testing::HasSubstr("beyond the latest revision of the cluster"));
  EXPECT_LT(absl::Now() - asked, absl::Seconds(10));
  // RevokeKey on B, Authorize on A with min_revision: denied at once.
  absl::StatusOr<v1::Key> revoked = RevokeKey(*b, key->key().key_id());
  ASSERT_OK(revoked);
  absl::StatusOr<v1::AuthorizeResponse> on_a =
      Check(*a, key->secret(), revoked->revision());
  ASSERT_OK(on_a);
  EXPECT_EQ(on_a->reason(), v1::KEY_REVOKED);
  // Revisions mean the same on every replica: both report the same key.
  absl::StatusOr<v1::Key> from_a = GetKey(*a, key->key().key_id());
  absl::StatusOr<v1::Key> from_b = GetKey(*b, key->key().key_id());
  ASSERT_OK(from_a);
  ASSERT_OK(from_b);
  EXPECT_EQ(from_a->revision(), revoked->revision());
  EXPECT_EQ(from_b->revision(), revoked->revision());
  EXPECT_EQ(Health(*a, kAuthorizer), Serving::SERVING);
  EXPECT_EQ(Health(*b, ""), Serving::SERVING);
  // Watch streams the same changes, at the same revisions, from either.
  for (TestServer* on : {a, b}) {
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + token_);
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    v1::WatchRequest watch;
    watch.set_from_revision(key->revision() - 1);
    watch.set_end_when_caught_up(true);
    std::unique_ptr<grpc::ClientReader<v1::WatchEvent>> reader =
        on->admin->Watch(&context, watch);
    std::vector<std::pair<uint64_t, std::string>> seen;
    v1::WatchEvent event;
    while (reader->Read(&event)) {
      seen.emplace_back(event.revision(), event.event().action());
    }
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_THAT(seen, ::testing::ElementsAre(
                          std::make_pair(key->revision(), "CreateKey"),
                          std::make_pair(revoked->revision(), "RevokeKey")));
  }
}

TEST_F(ClusterTest, RevocationReachesTheOtherReplicaWithinMaxStaleness) {
  TestServer* a = StartReplica();
  TestServer* b = StartReplica();
  ASSERT_TRUE(a != nullptr && b != nullptr);
  const absl::Duration bound =
      ReplicaOptions().cluster.max_staleness;  // published bound
  for (int i = 0; i < 20; ++i) {
    absl::StatusOr<v1::CreateKeyResponse> key = CreateKey(*a, {"s0"});
    ASSERT_OK(key);
    ASSERT_OK(Check(*b, key->secret(), key->revision()));
    ASSERT_OK(RevokeKey(*a, key->key().key_id()));
    const absl::Time returned = absl::Now();
    // Without min_revision: B denies within the bound, always.
    while (true) {
      absl::StatusOr<v1::AuthorizeResponse> r = Check(*b, key->secret());
      ASSERT_OK(r);
      if (r->reason() == v1::KEY_REVOKED) break;
      ASSERT_TRUE(r->allowed());
      ASSERT_LT(absl::Now() - returned, bound) << "revocation " << i;
    }
  }
}

TEST_F(ClusterTest, ConcurrentWritesOfOneKeyOnTwoReplicasKeepBoth) {
  TestServer* a = StartReplica();
  TestServer* b = StartReplica();
  ASSERT_TRUE(a != nullptr && b != nullptr);
  absl::StatusOr<v1::CreateKeyResponse> key = CreateKey(*a, {});
  ASSERT_OK(key);
  const std::string id = key->key().key_id();
  auto grant = [&](TestServer* on, int first) {
    for (int i = first; i < first + 8; ++i) {
      EXPECT_TRUE(GrantScopes(*on, id, {absl::StrCat("s", i)}).ok());
    }
  };
  std::thread ta(grant, a, 0);
  std::thread tb(grant, b, 8);
  ta.join();
  tb.join();
  absl::StatusOr<v1::Key> stored = GetKey(*b, id);
  ASSERT_OK(stored);
  EXPECT_EQ(stored->grants_size(), 16);
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer " + token_);
  v1::ListAuditEventsRequest request;
  request.set_key_id(id);
  request.set_page_size(100);
  v1::ListAuditEventsResponse events;
  ASSERT_TRUE(a->admin->ListAuditEvents(&context, request, &events).ok());
  int grants = 0;
  for (const v1::AuditEvent& e : events.events()) {
    grants += e.action() == "GrantScopes" ? 1 : 0;
  }
  EXPECT_EQ(grants, 16);
}

// SIGKILL the etcd leader while both replicas decide and take writes: no
// wrong decision, no failed decision, no acknowledged write lost, and
// writes go on.
TEST_F(ClusterTest, LosingAnEtcdMemberUnderLoadLosesNothing) {
  TestServer* a = StartReplica();
  TestServer* b = StartReplica();
  ASSERT_TRUE(a != nullptr && b != nullptr);
  TestServer* replicas[] = {a, b};

  // Keys whose state the deciders know: active ones, and ones revoked
  // (acknowledged) before deciding starts.
  std::vector<v1::CreateKeyResponse> active, revoked;
  for (int i = 0; i < 10; ++i) {
    absl::StatusOr<v1::CreateKeyResponse> k = CreateKey(*a, {"s0"});
    ASSERT_OK(k);
    active.push_back(*k);
    k = CreateKey(*b, {"s0"});
    ASSERT_OK(k);
    absl::StatusOr<v1::Key> r = RevokeKey(*a, k->key().key_id());
    ASSERT_OK(r);
    k->set_revision(r->revision());
    revoked.push_back(*k);
  }
  const uint64_t known = revoked.back().revision();

  std::atomic<bool> stop{false};
  std::atomic<int> decisions{0}, wrong{0}, failed_decisions{0};
  std::vector<std::thread> deciders;
  for (int t = 0; t < 4; ++t) {
    deciders.emplace_back([&, t] {
      TestServer* on = replicas[t % 2];
      for (int i = 0; !stop.load(); ++i) {
        const bool want_allowed = i % 2 == 0;
        const auto& key = want_allowed ? active[i % active.size()]
                                       : revoked[i % revoked.size()];
        absl::StatusOr<v1::AuthorizeResponse> r =
            Check(*on, key.secret(), known, absl::Seconds(5));
        ++decisions;
        if (!r.ok()) {
          ++failed_decisions;
          ADD_FAILURE() << r.status();
        } else if (r->allowed() != want_allowed) {
          ++wrong;
        }
      }
    });
  }
  // Writers: create keys on alternating replicas; remember what was
  // acknowledged.
  Mutex mu;
  // Under mu until the writers are joined.
  std::vector<v1::CreateKeyResponse> acknowledged;
  std::atomic<int> writes_after_kill{0}, failed_writes{0};
  std::atomic<bool> killed{false};
  std::vector<std::thread> writers;
  for (int t = 0; t < 2; ++t) {
    writers.emplace_back([&, t] {
      for (int i = 0; !stop.load(); ++i) {
        absl::StatusOr<v1::CreateKeyResponse> k =
            CreateKey(*replicas[(t + i) % 2], {"s0"});
        if (!k.ok()) {
          // Only while the leader is re-elected; outcome unknown.
          EXPECT_EQ(k.status().code(), absl::StatusCode::kUnavailable)
              << k.status();
          ++failed_writes;
          continue;
        }
        if (killed.load()) ++writes_after_kill;
        MutexLock lock(&mu);
        acknowledged.push_back(*k);
      }
    });
  }
  ASSERT_TRUE(
      Eventually([&] { return decisions.load() > 200; }, absl::Seconds(30)));
  const int leader = LeaderIndex();
  ASSERT_GE(leader, 0);
  etcd_->Kill(leader);
  killed = true;
  // Writes continue on the remaining two members.
  EXPECT_TRUE(Eventually([&] { return writes_after_kill.load() >= 20; },
                         absl::Seconds(30)));
  const int decided_after = decisions.load();
  EXPECT_TRUE(Eventually([&] { return decisions.load() > decided_after + 200; },
                         absl::Seconds(30)));
  stop = true;
  for (std::thread& t : deciders) t.join();
  for (std::thread& t : writers) t.join();
  EXPECT_EQ(wrong.load(), 0);
  EXPECT_EQ(failed_decisions.load(), 0);
  EXPECT_LE(failed_writes.load(), 10);
  // Every acknowledged write is on every replica.
  for (const v1::CreateKeyResponse& k : acknowledged) {
    for (TestServer* on : replicas) {
      absl::StatusOr<v1::AuthorizeResponse> r =
          Check(*on, k.secret(), k.revision());
      ASSERT_OK(r);
      EXPECT_TRUE(r->allowed()) << k.key().key_id();
    }
  }
  RecordProperty("acknowledged_writes", static_cast<int>(acknowledged.size()));
  RecordProperty("decisions", decisions.load());
}

// Kill two of three members: the replicas cannot confirm they are current.
// Writes fail fast; decisions go on until --max_staleness, then fail closed
// and health says NOT_SERVING; restarting the members recovers everything
// without restarting the replicas.
TEST_F(ClusterTest, QuorumLossFailsClosedAfterMaxStalenessAndRecovers) {
  ServerOptions options = ReplicaOptions();
  options.metrics_listen = "127.0.0.1:0";
  TestServer* a = StartReplica(options);
  TestServer* b = StartReplica(ReplicaOptions());
  ASSERT_TRUE(a != nullptr && b != nullptr);
  const absl::Duration max_staleness = options.cluster.max_staleness;
  absl::StatusOr<v1::CreateKeyResponse> key = CreateKey(*a, {"s0"});
  ASSERT_OK(key);
  ASSERT_OK(Check(*b, key->secret(), key->revision()));

  etcd_->Kill(0);
  etcd_->Kill(1);
  const absl::Time lost = absl::Now();
  // Decisions continue for a while from the state applied...
  absl::StatusOr<v1::AuthorizeResponse> r = Check(*a, key->secret());
  ASSERT_OK(r);
  EXPECT_TRUE(r->allowed());
  // ... writes fail fast ...
  const absl::Time write_start = absl::Now();
  absl::StatusOr<v1::CreateKeyResponse> write = CreateKey(*b, {"s0"});
  EXPECT_EQ(write.status().code(), absl::StatusCode::kUnavailable)
      << write.status();
  EXPECT_LT(absl::Now() - write_start, absl::Seconds(3));
  // ... and after --max_staleness every decision fails closed.
  for (TestServer* on : {a, b}) {
    ASSERT_TRUE(Eventually(
        [&] {
          return Check(*on, key->secret()).status().code() ==
                 absl::StatusCode::kUnavailable;
        },
        max_staleness + absl::Seconds(3)));
  }
  EXPECT_GE(absl::Now() - lost, max_staleness - absl::Seconds(1));
  absl::StatusOr<v1::AuthorizeResponse> closed = Check(*b, key->secret());
  EXPECT_THAT(closed.status().message(), HasSubstr("max_staleness"));
  for (TestServer* on : {a, b}) {
    EXPECT_TRUE(Eventually(
        [&] { return Health(*on, kAuthorizer) == Serving::NOT_SERVING; },
        absl::Seconds(5)));
    EXPECT_EQ(Health(*on, ""), Serving::NOT_SERVING);
  }
  httplib::Client http("127.0.0.1", a->server->metrics_port());
  httplib::Result metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->body, HasSubstr("scopekeeper_replica_serving 0\n"));
  EXPECT_THAT(metrics->body, HasSubstr("scopekeeper_replica_lag_seconds "));

  // Back: everything recovers by itself.
  ASSERT_OK(etcd_->Restart(0, /*wait_ready=*/false));
  ASSERT_OK(etcd_->Restart(1, /*wait_ready=*/false));
  ASSERT_OK(etcd_->WaitReady(0, absl::Seconds(60)));
  for (TestServer* on : {a, b}) {
    EXPECT_TRUE(Eventually([&] { return Check(*on, key->secret()).ok(); },
                           absl::Seconds(30)));
    EXPECT_TRUE(
        Eventually([&] { return Health(*on, kAuthorizer) == Serving::SERVING; },
                   absl::Seconds(10)));
  }
  absl::StatusOr<v1::CreateKeyResponse> after;
  ASSERT_TRUE(Eventually(
      [&] {
        after = CreateKey(*b, {"s0"});
        return after.ok();
      },
      absl::Seconds(30)));
  absl::StatusOr<v1::AuthorizeResponse> on_a =
      Check(*a, after->secret(), after->revision());
  ASSERT_OK(on_a);
  EXPECT_TRUE(on_a->allowed());
}

// A replica cut off long enough for etcd to compact the revisions it still
// had to apply loads a fresh snapshot when it is back: secrets rotated away
// and keys revoked meanwhile are denied, keys created meanwhile allowed.
TEST_F(ClusterTest, ReplicaBehindCompactionReloadsASnapshot) {
  TestServer* a =
      StartReplica(ReplicaOptions({etcd_->endpoint(1), etcd_->endpoint(2)}));
  ServerOptions only_member_0 = ReplicaOptions({etcd_->endpoint(0)});
  only_member_0.metrics_listen = "127.0.0.1:0";
  TestServer* b = StartReplica(only_member_0);
  ASSERT_TRUE(a != nullptr && b != nullptr);
  absl::StatusOr<v1::CreateKeyResponse> rotated = CreateKey(*a, {"s0"});
  absl::StatusOr<v1::CreateKeyResponse> to_revoke = CreateKey(*a, {"s0"});
  ASSERT_OK(rotated);
  ASSERT_OK(to_revoke);
  ASSERT_OK(Check(*b, to_revoke->secret(), to_revoke->revision()));

  etcd_->Kill(0);
  // If member 0 led, the other two elect a leader first.
  ASSERT_TRUE(Eventually([&] { return CreateKey(*a, {"s0"}).ok(); },
                         absl::Seconds(30)));
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer " + token_);
  v1::RotateKeyRequest rotate;
  rotate.set_key_id(rotated->key().key_id());
  v1::CreateKeyResponse new_secret;
  ASSERT_TRUE(a->admin->RotateKey(&context, rotate, &new_secret).ok());
  ASSERT_OK(RevokeKey(*a, to_revoke->key().key_id()));
  absl::StatusOr<v1::CreateKeyResponse> created = CreateKey(*a, {"s0"});
  ASSERT_OK(created);
  absl::StatusOr<std::unique_ptr<storage::etcd::EtcdClient>> client =
      etcd_->Client({}, {etcd_->endpoint(1), etcd_->endpoint(2)});
  ASSERT_OK(client);
  ASSERT_TRUE((*client)
                  ->Compact(static_cast<int64_t>(created->revision()),
                            /*physical=*/true)
                  .ok());

  ASSERT_OK(etcd_->Restart(0));
  ASSERT_TRUE(Eventually(
      [&] {
        absl::StatusOr<v1::AuthorizeResponse> r =
            Check(*b, created->secret(), created->revision(), absl::Seconds(1));
        return r.ok() && r->allowed();
      },
      absl::Seconds(30)));
  absl::StatusOr<v1::AuthorizeResponse> r = Check(*b, rotated->secret());
  ASSERT_OK(r);
  EXPECT_EQ(r->reason(), v1::KEY_INVALID);
  r = Check(*b, new_secret.secret());
  ASSERT_OK(r);
  EXPECT_TRUE(r->allowed());
  r = Check(*b, to_revoke->secret());
  ASSERT_OK(r);
  EXPECT_EQ(r->reason(), v1::KEY_REVOKED);
  httplib::Client http("127.0.0.1", b->server->metrics_port());
  httplib::Result metrics = http.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->body,
              HasSubstr("scopekeeper_replica_snapshot_reloads_total 1\n"));
}

// CreateBackup on a replica exports the cluster's state; a replica started
// with --restore_from on an empty prefix serves it.
TEST_F(ClusterTest, BackupOfAClusterRestoresIntoANewPrefix) {
  TestServer* a = StartReplica();
  ASSERT_NE(a, nullptr);
  absl::StatusOr<v1::CreateKeyResponse> kept = CreateKey(*a, {"s0"});
  absl::StatusOr<v1::CreateKeyResponse> revoked = CreateKey(*a, {"s0"});
  ASSERT_OK(kept);
  ASSERT_OK(revoked);
  ASSERT_OK(RevokeKey(*a, revoked->key().key_id()));
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer " + token_);
  v1::CreateBackupRequest backup;
  backup.set_destination(dir_ + "/backup");
  v1::CreateBackupResponse written;
  ASSERT_TRUE(a->admin->CreateBackup(&context, backup, &written).ok());
  EXPECT_GT(written.revision(), revoked->revision());
  absl::StatusOr<v1::CreateKeyResponse> after = CreateKey(*a, {"s0"});
  ASSERT_OK(after);

  ServerOptions options = ReplicaOptions();
  options.cluster.etcd_prefix = "/restored/";
  options.cluster.restore_from = dir_ + "/backup";
  TestServer* restored = StartReplica(options);
  ASSERT_NE(restored, nullptr);
  absl::StatusOr<v1::AuthorizeResponse> r = Check(*restored, kept->secret());
  ASSERT_OK(r);
  EXPECT_TRUE(r->allowed());
  r = Check(*restored, revoked->secret());
  ASSERT_OK(r);
  EXPECT_EQ(r->reason(), v1::KEY_REVOKED);
  r = Check(*restored, after->secret());
  ASSERT_OK(r);
  EXPECT_EQ(r->reason(), v1::KEY_INVALID);  // written after the backup
  // The prefix holds state now: restoring into it again is refused.
  options.data_dir += "_again";
  absl::StatusOr<std::unique_ptr<ScopekeeperServer>> again =
      ScopekeeperServer::Start(options);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kFailedPrecondition)
      << again.status();
}

// A replica talks TLS to etcd with its client certificate (--etcd_ca,
// --etcd_cert, --etcd_key); without the certificate it cannot start.
TEST(ClusterTlsTest, ReplicaUsesTlsAndAClientCertificate) {
  const std::string dir = absl::StrCat(getenv("TEST_TMPDIR"), "/tls");
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  ASSERT_OK(storage::etcd::testing::MakeTestCertificates(dir));
  storage::etcd::testing::EtcdCluster::Options etcd_options;
  etcd_options.tls_dir = dir;
  etcd_options.root = dir;
  absl::StatusOr<std::unique_ptr<storage::etcd::testing::EtcdCluster>> etcd =
      storage::etcd::testing::EtcdCluster::Start(etcd_options);
  ASSERT_OK(etcd);
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.data_dir = dir + "/replica";
  options.cluster.etcd_endpoints = (*etcd)->endpoints();
  options.cluster.etcd_call_timeout = absl::Seconds(2);
  options.cluster.etcd_ca_file = dir + "/ca.pem";
  options.cluster.etcd_cert_file = dir + "/client.pem";
  options.cluster.etcd_key_file = dir + "/client-key.pem";
  absl::StatusOr<std::unique_ptr<ScopekeeperServer>> server =
      ScopekeeperServer::Start(options);
  ASSERT_OK(server);
  (*server)->Shutdown(absl::Seconds(5));
  options.cluster.etcd_cert_file.clear();
  options.cluster.etcd_key_file.clear();
  server = ScopekeeperServer::Start(options);
  EXPECT_FALSE(server.ok());
}

}  // namespace
}  // namespace scopekeeper::testing
