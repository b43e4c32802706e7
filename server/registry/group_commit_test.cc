// Group commit (GroupCommitter, through the Registry): concurrent mutations
// share one store sync; nothing reaches the serving state (decisions, audit
// listings) before it is durable; no mutation returns before what it read is
// applied; a failed sync fails its batch and every later mutation until the
// store recovers, and then nothing written is lost; barriers (PutPolicy)
// stay consistent with concurrent key writes.
//
// Grouping is made deterministic by holding a sync open in the store's sync
// hook (FaultInjectingStore::SetSyncHook) until the commits under test are
// queued behind it, never by timing.
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <future>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/policy/key_secret.h"
#include "server/policy/policy.h"
#include "server/registry/registry.h"
#include "server/testing/core_test_env.h"
#include "server/testing/held_sync.h"

namespace scopekeeper {
namespace {

using Op = storage::FaultInjectingStore::Op;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr absl::string_view kStatusPath = "/v1/pharmacy/orders/o_1/status";
constexpr absl::string_view kOrdersPath = "/v1/pharmacy/orders/";

// SpinUntil() yields until `done()`; for conditions that are certain to
// come true soon (another thread is running towards them).
template <typename Fn>
void SpinUntil(Fn done) {
  while (!done()) std::this_thread::yield();
}

class GroupCommitTest : public ::testing::Test {
 protected:
  void SetUp() override { env_.PutPolicyJson(kTestPolicyJson); }

  v1::GrantScopesRequest Grant(const std::string& key_id,
                               const std::string& scope) {
    v1::GrantScopesRequest request;
    request.set_key_id(key_id);
    request.add_scopes(scope);
    return request;
  }

  // CachedKey() is the compiled key the decision path holds for `secret`.
  std::shared_ptr<const CompiledKey> CachedKey(const std::string& secret) {
    KeyCache::Entry entry;
    if (!env_.state.cache().Find(HashSecret(secret), &entry)) return nullptr;
    return entry.key;
  }

  CoreTestEnv env_;
};

TEST_F(GroupCommitTest, ConcurrentWritersShareSyncsAndAllApplyInOrder) {
  constexpr int kThreads = 8;
  constexpr int kGrantsPerThread = 25;
  const std::vector<std::string> scopes = {"orders_read", "orders_write",
                                           "stock_write"};
  std::vector<v1::CreateKeyResponse> keys;
  for (int i = 0; i < kThreads; ++i) {
    keys.push_back(env_.CreateKey({"pharmacy"}, {}));
  }
  const uint64_t base = env_.state.revision();
  const int writes_before = env_.store.calls(Op::kWrite);
  const int syncs_before = env_.store.calls(Op::kSync);

  // The first sync is held until every thread's first commit is written
  // in its batch or queued behind it, so the queued ones share the next
  // sync: at most two syncs for the first kThreads writes.
  std::atomic<bool> first{true};
  env_.store.SetSyncHook([&] {
    if (!first.exchange(false)) return;
    SpinUntil([&] {
      return env_.store.calls(Op::kWrite) - writes_before +
                 static_cast<int>(env_.registry.committer().queued()) >=
             kThreads;
    });
  });

  std::vector<std::vector<uint64_t>> revisions(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kGrantsPerThread; ++i) {
        const auto key = env_.registry.GrantScopes(
            Grant(keys[t].key().key_id(), scopes[i % scopes.size()]),
            CoreTestEnv::kActor);
        ASSERT_TRUE(key.ok()) << key.status();
        // Applied before it returned.
        EXPECT_GE(env_.state.revision(), key->revision());
        revisions[t].push_back(key->revision());
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  env_.store.SetSyncHook(nullptr);

  constexpr int kWrites = kThreads * kGrantsPerThread;
  std::set<uint64_t> all;
  for (const auto& r : revisions) all.insert(r.begin(), r.end());
  ASSERT_EQ(all.size(), static_cast<size_t>(kWrites));
  EXPECT_EQ(*all.begin(), base + 1);
  EXPECT_EQ(*all.rbegin(), base + kWrites);  // contiguous: distinct, in range
  EXPECT_EQ(env_.state.revision(), base + kWrites);
  EXPECT_EQ(env_.store.calls(Op::kWrite) - writes_before, kWrites);
  // The two syncs around the held one covered at least kThreads - 1 writes.
  const int syncs = env_.store.calls(Op::kSync) - syncs_before;
  EXPECT_LE(syncs, kWrites - (kThreads - 3));

  for (int t = 0; t < kThreads; ++t) {
    // Each thread's writes are in its own order, and the last one is served.
    EXPECT_TRUE(std::is_sorted(revisions[t].begin(), revisions[t].end()));
    const auto cached = CachedKey(keys[t].secret());
    ASSERT_NE(cached, nullptr);
    EXPECT_EQ(cached->revision, revisions[t].back());
  }
  // One audit event per revision, in order.
  v1::ListAuditEventsRequest audit;
  audit.set_after_revision(base);
  audit.set_page_size(kWrites + 10);
  const auto events = env_.registry.ListAuditEvents(audit);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->events_size(), kWrites);
  for (int i = 0; i < kWrites; ++i) {
    EXPECT_EQ(events->events(i).revision(), base + 1 + i);
  }
}

TEST_F(GroupCommitTest, WriteIsNotServedBeforeItsSyncCompletes) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  const std::string key_id = key.key().key_id();
  const uint64_t base = env_.state.revision();
  HeldSync held(&env_.store);
  held.Arm();

  std::thread writer([&] {
    const auto granted = env_.registry.GrantScopes(
        Grant(key_id, "orders_write"), CoreTestEnv::kActor);
    EXPECT_TRUE(granted.ok()) << granted.status();
  });
  held.AwaitHeld();

  // Written to the store...
  const auto stored = env_.memory.GetKeyById(key_id);
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_EQ((*stored)->key().revision(), base + 1);
  // ...but not served: not in the cache, not published, not listed.
  EXPECT_EQ(env_.Http(key.secret(), "pharmacy", "PATCH", kStatusPath).reason(),
            v1::INSUFFICIENT_SCOPE);
  EXPECT_EQ(CachedKey(key.secret())->revision, base);
  EXPECT_EQ(env_.state.revision(), base);
  v1::ListAuditEventsRequest audit;
  audit.set_after_revision(base);
  const auto events = env_.registry.ListAuditEvents(audit);
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_THAT(events->events(), IsEmpty());
  const auto changes = env_.registry.Changes(base, 10);
  ASSERT_TRUE(changes.ok()) << changes.status();
  EXPECT_THAT(*changes, IsEmpty());

  held.Release();
  writer.join();
  EXPECT_TRUE(
      env_.Http(key.secret(), "pharmacy", "PATCH", kStatusPath).allowed());
  EXPECT_EQ(env_.state.revision(), base + 1);
  const auto listed = env_.registry.ListAuditEvents(audit);
  ASSERT_TRUE(listed.ok()) << listed.status();
  ASSERT_EQ(listed->events_size(), 1);
  EXPECT_EQ(listed->events(0).action(), "GrantScopes");
}

TEST_F(GroupCommitTest, NoOpRevokeReturnsOnlyAfterTheRevokeItSawIsApplied) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  const auto other = env_.CreateKey({"pharmacy"}, {"orders_read"});
  v1::RevokeKeyRequest revoke;
  revoke.set_key_id(key.key().key_id());
  const uint64_t base = env_.state.revision();
  const int syncs_before = env_.store.calls(Op::kSync);
  HeldSync held(&env_.store);
  held.Arm();

  // An unrelated write holds its sync while both revokes queue behind it:
  // they run in one batch, where the second reads the first's unsynced
  // revoke and writes nothing.
  std::thread unrelated([&] {
    EXPECT_TRUE(env_.registry
                    .GrantScopes(Grant(other.key().key_id(), "orders_write"),
                                 CoreTestEnv::kActor)
                    .ok());
  });
  held.AwaitHeld();
  // Each revoker checks, as soon as its call returns, what a decision sees.
  auto revoke_and_check = [&](v1::Reason* seen, uint64_t* revision) {
    const auto revoked = env_.registry.RevokeKey(revoke, CoreTestEnv::kActor);
    *seen = env_.Http(key.secret(), "pharmacy", "GET", kOrdersPath).reason();
    *revision = env_.state.revision();
    ASSERT_TRUE(revoked.ok()) << revoked.status();
    EXPECT_EQ(revoked->status(), v1::REVOKED);
  };
  v1::Reason first_seen = v1::REASON_UNSPECIFIED;
  v1::Reason second_seen = v1::REASON_UNSPECIFIED;
  uint64_t first_revision = 0;
  uint64_t second_revision = 0;
  std::thread first(revoke_and_check, &first_seen, &first_revision);
  SpinUntil([&] { return env_.registry.committer().queued() == 1; });
  std::thread second(revoke_and_check, &second_seen, &second_revision);
  SpinUntil([&] { return env_.registry.committer().queued() == 2; });
  held.Release();
  unrelated.join();
  first.join();
  second.join();

  EXPECT_EQ(first_seen, v1::KEY_REVOKED);
  EXPECT_EQ(second_seen, v1::KEY_REVOKED);
  EXPECT_EQ(first_revision, base + 2);
  EXPECT_EQ(second_revision, base + 2);  // the no-op wrote nothing
  EXPECT_EQ(env_.store.calls(Op::kSync) - syncs_before, 2);
}

TEST_F(GroupCommitTest, FailedSyncFailsEveryMutationUntilTheStoreRecovers) {
  const auto a = env_.CreateKey({"pharmacy"}, {"orders_read"});
  const auto b = env_.CreateKey({"pharmacy"}, {"orders_read"});
  const uint64_t base = env_.state.revision();
  const int writes_before = env_.store.calls(Op::kWrite);
  HeldSync held(&env_.store);
  held.Arm();

  absl::Status first_status;
  absl::Status second_status;
  std::thread first([&] {
    first_status = env_.registry
                       .GrantScopes(Grant(a.key().key_id(), "orders_write"),
                                    CoreTestEnv::kActor)
                       .status();
  });
  held.AwaitHeld();
  std::thread second([&] {
    second_status = env_.registry
                        .GrantScopes(Grant(b.key().key_id(), "orders_write"),
                                     CoreTestEnv::kActor)
                        .status();
  });
  // The second grant waits behind the held sync, which then fails.
  SpinUntil([&] { return env_.registry.committer().queued() == 1; });
  env_.store.SetFailing(Op::kSync, true);
  held.Release();
  first.join();
  second.join();
  EXPECT_EQ(first_status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(first_status.message(), HasSubstr("store cannot take writes"));
  EXPECT_EQ(second_status.code(), absl::StatusCode::kUnavailable);

  // Failed closed: the store works again, but nothing is taken before the
  // committer tries to recover it (at most once a second).
  env_.store.SetFailing(Op::kSync, false);
  EXPECT_EQ(env_.registry
                .GrantScopes(Grant(a.key().key_id(), "stock_write"),
                             CoreTestEnv::kActor)
                .status()
                .code(),
            absl::StatusCode::kUnavailable);
  v1::RevokeKeyRequest revoke;
  revoke.set_key_id(a.key().key_id());
  EXPECT_EQ(
      env_.registry.RevokeKey(revoke, CoreTestEnv::kActor).status().code(),
      absl::StatusCode::kUnavailable);
  const auto policy = ParsePolicyJson(kTestPolicyJson);
  ASSERT_TRUE(policy.ok());
  EXPECT_EQ(
      env_.registry.PutPolicy(*policy, CoreTestEnv::kActor).status().code(),
      absl::StatusCode::kUnavailable);
  EXPECT_EQ(env_.store.calls(Op::kWrite), writes_before + 1);

  // Decisions keep serving the last durable state, without the grant.
  EXPECT_EQ(env_.state.revision(), base);
  for (const auto* key : {&a, &b}) {
    EXPECT_TRUE(
        env_.Http(key->secret(), "pharmacy", "GET", kOrdersPath).allowed());
    EXPECT_EQ(
        env_.Http(key->secret(), "pharmacy", "PATCH", kStatusPath).reason(),
        v1::INSUFFICIENT_SCOPE);
  }
  v1::ListAuditEventsRequest audit;
  audit.set_after_revision(base);
  const auto events = env_.registry.ListAuditEvents(audit);
  ASSERT_TRUE(events.ok()) << events.status();
  EXPECT_THAT(events->events(), IsEmpty());
  // A read of a key whose latest change may be lost fails closed too.
  v1::GetKeyRequest get;
  get.set_key_id(a.key().key_id());
  EXPECT_EQ(env_.registry.GetKey(get).status().code(),
            absl::StatusCode::kUnavailable);

  // A second later the next mutation recovers the store: the write whose
  // sync failed is durable now and is applied (its caller was told
  // UNAVAILABLE: the outcome of such a write is unknown), then it is taken.
  env_.clock.Advance(absl::Seconds(1));
  const auto recovered = env_.registry.GrantScopes(
      Grant(b.key().key_id(), "orders_write"), CoreTestEnv::kActor);
  ASSERT_TRUE(recovered.ok()) << recovered.status();
  EXPECT_EQ(recovered->revision(), base + 2);
  EXPECT_EQ(env_.state.revision(), base + 2);
  for (const auto* key : {&a, &b}) {
    EXPECT_TRUE(
        env_.Http(key->secret(), "pharmacy", "PATCH", kStatusPath).allowed());
  }
  EXPECT_TRUE(env_.registry.GetKey(get).ok());
}

TEST_F(GroupCommitTest, PolicyBarrierStaysConsistentWithConcurrentKeyWrites) {
  constexpr int kThreads = 4;
  constexpr int kWritesPerThread = 40;
  constexpr int kPolicies = 10;
  std::vector<v1::CreateKeyResponse> keys;
  for (int i = 0; i < kThreads; ++i) {
    keys.push_back(env_.CreateKey({"pharmacy"}, {"orders_read"}));
  }
  // Two policies: with and without an extra declared scope.
  auto plain = ParsePolicyJson(kTestPolicyJson);
  ASSERT_TRUE(plain.ok());
  v1::Policy extended = *plain;
  extended.add_scopes()->set_name("extra_scope");

  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kWritesPerThread; ++i) {
        const std::string& key_id = keys[t].key().key_id();
        if (i % 2 == 0) {
          const auto granted = env_.registry.GrantScopes(
              Grant(key_id, "orders_write"), CoreTestEnv::kActor);
          ASSERT_TRUE(granted.ok()) << granted.status();
        } else {
          v1::RevokeScopesRequest request;
          request.set_key_id(key_id);
          request.add_scopes("orders_write");
          const auto revoked =
              env_.registry.RevokeScopes(request, CoreTestEnv::kActor);
          ASSERT_TRUE(revoked.ok()) << revoked.status();
        }
      }
    });
  }
  for (int i = 0; i < kPolicies; ++i) {
    const auto put = env_.registry.PutPolicy(i % 2 == 0 ? extended : *plain,
                                             CoreTestEnv::kActor);
    ASSERT_TRUE(put.ok()) << put.status();
    // The barrier returned with its own change applied.
    EXPECT_GE(env_.state.revision(), *put);
    EXPECT_EQ(env_.state.policy()->generation(), *put);
  }
  for (std::thread& thread : threads) thread.join();

  const auto stored_revision = env_.memory.Revision();
  ASSERT_TRUE(stored_revision.ok());
  EXPECT_EQ(env_.state.revision(), *stored_revision);
  const uint64_t generation = env_.state.policy()->generation();
  for (const auto& key : keys) {
    // The decision path holds each key's latest record, compiled against
    // the policy in force (not one a concurrent write saw before it).
    const auto stored = env_.memory.GetKeyById(key.key().key_id());
    ASSERT_TRUE(stored.ok() && stored->has_value());
    const auto cached = CachedKey(key.secret());
    ASSERT_NE(cached, nullptr);
    EXPECT_EQ(cached->revision, (*stored)->key().revision());
    EXPECT_EQ(cached->policy_generation, generation);
    // Every thread ended on a revoke (kWritesPerThread is even).
    EXPECT_EQ(
        env_.Http(key.secret(), "pharmacy", "PATCH", kStatusPath).reason(),
        v1::INSUFFICIENT_SCOPE);
  }
}

}  // namespace
}  // namespace scopekeeper
