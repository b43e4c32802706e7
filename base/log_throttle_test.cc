#include "base/log_throttle.h"

#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

TEST(LogThrottleTest, OneLinePerIntervalPerKindCountingTheRest) {
  FakeClock clock;
  LogThrottle throttle(&clock, absl::Seconds(1));
  uint64_t suppressed = 99;
  EXPECT_TRUE(throttle.Admit("a", &suppressed));
  EXPECT_EQ(suppressed, 0u);
  // Within the second: left out and counted.
  clock.Advance(absl::Milliseconds(400));
  EXPECT_FALSE(throttle.Admit("a", &suppressed));
  clock.Advance(absl::Milliseconds(599));
  EXPECT_FALSE(throttle.Admit("a", &suppressed));
  // Another kind has its own budget.
  EXPECT_TRUE(throttle.Admit("b", &suppressed));
  EXPECT_EQ(suppressed, 0u);
  // A second after the last admitted line: admitted, with the count.
  clock.Advance(absl::Milliseconds(1));
  EXPECT_TRUE(throttle.Admit("a", &suppressed));
  EXPECT_EQ(suppressed, 2u);
  // The count starts again from there.
  clock.Advance(absl::Seconds(5));
  EXPECT_TRUE(throttle.Admit("a", &suppressed));
  EXPECT_EQ(suppressed, 0u);
}

}  // namespace
}  // namespace scopekeeper
