#include "server/grpc/call_context.h"

#include <grpc/grpc_security_constants.h>

#include <chrono>
#include <optional>
#include <vector>

namespace scopekeeper {

absl::Time DeadlineOf(const grpc::CallbackServerContext* context) {
  const auto deadline = context->deadline();
  if (deadline >=
      std::chrono::system_clock::now() + std::chrono::hours(24 * 365)) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

absl::StatusOr<std::string> AuthenticateCall(
    const CallerAuthenticator& auth,
    const grpc::CallbackServerContext* context) {
  std::optional<absl::string_view> authorization;
  const auto& metadata = context->client_metadata();
  auto it = metadata.find("authorization");
  if (it != metadata.end()) {
    authorization = absl::string_view(it->second.data(), it->second.size());
  }
  std::vector<std::string> subjects;
  const std::shared_ptr<const grpc::AuthContext> peer = context->auth_context();
  if (peer != nullptr && peer->IsPeerAuthenticated()) {
    for (const grpc::string_ref& value :
         peer->FindPropertyValues(GRPC_X509_SUBJECT_PROPERTY_NAME)) {
      subjects.emplace_back(value.data(), value.size());
    }
  }
  return auth.Authenticate(authorization, subjects);
}

}  // namespace scopekeeper
