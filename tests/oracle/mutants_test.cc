// Proves the oracle can fail: with each deliberately wrong variant of the
// decision path (base/mutants.h) the quick run of differential_test (same
// seed, same budget) must find a disagreement. Built with
// -DSCOPEKEEPER_MUTANTS (//bazel:mutants.bzl). Prints each mutant's
// minimized case.
#include "base/mutants.h"

#include <iostream>

#include "gtest/gtest.h"
#include "tests/oracle/core_target.h"
#include "tests/oracle/differential.h"

#ifndef SCOPEKEEPER_MUTANTS
#error "mutants_test must be built with -DSCOPEKEEPER_MUTANTS"
#endif

namespace scopekeeper::oracle {
namespace {

using mutants::Mutant;

// The quick run's seed and budget (differential_test.cc).
constexpr uint64_t kSeed = 20240601;
constexpr int64_t kDecisions = 40'000;

struct Case {
  const char* name;
  Mutant mutant;
};

class MutantsTest : public ::testing::TestWithParam<Case> {
 protected:
  void TearDown() override { mutants::SetActive(Mutant::kNone); }
};

RunResult QuickRun() {
  RunOptions options;
  options.seed = kSeed;
  options.max_decisions = kDecisions;
  return RunDifferential(options, CoreTargetFactory());
}

TEST(MutantsBuildTest, WithoutAMutantTheCoreAgrees) {
  const RunResult result = QuickRun();
  EXPECT_EQ(result.disagreements, 0) << result.reports[0];
}

TEST_P(MutantsTest, QuickRunFindsTheMutant) {
  mutants::SetActive(GetParam().mutant);
  const RunResult result = QuickRun();
  ASSERT_GT(result.disagreements, 0)
      << "mutant " << GetParam().name << " survived " << result.decisions
      << " decisions";
  std::cout << "mutant " << GetParam().name << ": caught after "
            << result.decisions << " decisions; minimized case:\n"
            << result.reports[0];
}

INSTANTIATE_TEST_SUITE_P(
    Mutants, MutantsTest,
    ::testing::Values(
        Case{"ParamBeatsLiteral", Mutant::kParamBeatsLiteral},
        Case{"TrailingSlashSignificant", Mutant::kTrailingSlashSignificant},
        Case{"QueryNotDropped", Mutant::kQueryNotDropped},
        Case{"PrefixNotAtBoundary", Mutant::kPrefixNotAtBoundary},
        Case{"AnyOfAsAllOf", Mutant::kAnyOfAsAllOf},
        Case{"RedactionIgnored", Mutant::kRedactionIgnored},
        Case{"OrganizationNotChecked", Mutant::kOrganizationNotChecked},
        Case{"GraceNeverEnds", Mutant::kGraceNeverEnds},
        Case{"BundlesIgnored", Mutant::kBundlesIgnored},
        Case{"GrantExpiryIgnored", Mutant::kGrantExpiryIgnored},
        Case{"ApprovedNotRequested", Mutant::kApprovedNotRequested}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

}  // namespace
}  // namespace scopekeeper::oracle
