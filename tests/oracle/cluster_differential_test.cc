// The differential test through two replicas on a real etcd member: the
// scenarios' admin operations go to the replicas in turn, and so do their
// decisions (BatchAuthorize), each carrying the last write's revision as
// min_revision, so the oracle also covers etcd transactions, the change feed
// that keeps the other replica's cache current, and read-your-writes across
// replicas.
#include <iostream>
#include <string>

#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "gtest/gtest.h"
#include "tests/cluster/cluster_testing.h"
#include "tests/oracle/differential.h"
#include "tests/oracle/server_target.h"

namespace scopekeeper::oracle {
namespace {

using testing::TestServer;

constexpr uint64_t kSeed = 20261204;

class ClusterDifferentialTest : public testing::ClusterFixture {
 protected:
  // Both replicas' clock: the scenarios move it. Outlives the replicas
  // (the fixture's TearDown shuts them down before members are destroyed).
  FakeClock clock_;

  TestServer* StartReplicaOnTheFakeClock() {
    ServerOptions options = ReplicaOptions();
    options.clock = &clock_;
    // Freshness is measured on this clock too, and scenarios move it by
    // minutes at a time: a bound no scenario run reaches keeps the replicas
    // serving (freshness itself is tested in //tests/cluster).
    options.cluster.max_staleness = absl::Hours(24 * 365 * 100);
    return StartReplica(options);
  }
};

TEST_F(ClusterDifferentialTest, TwoReplicasAgreeWithTheModel) {
  StartEtcd(1);
  TestServer* a = StartReplicaOnTheFakeClock();
  ASSERT_NE(a, nullptr);
  TestServer* b = StartReplicaOnTheFakeClock();
  ASSERT_NE(b, nullptr);

  RunOptions options;
  options.seed = kSeed;
  options.max_decisions = 4000;
  const RunResult result = RunDifferential(
      options, ServerTargetFactory({a->server->address(), b->server->address()},
                                   token_, &clock_));
  std::cout << result.scenarios << " scenarios, " << result.decisions
            << " decisions, " << result.operations << " operations in "
            << result.elapsed << "\n";
  EXPECT_EQ(result.disagreements, 0)
      << "seed " << kSeed << "; minimized case:\n"
      << absl::StrJoin(result.reports, "\n");
  EXPECT_GT(result.decisions, 2000);
}

}  // namespace
}  // namespace scopekeeper::oracle
