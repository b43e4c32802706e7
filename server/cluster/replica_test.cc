// Two (or three) replicas' cores on one real etcd member: writes from any
// replica, read-your-writes with min_revision, races between replicas
// resolved by guards, secrets and policy changes reaching every replica.
#include "server/cluster/replica.h"

#include <atomic>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/cluster/testing/test_replica.h"
#include "storage/etcd/testing/etcd_cluster.h"

namespace scopekeeper {
namespace {

using ::scopekeeper::testing::TestReplica;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::SizeIs;

#define ASSERT_OK(expr)                                   \
  do {                                                    \
    const auto& s_ = (expr);                              \
    ASSERT_TRUE(s_.ok()) << #expr << ": " << s_.status(); \
  } while (false)

constexpr int kScopes = 24;
constexpr absl::string_view kActor = "test-admin";

v1::Policy TestPolicy(int scopes = kScopes) {
  v1::Policy policy;
  for (int i = 0; i < scopes; ++i) {
    policy.add_scopes()->set_name(absl::StrCat("s", i));
  }
  v1::Api* api = policy.add_apis();
  api->set_name("api");
  api->set_key_prefix("tk");
  v1::Route* route = api->add_routes();
  route->set_method("GET");
  route->set_path("/x");
  route->mutable_requirement()->add_all_of("s0");
  return policy;
}

storage::etcd::testing::EtcdCluster* etcd = nullptr;

class EtcdEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<storage::etcd::testing::EtcdCluster>>
        started = storage::etcd::testing::EtcdCluster::Start({});
    ASSERT_TRUE(started.ok()) << started.status();
    etcd = started->release();
  }
  void TearDown() override {
    delete etcd;
    etcd = nullptr;
  }
};

::testing::Environment* const environment =
    ::testing::AddGlobalTestEnvironment(new EtcdEnvironment);

class ReplicaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_NE(etcd, nullptr);
    options_.etcd_endpoints = etcd->endpoints();
    options_.etcd_prefix = absl::StrCat(
        "/", ::testing::UnitTest::GetInstance()->current_test_info()->name(),
        "/");
    options_.max_staleness = absl::Seconds(5);
    a_ = StartReplica();
    ASSERT_NE(a_, nullptr);
    absl::StatusOr<uint64_t> put =
        a_->registry->PutPolicy(TestPolicy(), kActor);
    ASSERT_OK(put);
    b_ = StartReplica();
    ASSERT_NE(b_, nullptr);
  }

  std::unique_ptr<TestReplica> StartReplica(
      size_t capacity = KeyCache::kUnbounded) {
    absl::StatusOr<std::unique_ptr<TestReplica>> r =
        TestReplica::Start(options_, SystemClock::Get(), capacity);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : nullptr;
  }

  v1::CreateKeyResponse CreateKey(TestReplica& on,
                                  std::vector<std::string> scopes) {
    v1::CreateKeyRequest request;
    request.set_organization_id("org_a");
    request.add_apis("api");
    for (std::string& s : scopes) request.add_scopes(std::move(s));
    absl::StatusOr<v1::CreateKeyResponse> created =
        on.registry->CreateKey(request, kActor);
    EXPECT_TRUE(created.ok()) << created.status();
    return created.ok() ? *created : v1::CreateKeyResponse();
  }

  // Reason() decides `secret` against all_of `scopes` on `on`.
  v1::Reason Reason(TestReplica& on, absl::string_view secret,
                    std::vector<std::string> scopes,
                    uint64_t min_revision = 0) {
    absl::StatusOr<v1::AuthorizeResponse> r =
        on.Check(secret, std::move(scopes), min_revision);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->reason() : v1::REASON_UNSPECIFIED;
  }

  ReplicaOptions options_;
  std::unique_ptr<TestReplica> a_;
  std::unique_ptr<TestReplica> b_;
};

TEST_F(ReplicaTest, KeyCreatedOnOneReplicaIsAllowedOnAnotherWithMinRevision) {
  const v1::CreateKeyResponse key = CreateKey(*a_, {"s0"});
  ASSERT_GT(key.revision(), 0u);
  // Read-your-writes on the writer, at once.
  EXPECT_GE(a_->state.revision(), key.revision());
  EXPECT_EQ(Reason(*a_, key.secret(), {"s0"}), v1::ALLOWED);
  // min_revision makes the other replica wait for it; then it answers at
  // (at least) that revision.
  absl::StatusOr<v1::AuthorizeResponse> on_b =
      b_->Check(key.secret(), {"s0"}, key.revision());
  ASSERT_OK(on_b);
  EXPECT_TRUE(on_b->allowed());
  EXPECT_GE(on_b->revision(), key.revision());
}

TEST_F(ReplicaTest,
       RevocationOnOneReplicaIsDeniedOnAnotherAtOnceWithMinRevision) {
  const v1::CreateKeyResponse key = CreateKey(*a_, {"s0"});
  EXPECT_EQ(Reason(*b_, key.secret(), {"s0"}, key.revision()), v1::ALLOWED);
  v1::RevokeKeyRequest revoke;
  revoke.set_key_id(key.key().key_id());
  absl::StatusOr<v1::Key> revoked = a_->registry->RevokeKey(revoke, kActor);
  ASSERT_OK(revoked);
  EXPECT_EQ(revoked->status(), v1::REVOKED);
  EXPECT_EQ(Reason(*a_, key.secret(), {"s0"}), v1::KEY_REVOKED);
  EXPECT_EQ(Reason(*b_, key.secret(), {"s0"}, revoked->revision()),
            v1::KEY_REVOKED);
  // A third replica started afterwards loads it from the snapshot.
  std::unique_ptr<TestReplica> c = StartReplica();
  ASSERT_NE(c, nullptr);
  EXPECT_EQ(Reason(*c, key.secret(), {"s0"}), v1::KEY_REVOKED);
}

TEST_F(ReplicaTest, RevocationReachesAnotherReplicaWithoutMinRevision) {
  const v1::CreateKeyResponse key = CreateKey(*a_, {"s0"});
  EXPECT_EQ(Reason(*b_, key.secret(), {"s0"}, key.revision()), v1::ALLOWED);
  v1::RevokeKeyRequest revoke;
  revoke.set_key_id(key.key().key_id());
  ASSERT_OK(a_->registry->RevokeKey(revoke, kActor));
  const absl::Time revoked_at = absl::Now();
  // Bounded polling of a real condition: the watch delivers it.
  while (Reason(*b_, key.secret(), {"s0"}) != v1::KEY_REVOKED) {
    ASSERT_LT(absl::Now() - revoked_at, options_.max_staleness)
        << "not denied within --max_staleness";
  }
}

TEST_F(ReplicaTest, RotationOnOneReplicaStopsTheOldSecretOnAnother) {
  const v1::CreateKeyResponse key = CreateKey(*a_, {"s0"});
  EXPECT_EQ(Reason(*b_, key.secret(), {"s0"}, key.revision()), v1::ALLOWED);
  v1::RotateKeyRequest rotate;
  rotate.set_key_id(key.key().key_id());  // no grace period
  absl::StatusOr<v1::CreateKeyResponse> rotated =
      a_->registry->RotateKey(rotate, kActor);
  ASSERT_OK(rotated);
  EXPECT_EQ(Reason(*b_, rotated->secret(), {"s0"}, rotated->revision()),
            v1::ALLOWED);
  EXPECT_EQ(Reason(*b_, key.secret(), {"s0"}), v1::KEY_INVALID);
  EXPECT_FALSE(b_->state.cache().Contains(HashSecret(key.secret())));
}

TEST_F(ReplicaTest, GrantRacingRevokeOnTwoReplicasEndsRevoked) {
  for (int round = 0; round < 10; ++round) {
    const v1::CreateKeyResponse key = CreateKey(*a_, {"s0"});
    const std::string& id = key.key().key_id();
    absl::StatusOr<v1::Key> granted = absl::UnknownError("not run");
    absl::StatusOr<v1::Key> revoked = absl::UnknownError("not run");
    absl::Notification go;
    std::thread grant([&] {
      go.WaitForNotification();
      v1::GrantScopesRequest request;
      request.set_key_id(id);
      request.add_scopes("s1");
      granted = a_->registry->GrantScopes(request, kActor);
    });
    std::thread revoke([&] {
      go.WaitForNotification();
      v1::RevokeKeyRequest request;
      request.set_key_id(id);
      revoked = b_->registry->RevokeKey(request, kActor);
    });
    go.Notify();
    grant.join();
    revoke.join();
    ASSERT_OK(revoked);
    // The grant either came first or was refused on the revoked key: never
    // applied on top of the revocation (which would un-revoke it).
    if (!granted.ok()) {
      EXPECT_EQ(granted.status().code(), absl::StatusCode::kFailedPrecondition)
          << granted.status();
    } else {
      EXPECT_LT(granted->revision(), revoked->revision());
    }
    for (TestReplica* r : {a_.get(), b_.get()}) {
      EXPECT_EQ(Reason(*r, key.secret(), {"s0"}, revoked->revision()),
                v1::KEY_REVOKED);
      v1::GetKeyRequest get;
      get.set_key_id(id);
      absl::StatusOr<v1::Key> stored = r->registry->GetKey(get);
      ASSERT_OK(stored);
      EXPECT_EQ(stored->status(), v1::REVOKED);
    }
  }
}

TEST_F(ReplicaTest, ConcurrentGrantsOfOneKeyOnTwoReplicasLoseNothing) {
  const v1::CreateKeyResponse key = CreateKey(*a_, {});
  const std::string& id = key.key().key_id();
  constexpr int kPerReplica = 10;
  std::atomic<int> failed{0};
  auto grants = [&](TestReplica* on, int first) {
    for (int i = first; i < first + kPerReplica; ++i) {
      v1::GrantScopesRequest request;
      request.set_key_id(id);
      request.add_scopes(absl::StrCat("s", i));
      absl::StatusOr<v1::Key> granted =
          on->registry->GrantScopes(request, kActor);
      if (!granted.ok()) {
        ADD_FAILURE() << granted.status();
        ++failed;
      }
    }
  };
  std::thread on_a(grants, a_.get(), 0);
  std::thread on_b(grants, b_.get(), kPerReplica);
  on_a.join();
  on_b.join();
  ASSERT_EQ(failed.load(), 0);
  v1::GetKeyRequest get;
  get.set_key_id(id);
  absl::StatusOr<v1::Key> stored = a_->registry->GetKey(get);
  ASSERT_OK(stored);
  EXPECT_THAT(stored->grants(), SizeIs(2 * kPerReplica));
  // Every grant has its own audit event, at its own revision.
  v1::ListAuditEventsRequest audit;
  audit.set_key_id(id);
  audit.set_page_size(100);
  absl::StatusOr<v1::ListAuditEventsResponse> events =
      b_->registry->ListAuditEvents(audit);
  ASSERT_OK(events);
  std::set<uint64_t> revisions;
  int grant_events = 0;
  for (const v1::AuditEvent& event : events->events()) {
    revisions.insert(event.revision());
    grant_events += event.action() == "GrantScopes" ? 1 : 0;
  }
  EXPECT_EQ(grant_events, 2 * kPerReplica);
  EXPECT_EQ(revisions.size(), static_cast<size_t>(events->events_size()));
  // Both replicas decide with every scope.
  std::vector<std::string> all;
  for (int i = 0; i < 2 * kPerReplica; ++i) all.push_back(absl::StrCat("s", i));
  EXPECT_EQ(Reason(*b_, key.secret(), all, stored->revision()), v1::ALLOWED);
  EXPECT_EQ(Reason(*a_, key.secret(), all, stored->revision()), v1::ALLOWED);
}

TEST_F(ReplicaTest, ApprovalsOfOneAppOnTwoReplicasMakeOneInstallation) {
  v1::Policy policy = TestPolicy();
  v1::PutAppRequest put;
  put.mutable_app()->set_app_id("app_1");
  put.mutable_app()->add_requested_scopes("s1");
  put.mutable_app()->add_requested_scopes("s2");
  ASSERT_OK(a_->registry->PutApp(put, kActor));
  for (int org = 0; org < 5; ++org) {
    absl::StatusOr<v1::Installation> on_a = absl::UnknownError("not run");
    absl::StatusOr<v1::Installation> on_b = absl::UnknownError("not run");
    absl::Notification go;
    auto approve = [&](TestReplica* r, absl::StatusOr<v1::Installation>* out,
                       const std::string& scope) {
      go.WaitForNotification();
      v1::ApproveInstallationRequest request;
      request.set_organization_id(absl::StrCat("org_", org));
      request.set_app_id("app_1");
      request.add_approved_scopes(scope);
      *out = r->registry->ApproveInstallation(request, kActor);
    };
    std::thread ta(approve, a_.get(), &on_a, "s1");
    std::thread tb(approve, b_.get(), &on_b, "s2");
    go.Notify();
    ta.join();
    tb.join();
    ASSERT_OK(on_a);
    ASSERT_OK(on_b);
    EXPECT_EQ(on_a->installation_id(), on_b->installation_id());
  }
  int installations = 0;
  ASSERT_TRUE(a_->replica->store()
                  ->ForEachInstallation([&](const v1::Installation&) {
                    ++installations;
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(installations, 5);
}

TEST_F(ReplicaTest, OneRequestIdOnTwoReplicasCreatesOneKey) {
  for (int round = 0; round < 5; ++round) {
    v1::CreateKeyRequest request;
    request.set_organization_id("org_a");
    request.add_apis("api");
    request.add_scopes("s0");
    request.set_request_id(absl::StrCat("retried-call-", round));
    absl::StatusOr<v1::CreateKeyResponse> on_a = absl::UnknownError("");
    absl::StatusOr<v1::CreateKeyResponse> on_b = absl::UnknownError("");
    absl::Notification go;
    std::thread ta([&] {
      go.WaitForNotification();
      on_a = a_->registry->CreateKey(request, kActor);
    });
    std::thread tb([&] {
      go.WaitForNotification();
      on_b = b_->registry->CreateKey(request, kActor);
    });
    go.Notify();
    ta.join();
    tb.join();
    ASSERT_OK(on_a);
    ASSERT_OK(on_b);
    EXPECT_EQ(on_a->key().key_id(), on_b->key().key_id());
    EXPECT_NE(on_a->replayed(), on_b->replayed());  // exactly one created it
    const v1::CreateKeyResponse& made = on_a->replayed() ? *on_b : *on_a;
    EXPECT_EQ(Reason(*a_, made.secret(), {"s0"}, made.revision()), v1::ALLOWED);
  }
}

TEST_F(ReplicaTest, PolicyChangeOnOneReplicaRecompilesTheOthersKeys) {
  const v1::CreateKeyResponse key = CreateKey(*a_, {"s0", "s5"});
  EXPECT_EQ(Reason(*b_, key.secret(), {"s5"}, key.revision()), v1::ALLOWED);
  // s5 is no longer declared: no key has it any more.
  v1::Policy narrower = TestPolicy(5);
  absl::StatusOr<uint64_t> put = a_->registry->PutPolicy(narrower, kActor);
  ASSERT_OK(put);
  absl::StatusOr<v1::AuthorizeResponse> r =
      b_->Check(key.secret(), {"s5"}, *put);
  EXPECT_EQ(r.status().code(),
            absl::StatusCode::kInvalidArgument);  // undeclared
  EXPECT_TRUE(b_->registry->PolicyEquals(narrower));
  EXPECT_EQ(Reason(*b_, key.secret(), {"s0"}), v1::ALLOWED);
  v1::GetKeyRequest get;
  get.set_key_id(key.key().key_id());
  absl::StatusOr<v1::Key> on_b = b_->registry->GetKey(get);
  ASSERT_OK(on_b);
  EXPECT_THAT(on_b->effective_scopes(), ::testing::ElementsAre("s0"));
  // The background recompile brings every cached key to the new policy.
  const uint64_t generation = b_->state.policy()->generation();
  const absl::Time start = absl::Now();
  while (true) {
    int stale = 0;
    b_->state.cache().Recompile(
        [&](const std::shared_ptr<const CompiledKey>& k) {
          stale += k->policy_generation != generation ? 1 : 0;
          return k;
        });
    if (stale == 0) break;
    ASSERT_LT(absl::Now() - start, absl::Seconds(10)) << stale << " stale";
  }
}

// A write on B right after a policy change on A is validated against the
// new policy: B catches up with the cluster first. (Without that, B could
// still hold the old policy and refuse a scope A has just declared; found by
// //tests/oracle:cluster_differential_test.)
TEST_F(ReplicaTest, WritesOnOneReplicaSeeAPolicyJustChangedOnAnother) {
  for (int round = 0; round < 20; ++round) {
    const std::string scope = absl::StrCat("new", round);
    v1::Policy wider = TestPolicy();
    wider.add_scopes()->set_name(scope);
    ASSERT_OK(a_->registry->PutPolicy(wider, kActor));

    v1::PutAppRequest app;
    app.mutable_app()->set_app_id(absl::StrCat("app_", round));
    app.mutable_app()->add_requested_scopes(scope);
    const absl::StatusOr<v1::App> put = b_->registry->PutApp(app, kActor);
    ASSERT_TRUE(put.ok()) << "round " << round << ": " << put.status();

    v1::CreateKeyRequest key;
    key.set_organization_id("org_a");
    key.add_apis("api");
    key.add_scopes(scope);
    absl::StatusOr<v1::CreateKeyResponse> created =
        b_->registry->CreateKey(key, kActor);
    ASSERT_TRUE(created.ok()) << "round " << round << ": " << created.status();
    EXPECT_THAT(created->key().effective_scopes(), Contains(scope));
  }
}

TEST_F(ReplicaTest, BoundedCacheReplicaReadsMissesFromEtcd) {
  std::unique_ptr<TestReplica> small = StartReplica(/*capacity=*/2);
  ASSERT_NE(small, nullptr);
  std::vector<v1::CreateKeyResponse> keys;
  for (int i = 0; i < 6; ++i) keys.push_back(CreateKey(*a_, {"s0"}));
  for (const v1::CreateKeyResponse& key : keys) {
    EXPECT_EQ(Reason(*small, key.secret(), {"s0"}, key.revision()),
              v1::ALLOWED);
  }
  EXPECT_LE(small->state.cache().size(), 2u);
  v1::RevokeKeyRequest revoke;
  revoke.set_key_id(keys[0].key().key_id());
  absl::StatusOr<v1::Key> revoked = b_->registry->RevokeKey(revoke, kActor);
  ASSERT_OK(revoked);
  EXPECT_EQ(Reason(*small, keys[0].secret(), {"s0"}, revoked->revision()),
            v1::KEY_REVOKED);
}

TEST_F(ReplicaTest, MutationBeyondEtcdLimitsIsInvalidArgumentAndWritesNothing) {
  options_.etcd_max_request_bytes = 8192;
  std::unique_ptr<TestReplica> tight = StartReplica();
  ASSERT_NE(tight, nullptr);
  const uint64_t before = tight->state.revision();
  v1::Policy huge = TestPolicy();
  for (int i = 0; i < 400; ++i) {
    huge.add_scopes()->set_name(absl::StrCat("long_scope_name_number_", i));
  }
  absl::StatusOr<uint64_t> put = tight->registry->PutPolicy(huge, kActor);
  ASSERT_EQ(put.status().code(), absl::StatusCode::kInvalidArgument)
      << put.status();
  EXPECT_THAT(put.status().message(), HasSubstr("max_request_bytes"));
  absl::StatusOr<uint64_t> now = tight->replica->store()->Revision();
  ASSERT_OK(now);
  EXPECT_EQ(*now, before);
  EXPECT_TRUE(b_->registry->PolicyEquals(TestPolicy()));
}

TEST_F(ReplicaTest, LastUseIsOneTelemetryWritePerKeyAndMinuteAndNoStateChange) {
  std::vector<v1::CreateKeyResponse> keys;
  for (int i = 0; i < 3; ++i) keys.push_back(CreateKey(*a_, {"s0"}));
  absl::StatusOr<storage::EtcdStore::Head> before =
      b_->replica->store()->ReadHead();
  ASSERT_OK(before);
  for (int round = 0; round < 50; ++round) {
    for (const auto& key : keys) {
      EXPECT_EQ(Reason(*b_, key.secret(), {"s0"}, key.revision()), v1::ALLOWED);
    }
  }
  ASSERT_TRUE(b_->usage->Flush().ok());
  absl::StatusOr<storage::EtcdStore::Head> after =
      b_->replica->store()->ReadHead();
  ASSERT_OK(after);
  // 150 decisions: one telemetry transaction, and no state change.
  EXPECT_EQ(after->revision, before->revision + 1);
  EXPECT_EQ(after->last_write, before->last_write);
  for (const auto& key : keys) {
    EXPECT_EQ(Reason(*b_, key.secret(), {"s0"}), v1::ALLOWED);
  }
  ASSERT_TRUE(b_->usage->Flush().ok());  // same minute: nothing to write
  absl::StatusOr<storage::EtcdStore::Head> again =
      b_->replica->store()->ReadHead();
  ASSERT_OK(again);
  EXPECT_EQ(again->revision, after->revision);
  // Every replica reads the time.
  v1::GetKeyRequest get;
  get.set_key_id(keys[0].key().key_id());
  absl::StatusOr<v1::Key> on_a = a_->registry->GetKey(get);
  ASSERT_OK(on_a);
  EXPECT_TRUE(on_a->has_last_used_time());
}

TEST_F(ReplicaTest, AuditRetentionDeletesOldEvents) {
  options_.audit_retention = absl::Nanoseconds(1);  // everything is old
  options_.audit_prune_interval = absl::Milliseconds(20);
  CreateKey(*a_, {"s0"});
  v1::ListAuditEventsRequest list;
  absl::StatusOr<v1::ListAuditEventsResponse> events =
      a_->registry->ListAuditEvents(list);
  ASSERT_OK(events);
  ASSERT_GE(events->events_size(), 2);  // PutPolicy, CreateKey
  std::unique_ptr<TestReplica> pruning = StartReplica();
  ASSERT_NE(pruning, nullptr);
  const absl::Time start = absl::Now();
  while (true) {
    events = a_->registry->ListAuditEvents(list);
    ASSERT_OK(events);
    if (events->events_size() == 0) break;
    ASSERT_LT(absl::Now() - start, absl::Seconds(10));
  }
  // Deleting events changed no state.
  EXPECT_TRUE(a_->registry->PolicyEquals(TestPolicy()));
}

TEST_F(ReplicaTest, HealthyReplicasStayConfirmedAndReportIt) {
  // Confirmations keep coming while nothing is written.
  const absl::Time start = absl::Now();
  const absl::Time confirmed = b_->replica->freshness()->confirmed_as_of();
  while (b_->replica->freshness()->confirmed_as_of() <= confirmed) {
    ASSERT_LT(absl::Now() - start, absl::Seconds(5));
  }
  EXPECT_TRUE(b_->replica->freshness()->fresh());
  const std::string metrics = b_->replica->RenderMetrics();
  EXPECT_THAT(metrics, HasSubstr("scopekeeper_replica_serving 1\n"));
  EXPECT_THAT(metrics,
              HasSubstr(absl::StrCat("scopekeeper_replica_revision ", "")));
  EXPECT_THAT(metrics, HasSubstr("scopekeeper_replica_lag_seconds "));
}

}  // namespace
}  // namespace scopekeeper
