#include "server/cluster/testing/test_replica.h"

#include <utility>

#include "base/status_macros.h"

namespace scopekeeper::testing {

absl::StatusOr<std::unique_ptr<TestReplica>> TestReplica::Start(
    const ReplicaOptions& options, const Clock* clock,
    size_t key_cache_capacity) {
  std::unique_ptr<TestReplica> r(new TestReplica(key_cache_capacity));
  SK_ASSIGN_OR_RETURN(
      r->replica, Replica::Open(options, &r->state, clock, NoCommitObserver()));
  storage::Store* store = r->replica->store();
  r->usage = std::make_unique<UsageTracker>(store);
  r->registry = std::make_unique<Registry>(
      store, &r->state, clock, r->usage.get(), r->replica->applier(),
      r->replica->committer());
  SK_RETURN_IF_ERROR(r->registry->Load());
  r->replica->StartBackgroundWork();
  r->engine = std::make_unique<DecisionEngine>(
      &r->state, store, clock, r->usage.get(), NoDecisionObserver(),
      r->replica->freshness());
  return r;
}

absl::StatusOr<v1::AuthorizeResponse> TestReplica::Authorize(
    const v1::AuthorizeRequest& request) {
  v1::AuthorizeResponse response;
  SK_RETURN_IF_ERROR(
      engine->Authorize(request, &response, absl::Seconds(10)));
  return response;
}

absl::StatusOr<v1::AuthorizeResponse> TestReplica::Check(
    absl::string_view secret, std::vector<std::string> all_of,
    uint64_t min_revision) {
  v1::AuthorizeRequest request;
  request.set_api_key(std::string(secret));
  for (std::string& scope : all_of) {
    request.mutable_requirement()->add_all_of(std::move(scope));
  }
  request.set_min_revision(min_revision);
  return Authorize(request);
}

}  // namespace scopekeeper::testing
