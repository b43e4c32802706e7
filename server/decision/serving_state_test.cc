#include "server/decision/serving_state.h"

#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

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
      [&] { waited = state.WaitForRevision(6, absl::InfiniteDuration()); });
  state.StopAdvancing(absl::UnavailableError("store sync failed"));
  waiter_thread.join();  // hangs if the stop does not wake it
  EXPECT_EQ(waited.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(waited.message(), "store sync failed");
  // Later waits fail at once; revisions already applied still succeed.
  EXPECT_EQ(state.WaitForRevision(7, absl::InfiniteDuration()).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_TRUE(state.WaitForRevision(5, absl::InfiniteDuration()).ok());
}

TEST(ServingStateTest, ParkedWaitRunsWhenItsRevisionIsPublished) {
  ServingState state;
  state.PublishRevision(5);
  std::vector<std::pair<int, absl::Status>> ran;
  const auto record = [&](int which) {
    return [&ran, which](absl::Status s) { ran.emplace_back(which, s); };
  };
  // Applied already: runs at once, nothing parked.
  EXPECT_EQ(state.WhenApplied(5, record(0)), 0u);
  ASSERT_EQ(ran.size(), 1u);
  EXPECT_TRUE(ran[0].second.ok());
  const ServingState::WaitId six = state.WhenApplied(6, record(6));
  const ServingState::WaitId eight = state.WhenApplied(8, record(8));
  EXPECT_NE(six, 0u);
  EXPECT_NE(eight, 0u);
  EXPECT_EQ(state.parked_waits(), 2u);
  state.PublishRevision(7);  // wakes the wait for 6, not the one for 8
  ASSERT_EQ(ran.size(), 2u);
  EXPECT_EQ(ran[1].first, 6);
  EXPECT_TRUE(ran[1].second.ok());
  EXPECT_EQ(state.parked_waits(), 1u);
  EXPECT_FALSE(state.CancelWait(six));   // ran already
  EXPECT_TRUE(state.CancelWait(eight));  // never runs now
  state.PublishRevision(9);
  EXPECT_EQ(ran.size(), 2u);
  EXPECT_EQ(state.parked_waits(), 0u);
}

TEST(ServingStateTest, ParkedWaitsAreCappedAndTheOneOverIsRefusedAtOnce) {
  ServingState state;
  state.PublishRevision(1);
  int woken = 0;
  std::vector<ServingState::WaitId> ids;
  ids.reserve(ServingState::kMaxParkedWaits);
  for (size_t i = 0; i < ServingState::kMaxParkedWaits; ++i) {
    ids.push_back(state.WhenApplied(2, [&woken](absl::Status s) {
      EXPECT_TRUE(s.ok()) << s;
      ++woken;
    }));
    ASSERT_NE(ids.back(), 0u);
  }
  EXPECT_EQ(state.parked_waits(), ServingState::kMaxParkedWaits);
  // One more is answered at once, on this thread, and parks nothing.
  absl::Status refused;
  EXPECT_EQ(state.WhenApplied(2, [&refused](absl::Status s) { refused = s; }),
            0u);
  EXPECT_EQ(refused.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.message()),
              ::testing::HasSubstr("too many calls waiting for a revision"));
  EXPECT_EQ(state.parked_waits(), ServingState::kMaxParkedWaits);
  // A cancelled wait makes room for the next.
  ASSERT_TRUE(state.CancelWait(ids.front()));
  EXPECT_NE(state.WhenApplied(2, [&woken](absl::Status) { ++woken; }), 0u);
  state.PublishRevision(2);
  EXPECT_EQ(woken, static_cast<int>(ServingState::kMaxParkedWaits));
  EXPECT_EQ(state.parked_waits(), 0u);
}

TEST(ServingStateTest, ParkedWaitsEndWhenTheStateStopsOrCloses) {
  ServingState state;
  state.PublishRevision(1);
  absl::Status stopped;
  state.WhenApplied(2, [&](absl::Status s) { stopped = s; });
  state.StopAdvancing(absl::UnavailableError("store failed"));
  EXPECT_EQ(stopped.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(stopped.message(), "store failed");
  // While stopped, new waits end at once; after a recovery they park again.
  absl::Status later = absl::UnknownError("not run");
  EXPECT_EQ(state.WhenApplied(3, [&](absl::Status s) { later = s; }), 0u);
  EXPECT_EQ(later.code(), absl::StatusCode::kUnavailable);
  state.ResumeAdvancing();
  absl::Status closed = absl::UnknownError("not run");
  EXPECT_NE(state.WhenApplied(3, [&](absl::Status s) { closed = s; }), 0u);
  state.Close();
  EXPECT_EQ(closed.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(state.parked_waits(), 0u);
}

TEST(ServingStateTest, HorizonOnlyRises) {
  ServingState state;
  state.RaiseHorizon(10);
  state.RaiseHorizon(4);
  EXPECT_EQ(state.horizon(), 10u);
  state.PublishRevision(12);  // a published revision exists, of course
  EXPECT_EQ(state.horizon(), 12u);
}

class CountingProbe final : public ServingState::HorizonProbe {
 public:
  void ProbeSoon() override { ++probes; }
  int probes = 0;
};

// A replica asked for a revision written on another replica a moment ago:
// it waits while a read of the cluster's head decides whether the revision
// exists.
TEST(ServingStateTest, WaitBeyondTheHorizonIsSettledByAHorizonRead) {
  ServingState state;
  CountingProbe probe;
  state.SetHorizonProbe(&probe);
  state.PublishRevision(5);
  state.RaiseHorizon(7);  // heard of, not applied yet
  std::vector<std::pair<uint64_t, absl::Status>> done;
  const auto record = [&](uint64_t revision) {
    return [&done, revision](absl::Status s) {
      done.emplace_back(revision, std::move(s));
    };
  };
  ASSERT_NE(state.WhenApplied(6, record(6)), 0u);  // within: no probe
  EXPECT_EQ(probe.probes, 0);
  ASSERT_NE(state.WhenApplied(9, record(9)), 0u);    // beyond: real?
  ASSERT_NE(state.WhenApplied(50, record(50)), 0u);  // beyond: bogus
  EXPECT_EQ(probe.probes, 2);

  const uint64_t read = state.BeginHorizonRead();
  // Parked while that read is under way: not covered by it.
  ASSERT_NE(state.WhenApplied(60, record(60)), 0u);
  state.EndHorizonRead(read, /*head=*/9);
  EXPECT_EQ(state.horizon(), 9u);
  ASSERT_EQ(done.size(), 1u);
  EXPECT_EQ(done[0].first, 50u);
  EXPECT_EQ(done[0].second.code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(done[0].second.message(),
              ::testing::HasSubstr("revision 50 is beyond the latest revision "
                                   "of the cluster (9)"));
  EXPECT_EQ(state.parked_waits(), 3u);  // 6, 9 and 60

  state.EndHorizonRead(state.BeginHorizonRead(), /*head=*/9);
  ASSERT_EQ(done.size(), 2u);
  EXPECT_EQ(done[1].first, 60u);
  state.PublishRevision(9);
  ASSERT_EQ(done.size(), 4u);
  EXPECT_TRUE(done[2].second.ok());
  EXPECT_TRUE(done[3].second.ok());
  EXPECT_EQ(state.parked_waits(), 0u);
}

}  // namespace
}  // namespace scopekeeper
