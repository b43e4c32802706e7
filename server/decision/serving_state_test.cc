#include "server/decision/serving_state.h"

#include <memory>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

std::shared_ptr<const PolicySnapshot> PolicyWithScope(const char* scope,
                                                      uint64_t revision) {
  v1::Policy policy;
  policy.add_scopes()->set_name(scope);
  auto compiled = PolicySnapshot::Compile(policy, revision);
  EXPECT_TRUE(compiled.ok()) << compiled.status();
  return *compiled;
}

TEST(ServingStateTest, PolicyForDecisionFollowsSetPolicy) {
  ServingState state;
  EXPECT_EQ(&state.PolicyForDecision(), state.policy().get());
  auto p1 = PolicyWithScope("a", 1);
  state.set_policy(p1);
  EXPECT_EQ(&state.PolicyForDecision(), p1.get());
  EXPECT_EQ(&state.PolicyForDecision(), p1.get());  // cached, same snapshot
  auto p2 = PolicyWithScope("b", 2);
  state.set_policy(p2);
  EXPECT_EQ(&state.PolicyForDecision(), p2.get());
  EXPECT_GE(state.PolicyForDecision().ScopeId("b"), 0);
}

TEST(ServingStateTest, PolicyForDecisionNeverMixesStates) {
  // One thread alternating between two states (as tests and the bench do)
  // must get each state's own policy, even when one is destroyed and
  // another takes its place.
  auto pa = PolicyWithScope("a", 1);
  auto pb = PolicyWithScope("b", 1);
  ServingState a;
  a.set_policy(pa);
  for (int i = 0; i < 3; ++i) {
    auto b = std::make_unique<ServingState>();
    b->set_policy(pb);
    EXPECT_EQ(&a.PolicyForDecision(), pa.get());
    EXPECT_EQ(&b->PolicyForDecision(), pb.get());
    EXPECT_EQ(&a.PolicyForDecision(), pa.get());
  }
}

TEST(ServingStateTest, PolicyForDecisionKeepsTheSnapshotAlive) {
  ServingState state;
  state.set_policy(PolicyWithScope("a", 1));
  const PolicySnapshot& seen = state.PolicyForDecision();
  // Replaced in the state, but this thread's reference stays valid until
  // its next PolicyForDecision() call.
  state.set_policy(PolicyWithScope("b", 2));
  EXPECT_GE(seen.ScopeId("a"), 0);
  // Another thread sees the new one at once.
  std::thread([&] {
    EXPECT_GE(state.PolicyForDecision().ScopeId("b"), 0);
  }).join();
}

TEST(ServingStateTest, StopAdvancingEndsWaitsForLaterRevisions) {
  ServingState state;
  state.PublishRevision(5);
  std::thread waiter_thread;
  absl::Status waited;
  waiter_thread = std::thread(
      [&] { waited = state.WaitForRevision(6, absl::InfiniteFuture()); });
  state.StopAdvancing(absl::UnavailableError("store sync failed"));
  waiter_thread.join();  // hangs if the stop does not wake it
  EXPECT_EQ(waited.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(waited.message(), "store sync failed");
  // Later waits fail at once; revisions already applied still succeed.
  EXPECT_EQ(state.WaitForRevision(7, absl::InfiniteFuture()).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_TRUE(state.WaitForRevision(5, absl::InfiniteFuture()).ok());
}

}  // namespace
}  // namespace scopekeeper
