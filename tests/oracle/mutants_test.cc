// Proves the oracle can fail: with each deliberately wrong variant of the
// decision path (base/mutants.h) the quick run of differential_test (same
// seed, same budget) must find a disagreement. Built with
// -DSCOPEKEEPER_MUTANTS (//bazel:mutants.bzl). Prints each mutant's
// minimized case.
#include "base/mutants.h"

#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "gtest/gtest.h"
#include "tests/oracle/core_target.h"
#include "tests/oracle/differential.h"
#include "tests/oracle/generator.h"
#include "tests/oracle/scenario.h"
#include "tests/oracle/target.h"

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

// Minimize() shrinks a disagreeing scenario to fewer steps that still
// disagree the same way.
TEST_F(MutantsTest, MinimizedCaseIsShorterAndStillDisagrees) {
  mutants::SetActive(Mutant::kAnyOfAsAllOf);
  const TargetFactory factory = CoreTargetFactory();
  for (int64_t index = 0; index < 1000; ++index) {
    const Scenario scenario = Generate(ScenarioSeed(kSeed, index));
    std::unique_ptr<Target> target = factory();
    std::optional<Disagreement> found = Play(scenario, *target);
    if (!found.has_value()) continue;
    const std::string signature = found->Signature();
    const Scenario minimized = Minimize(scenario, &*found, factory);
    EXPECT_LT(minimized.steps.size(), scenario.steps.size());
    EXPECT_EQ(found->Signature(), signature);
    std::unique_ptr<Target> again = factory();
    const std::optional<Disagreement> replayed = Play(minimized, *again);
    ASSERT_TRUE(replayed.has_value()) << "the minimized case agrees";
    EXPECT_EQ(replayed->Signature(), signature);
    return;
  }
  FAIL() << "no scenario of the first 1,000 disagrees under AnyOfAsAllOf";
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
        Case{"KeyExpiryIgnored", Mutant::kKeyExpiryIgnored},
        Case{"BundlesIgnored", Mutant::kBundlesIgnored},
        Case{"GrantExpiryIgnored", Mutant::kGrantExpiryIgnored},
        Case{"ApprovedNotRequested", Mutant::kApprovedNotRequested}),
    [](const ::testing::TestParamInfo<Case>& info) { return info.param.name; });

}  // namespace
}  // namespace scopekeeper::oracle
