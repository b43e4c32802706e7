#include "server/decision/freshness.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

using ::testing::HasSubstr;

TEST(FreshnessTest, UnconfirmedIsUnavailable) {
  FakeClock clock;
  Freshness freshness(&clock, absl::Seconds(5));
  EXPECT_FALSE(freshness.fresh());
  EXPECT_EQ(freshness.Check().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(freshness.Lag(), absl::InfiniteDuration());
}

TEST(FreshnessTest, FreshUntilMaxStalenessAfterTheConfirmedTime) {
  FakeClock clock;
  Freshness freshness(&clock, absl::Seconds(5));
  const absl::Time t0 = clock.Now();
  clock.Advance(absl::Seconds(1));
  freshness.Confirm(t0);  // a read issued at t0, answered a second later
  EXPECT_TRUE(freshness.Check().ok());
  EXPECT_EQ(freshness.Lag(), absl::Seconds(1));
  clock.Advance(absl::Seconds(4));  // exactly max_staleness after t0
  EXPECT_TRUE(freshness.Check().ok());
  clock.Advance(absl::Milliseconds(1));
  const absl::Status stale = freshness.Check();
  EXPECT_EQ(stale.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(stale.message(), HasSubstr("5.001s"));
  EXPECT_THAT(stale.message(), HasSubstr("--max_staleness=5s"));
  freshness.Confirm(clock.Now());
  EXPECT_TRUE(freshness.Check().ok());
}

TEST(FreshnessTest, ConfirmationsNeverGoBack) {
  FakeClock clock;
  Freshness freshness(&clock, absl::Seconds(5));
  const absl::Time t0 = clock.Now();
  freshness.Confirm(t0 + absl::Seconds(2));
  freshness.Confirm(t0);  // a slower, older read answering late
  EXPECT_EQ(freshness.confirmed_as_of(), t0 + absl::Seconds(2));
}

}  // namespace
}  // namespace scopekeeper
