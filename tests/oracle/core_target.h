// CoreTarget: the server core in-process (Registry + ServingState +
// DecisionEngine over the in-memory store, with a FakeClock: CoreTestEnv),
// as a differential-test Target. Requests go through BatchAuthorize and,
// when a batch is refused or holds one request, one by one through
// Authorize.
#ifndef SCOPEKEEPER_TESTS_ORACLE_CORE_TARGET_H_
#define SCOPEKEEPER_TESTS_ORACLE_CORE_TARGET_H_

#include <cstddef>

#include "server/testing/core_test_env.h"
#include "tests/oracle/target.h"

namespace scopekeeper::oracle {

class CoreTarget : public Target {
 public:
  // `key_cache_capacity`: see KeyCache (default: a complete cache).
  explicit CoreTarget(size_t key_cache_capacity = KeyCache::kUnbounded)
      : env_(key_cache_capacity) {}

  absl::Time Now() override { return env_.clock.Now(); }
  void AdvanceClock(absl::Duration d) override { env_.clock.Advance(d); }
  absl::StatusOr<v1::PutPolicyResponse> PutPolicy(
      const v1::PutPolicyRequest& request) override;
  absl::StatusOr<v1::CreateKeyResponse> CreateKey(
      const v1::CreateKeyRequest& request) override;
  absl::StatusOr<v1::Key> GrantScopes(
      const v1::GrantScopesRequest& request) override;
  absl::StatusOr<v1::Key> RevokeScopes(
      const v1::RevokeScopesRequest& request) override;
  absl::StatusOr<v1::Key> RevokeKey(
      const v1::RevokeKeyRequest& request) override;
  absl::StatusOr<v1::CreateKeyResponse> RotateKey(
      const v1::RotateKeyRequest& request) override;
  absl::StatusOr<v1::App> PutApp(const v1::PutAppRequest& request) override;
  absl::StatusOr<v1::Installation> ApproveInstallation(
      const v1::ApproveInstallationRequest& request) override;
  Answers Authorize(const std::vector<v1::AuthorizeRequest>& requests) override;

 private:
  CoreTestEnv env_;
};

// CoreTargetFactory() makes a fresh CoreTarget per scenario.
TargetFactory CoreTargetFactory(
    size_t key_cache_capacity = KeyCache::kUnbounded);

}  // namespace scopekeeper::oracle

#endif  // SCOPEKEEPER_TESTS_ORACLE_CORE_TARGET_H_
