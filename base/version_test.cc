#include "base/version.h"

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

using ::testing::AnyOf;
using ::testing::Eq;
using ::testing::MatchesRegex;

// The build is stamped (.bazelrc's --workspace_status_command): the version
// is base/VERSION's, not a constant in the code.
TEST(VersionTest, IsTheStampedReleaseVersion) {
  std::ifstream file("base/VERSION");
  std::string want;
  ASSERT_TRUE(std::getline(file, want));
  EXPECT_EQ(ScopekeeperVersion(), want);
}

// A commit from git, or "unknown" when built outside a checkout.
TEST(VersionTest, CommitIsAGitCommitOrUnknown) {
  EXPECT_THAT(std::string(ScopekeeperCommit()),
              AnyOf(MatchesRegex("[0-9a-f]{12}(-dirty)?"), Eq("unknown")));
}

}  // namespace
}  // namespace scopekeeper
