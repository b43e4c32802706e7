#include "server/decision/decision_holds.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

using ::testing::HasSubstr;

TEST(DecisionHoldsTest, AnyHoldStopsDecisionsUntilEveryHoldIsReleased) {
  DecisionHolds holds;
  EXPECT_TRUE(holds.Check().ok());
  EXPECT_TRUE(holds.serving());

  EXPECT_TRUE(holds.Hold("restore", "review the audit first"));  // changed
  EXPECT_FALSE(holds.serving());
  EXPECT_TRUE(absl::IsUnavailable(holds.Check()));
  EXPECT_THAT(holds.Check().message(),
              HasSubstr("decisions are held (restore): review the audit"));

  EXPECT_FALSE(holds.Hold("etcd", "stale for 12s"));  // already held
  EXPECT_FALSE(holds.Release("restore"));             // etcd still holds
  EXPECT_THAT(holds.Check().message(), HasSubstr("(etcd): stale for 12s"));
  EXPECT_FALSE(holds.Release("nobody"));
  EXPECT_TRUE(holds.Release("etcd"));  // changed: serving again
  EXPECT_TRUE(holds.Check().ok());
  EXPECT_FALSE(holds.Release("etcd"));  // idempotent
}

}  // namespace
}  // namespace scopekeeper
