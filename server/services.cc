#include "server/services.h"

#include <chrono>
#include <optional>
#include <utility>

#include "absl/time/time.h"
#include "server/grpc_status.h"

namespace scopekeeper {
namespace {

// The call's deadline; InfiniteFuture() when the client set none (gRPC
// reports that as a far-future time point that absl cannot represent).
absl::Time DeadlineOf(const grpc::CallbackServerContext* context) {
  const auto deadline = context->deadline();
  if (deadline >=
      std::chrono::system_clock::now() + std::chrono::hours(24 * 365)) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

std::optional<absl::string_view> AuthorizationHeader(
    const grpc::CallbackServerContext* context) {
  const auto& metadata = context->client_metadata();
  auto it = metadata.find("authorization");
  if (it == metadata.end()) return std::nullopt;
  return absl::string_view(it->second.data(), it->second.size());
}

// Moves a StatusOr's value into *out.
template <typename T>
absl::Status Assign(absl::StatusOr<T> result, T* out) {
  if (!result.ok()) return result.status();
  *out = *std::move(result);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context,
                                 const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

grpc::ServerUnaryReactor* AuthorizerService::Authorize(
    grpc::CallbackServerContext* context, const v1::AuthorizeRequest* request,
    v1::AuthorizeResponse* response) {
  return Finish(context,
                engine_->Authorize(*request, DeadlineOf(context), response));
}

grpc::ServerUnaryReactor* AuthorizerService::BatchAuthorize(
    grpc::CallbackServerContext* context,
    const v1::BatchAuthorizeRequest* request,
    v1::BatchAuthorizeResponse* response) {
  return Finish(context, engine_->BatchAuthorize(*request, DeadlineOf(context),
                                                 response));
}

grpc::ServerUnaryReactor* AuthorizerService::DescribeKey(
    grpc::CallbackServerContext* context, const v1::DescribeKeyRequest* request,
    v1::DescribeKeyResponse* response) {
  return Finish(context, engine_->DescribeKey(*request, response));
}

template <typename Fn>
grpc::ServerUnaryReactor* AdminService::Run(
    grpc::CallbackServerContext* context, Fn fn) {
  absl::StatusOr<std::string> actor =
      auth_->Authenticate(AuthorizationHeader(context));
  if (!actor.ok()) return Finish(context, actor.status());
  return Finish(context, fn(*actor));
}

grpc::ServerUnaryReactor* AdminService::PutPolicy(
    grpc::CallbackServerContext* context, const v1::PutPolicyRequest* request,
    v1::PutPolicyResponse* response) {
  return Run(context, [&](absl::string_view actor) {
    absl::StatusOr<uint64_t> revision =
        registry_->PutPolicy(request->policy(), actor);
    if (revision.ok()) response->set_revision(*revision);
    return revision.status();
  });
}

grpc::ServerUnaryReactor* AdminService::GetPolicy(
    grpc::CallbackServerContext* context, const v1::GetPolicyRequest* request,
    v1::Policy* response) {
  return Run(context, [&](absl::string_view) {
    *response = registry_->GetPolicy();
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::CreateKey(
    grpc::CallbackServerContext* context, const v1::CreateKeyRequest* request,
    v1::CreateKeyResponse* response) {
  return Run(context, [&](absl::string_view actor) {
    return Assign(registry_->CreateKey(*request, actor), response);
  });
}

grpc::ServerUnaryReactor* AdminService::GetKey(
    grpc::CallbackServerContext* context, const v1::GetKeyRequest* request,
    v1::Key* response) {
  return Run(context, [&](absl::string_view) {
    return Assign(registry_->GetKey(*request), response);
  });
}

grpc::ServerUnaryReactor* AdminService::ListKeys(
    grpc::CallbackServerContext* context, const v1::ListKeysRequest* request,
    v1::ListKeysResponse* response) {
  return Run(context, [&](absl::string_view) {
    return Assign(registry_->ListKeys(*request), response);
  });
}

grpc::ServerUnaryReactor* AdminService::GrantScopes(
    grpc::CallbackServerContext* context, const v1::GrantScopesRequest* request,
    v1::Key* response) {
  return Run(context, [&](absl::string_view actor) {
    return Assign(registry_->GrantScopes(*request, actor), response);
  });
}

grpc::ServerUnaryReactor* AdminService::RevokeScopes(
    grpc::CallbackServerContext* context,
    const v1::RevokeScopesRequest* request, v1::Key* response) {
  return Run(context, [&](absl::string_view actor) {
    return Assign(registry_->RevokeScopes(*request, actor), response);
  });
}

grpc::ServerUnaryReactor* AdminService::RevokeKey(
    grpc::CallbackServerContext* context, const v1::RevokeKeyRequest* request,
    v1::Key* response) {
  return Run(context, [&](absl::string_view actor) {
    return Assign(registry_->RevokeKey(*request, actor), response);
  });
}

grpc::ServerUnaryReactor* AdminService::RotateKey(
    grpc::CallbackServerContext* context, const v1::RotateKeyRequest* request,
    v1::CreateKeyResponse* response) {
  return Run(context, [&](absl::string_view actor) {
    return Assign(registry_->RotateKey(*request, actor), response);
  });
}

grpc::ServerUnaryReactor* AdminService::PutApp(
    grpc::CallbackServerContext* context, const v1::PutAppRequest* request,
    v1::App* response) {
  return Run(context, [&](absl::string_view actor) {
    return Assign(registry_->PutApp(*request, actor), response);
  });
}

grpc::ServerUnaryReactor* AdminService::ApproveInstallation(
    grpc::CallbackServerContext* context,
    const v1::ApproveInstallationRequest* request, v1::Installation* response) {
  return Run(context, [&](absl::string_view actor) {
    return Assign(registry_->ApproveInstallation(*request, actor), response);
  });
}

grpc::ServerUnaryReactor* AdminService::GetInstallation(
    grpc::CallbackServerContext* context,
    const v1::GetInstallationRequest* request, v1::Installation* response) {
  return Run(context, [&](absl::string_view) {
    return Assign(registry_->GetInstallation(*request), response);
  });
}

grpc::ServerUnaryReactor* AdminService::ListAuditEvents(
    grpc::CallbackServerContext* context,
    const v1::ListAuditEventsRequest* request,
    v1::ListAuditEventsResponse* response) {
  return Run(context, [&](absl::string_view) {
    return Assign(registry_->ListAuditEvents(*request), response);
  });
}

}  // namespace scopekeeper
