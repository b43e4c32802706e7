#include "tests/oracle/core_target.h"

#include <memory>

namespace scopekeeper::oracle {
namespace {
constexpr absl::string_view kActor = "oracle";
}  // namespace

absl::StatusOr<v1::PutPolicyResponse> CoreTarget::PutPolicy(
    const v1::PutPolicyRequest& request) {
  absl::StatusOr<uint64_t> revision =
      env_.registry.PutPolicy(request.policy(), kActor);
  if (!revision.ok()) return revision.status();
  v1::PutPolicyResponse response;
  response.set_revision(*revision);
  return response;
}

absl::StatusOr<v1::CreateKeyResponse> CoreTarget::CreateKey(
    const v1::CreateKeyRequest& request) {
  return env_.registry.CreateKey(request, kActor);
}

absl::StatusOr<v1::Key> CoreTarget::GrantScopes(
    const v1::GrantScopesRequest& request) {
  return env_.registry.GrantScopes(request, kActor);
}

absl::StatusOr<v1::Key> CoreTarget::RevokeScopes(
    const v1::RevokeScopesRequest& request) {
  return env_.registry.RevokeScopes(request, kActor);
}

absl::StatusOr<v1::Key> CoreTarget::RevokeKey(
    const v1::RevokeKeyRequest& request) {
  return env_.registry.RevokeKey(request, kActor);
}

absl::StatusOr<v1::CreateKeyResponse> CoreTarget::RotateKey(
    const v1::RotateKeyRequest& request) {
  return env_.registry.RotateKey(request, kActor);
}

absl::StatusOr<v1::App> CoreTarget::PutApp(const v1::PutAppRequest& request) {
  return env_.registry.PutApp(request, kActor);
}

absl::StatusOr<v1::Installation> CoreTarget::ApproveInstallation(
    const v1::ApproveInstallationRequest& request) {
  return env_.registry.ApproveInstallation(request, kActor);
}

Target::Answers CoreTarget::Authorize(
    const std::vector<v1::AuthorizeRequest>& requests) {
  Answers out;
  if (requests.size() > 1) {
    v1::BatchAuthorizeRequest batch;
    for (const auto& r : requests) *batch.add_requests() = r;
    v1::BatchAuthorizeResponse response;
    out.batch = env_.engine.BatchAuthorize(batch, &response);
    if (out.batch->ok()) {
      for (auto& r : *response.mutable_responses()) {
        out.each.push_back(std::move(r));
      }
      return out;
    }
  }
  for (const auto& request : requests) {
    v1::AuthorizeResponse response;
    const absl::Status status = env_.engine.Authorize(request, &response);
    if (status.ok()) {
      out.each.push_back(std::move(response));
    } else {
      out.each.push_back(status);
    }
  }
  return out;
}

TargetFactory CoreTargetFactory(size_t key_cache_capacity) {
  return [key_cache_capacity]() -> std::unique_ptr<Target> {
    return std::make_unique<CoreTarget>(key_cache_capacity);
  };
}

}  // namespace scopekeeper::oracle
