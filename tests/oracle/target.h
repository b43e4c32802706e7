// Target: the system under test of the differential tests, as the admin
// operations and decisions a scenario needs. Implementations: CoreTarget
// (Registry + DecisionEngine in-process, core_target.h) and ServerTarget
// (any list of server addresses over gRPC, server_target.h).
#ifndef SCOPEKEEPER_TESTS_ORACLE_TARGET_H_
#define SCOPEKEEPER_TESTS_ORACLE_TARGET_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/scopekeeper/v1/scopekeeper.pb.h"

namespace scopekeeper::oracle {

class Target {
 public:
  virtual ~Target() = default;

  // The target's clock, which only AdvanceClock() moves.
  virtual absl::Time Now() = 0;
  virtual void AdvanceClock(absl::Duration d) = 0;

  virtual absl::StatusOr<v1::PutPolicyResponse> PutPolicy(
      const v1::PutPolicyRequest& request) = 0;
  virtual absl::StatusOr<v1::CreateKeyResponse> CreateKey(
      const v1::CreateKeyRequest& request) = 0;
  virtual absl::StatusOr<v1::Key> GrantScopes(
      const v1::GrantScopesRequest& request) = 0;
  virtual absl::StatusOr<v1::Key> RevokeScopes(
      const v1::RevokeScopesRequest& request) = 0;
  virtual absl::StatusOr<v1::Key> RevokeKey(
      const v1::RevokeKeyRequest& request) = 0;
  virtual absl::StatusOr<v1::CreateKeyResponse> RotateKey(
      const v1::RotateKeyRequest& request) = 0;
  virtual absl::StatusOr<v1::App> PutApp(const v1::PutAppRequest& request) = 0;
  virtual absl::StatusOr<v1::Installation> ApproveInstallation(
      const v1::ApproveInstallationRequest& request) = 0;

  // Decisions of a run of requests.
  struct Answers {
    // One per request, in order, as Authorize answers it.
    std::vector<absl::StatusOr<v1::AuthorizeResponse>> each;
    // The status of the BatchAuthorize call made for all of them, if one
    // was; when it failed, `each` came from one Authorize call per request.
    std::optional<absl::Status> batch;
  };
  // Authorize() decides `requests` (at most 1000).
  virtual Answers Authorize(
      const std::vector<v1::AuthorizeRequest>& requests) = 0;
};

// A fresh target per scenario (or a view of a shared one: scenarios of
// distinct seeds do not interfere, see Generate()).
using TargetFactory = std::function<std::unique_ptr<Target>()>;

}  // namespace scopekeeper::oracle

#endif  // SCOPEKEEPER_TESTS_ORACLE_TARGET_H_
