#include "server/grpc/call_tracker.h"

#include <optional>
#include <thread>

#include "absl/status/status.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

TEST(CallTrackerTest, DrainWithNothingInFlightReturnsAtOnce) {
  CallTracker tracker;
  EXPECT_TRUE(tracker.Drain(absl::Hours(1)));
}

TEST(CallTrackerTest, DrainRefusesNewCallsAndWaitsForTheOnesInFlight) {
  CallTracker tracker;
  std::optional<CallTracker::Call> call;
  {
    absl::StatusOr<CallTracker::Call> entered = tracker.Enter();
    ASSERT_TRUE(entered.ok());
    call = *std::move(entered);
  }
  bool drained = false;
  std::thread shutdown([&] { drained = tracker.Drain(absl::Hours(1)); });
  // Once draining, a new call is refused with a status clients retry
  // elsewhere; the call in flight still counts.
  absl::StatusOr<CallTracker::Call> late = tracker.Enter();
  while (late.ok()) late = tracker.Enter();
  EXPECT_EQ(late.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(tracker.in_flight(), 1);
  // The call finishing ends the drain, long before its hour.
  call.reset();
  shutdown.join();
  EXPECT_TRUE(drained);
  EXPECT_EQ(tracker.in_flight(), 0);
}

TEST(CallTrackerTest, DrainGivesUpAfterTheGraceWhileACallIsStillRunning) {
  CallTracker tracker;
  absl::StatusOr<CallTracker::Call> call = tracker.Enter();
  ASSERT_TRUE(call.ok());
  // The server then cancels what is left (Shutdown(grace)).
  EXPECT_FALSE(tracker.Drain(absl::Milliseconds(10)));
  EXPECT_EQ(tracker.in_flight(), 1);
}

TEST(CallTrackerTest, MovedCallsCountOnce) {
  CallTracker tracker;
  absl::StatusOr<CallTracker::Call> first = tracker.Enter();
  ASSERT_TRUE(first.ok());
  CallTracker::Call moved = *std::move(first);
  CallTracker::Call assigned;
  assigned = std::move(moved);
  EXPECT_EQ(tracker.in_flight(), 1);
  { CallTracker::Call gone = std::move(assigned); }
  EXPECT_EQ(tracker.in_flight(), 0);
}

}  // namespace
}  // namespace scopekeeper
