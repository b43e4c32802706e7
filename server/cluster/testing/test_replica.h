// TestReplica (testonly): the core of one cluster replica — Replica,
// Registry, DecisionEngine over a ServingState — driven without gRPC, for
// tests that put two or more of them on one etcd cluster.
#ifndef SCOPEKEEPER_SERVER_CLUSTER_TESTING_TEST_REPLICA_H_
#define SCOPEKEEPER_SERVER_CLUSTER_TESTING_TEST_REPLICA_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/clock.h"
#include "server/cluster/replica.h"
#include "server/decision/decision_engine.h"
#include "server/decision/serving_state.h"
#include "server/decision/usage_tracker.h"
#include "server/registry/registry.h"

namespace scopekeeper::testing {

class TestReplica {
 public:
  // Start() opens the replica on `options` and loads it.
  static absl::StatusOr<std::unique_ptr<TestReplica>> Start(
      const ReplicaOptions& options, const Clock* clock = SystemClock::Get(),
      size_t key_cache_capacity = KeyCache::kUnbounded);
  ~TestReplica() { replica->Stop(); }

  // Authorize() decides `request` with a 10 s deadline.
  absl::StatusOr<v1::AuthorizeResponse> Authorize(
      const v1::AuthorizeRequest& request);
  // Check() decides `secret` against an explicit all_of requirement.
  absl::StatusOr<v1::AuthorizeResponse> Check(absl::string_view secret,
                                              std::vector<std::string> all_of,
                                              uint64_t min_revision = 0);

  ServingState state;
  std::unique_ptr<Replica> replica;
  std::unique_ptr<UsageTracker> usage;
  std::unique_ptr<Registry> registry;
  std::unique_ptr<DecisionEngine> engine;

 private:
  explicit TestReplica(size_t capacity) : state(capacity) {}
};

}  // namespace scopekeeper::testing

#endif  // SCOPEKEEPER_SERVER_CLUSTER_TESTING_TEST_REPLICA_H_
