// The quick run of the differential test: a fixed seed, the core
// in-process, complete and bounded key cache. A failure prints the seed and
// the minimized case (see docs/TESTING.md, "Reading a case").
#include "tests/oracle/differential.h"

#include <iostream>

#include "absl/strings/str_join.h"
#include "gtest/gtest.h"
#include "tests/oracle/core_target.h"

namespace scopekeeper::oracle {
namespace {

constexpr uint64_t kSeed = 20240601;

void ExpectAgreement(const RunOptions& options, const TargetFactory& factory) {
  const RunResult result = RunDifferential(options, factory);
  std::cout << result.scenarios << " scenarios, " << result.decisions
            << " decisions, " << result.operations << " operations in "
            << result.elapsed << "\n";
  EXPECT_EQ(result.disagreements, 0)
      << "seed " << options.seed << "; minimized case:\n"
      << absl::StrJoin(result.reports, "\n");
  EXPECT_GT(result.decisions, 0);
}

TEST(DifferentialTest, CoreAgreesWithTheModel) {
  RunOptions options;
  options.seed = kSeed;
  options.max_decisions = 40'000;
  ExpectAgreement(options, CoreTargetFactory());
}

TEST(DifferentialTest, CoreWithABoundedKeyCacheAgreesWithTheModel) {
  RunOptions options;
  options.seed = kSeed + 1;
  options.max_decisions = 10'000;
  ExpectAgreement(options, CoreTargetFactory(/*key_cache_capacity=*/3));
}

}  // namespace
}  // namespace scopekeeper::oracle
