#include "tests/oracle/server_target.h"

#include <grpcpp/grpcpp.h>

#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace scopekeeper::oracle {
namespace {

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

template <typename T>
uint64_t NoRevision(const T&) {
  return 0;
}
uint64_t KeyRevision(const v1::Key& key) { return key.revision(); }
template <typename T>
uint64_t ResponseRevision(const T& response) {
  return response.revision();
}

}  // namespace

absl::StatusOr<std::unique_ptr<LocalServer>> LocalServer::Start(
    const std::string& data_dir, int64_t key_cache_capacity) {
  std::unique_ptr<LocalServer> local(new LocalServer);
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.data_dir = data_dir;
  options.key_cache_capacity = key_cache_capacity;
  options.clock = &local->clock_;
  absl::StatusOr<std::unique_ptr<ScopekeeperServer>> server =
      ScopekeeperServer::Start(options);
  if (!server.ok()) return server.status();
  local->server_ = *std::move(server);
  std::ifstream token(local->server_->admin_token_path());
  std::getline(token, local->admin_token_);
  if (local->admin_token_.empty()) {
    return absl::InternalError("no admin token");
  }
  return local;
}

ServerTarget::ServerTarget(const std::vector<std::string>& addresses,
                           std::string admin_token, FakeClock* clock)
    : admin_token_(std::move(admin_token)), clock_(clock) {
  for (const std::string& address : addresses) {
    auto channel =
        grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    replicas_.push_back(
        {v1::Authorizer::NewStub(channel), v1::Admin::NewStub(channel)});
  }
}

template <typename Request, typename Response, typename Method>
absl::StatusOr<Response> ServerTarget::Admin(
    Method method, const Request& request,
    uint64_t (*revision)(const Response&)) {
  grpc::ClientContext context;
  context.AddMetadata("authorization", "Bearer " + admin_token_);
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
  Response response;
  Replica& replica = Next();
  const grpc::Status status =
      (replica.admin.get()->*method)(&context, request, &response);
  if (!status.ok()) return FromGrpc(status);
  uint64_t written = revision(response);
  if (written == 0 && replicas_.size() > 1) {
    // Apps and installations carry no revision: the replica that wrote one
    // had applied it before answering, so its serving revision covers it.
    SK_ASSIGN_OR_RETURN(written, ServingRevision(replica));
  }
  last_write_ = std::max(last_write_, written);
  return response;
}

absl::StatusOr<uint64_t> ServerTarget::ServingRevision(Replica& replica) {
  v1::AuthorizeRequest probe;  // an unknown key: denied, with the revision
  probe.set_api_key("oracle-revision-probe");
  probe.mutable_requirement()->set_authenticated_only(true);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(30));
  v1::AuthorizeResponse response;
  const grpc::Status status =
      replica.authorizer->Authorize(&context, probe, &response);
  if (!status.ok()) return FromGrpc(status);
  if (response.allowed() || response.revision() == 0) {
    return absl::InternalError(absl::StrCat(
        "revision probe: unexpected answer ", response.ShortDebugString()));
  }
  return response.revision();
}

absl::StatusOr<v1::PutPolicyResponse> ServerTarget::PutPolicy(
    const v1::PutPolicyRequest& request) {
  return Admin(&v1::Admin::Stub::PutPolicy, request,
               &ResponseRevision<v1::PutPolicyResponse>);
}
absl::StatusOr<v1::CreateKeyResponse> ServerTarget::CreateKey(
    const v1::CreateKeyRequest& request) {
  return Admin(&v1::Admin::Stub::CreateKey, request,
               &ResponseRevision<v1::CreateKeyResponse>);
}
absl::StatusOr<v1::Key> ServerTarget::GrantScopes(
    const v1::GrantScopesRequest& request) {
  return Admin(&v1::Admin::Stub::GrantScopes, request, &KeyRevision);
}
absl::StatusOr<v1::Key> ServerTarget::RevokeScopes(
    const v1::RevokeScopesRequest& request) {
  return Admin(&v1::Admin::Stub::RevokeScopes, request, &KeyRevision);
}
absl::StatusOr<v1::Key> ServerTarget::RevokeKey(
    const v1::RevokeKeyRequest& request) {
  return Admin(&v1::Admin::Stub::RevokeKey, request, &KeyRevision);
}
absl::StatusOr<v1::CreateKeyResponse> ServerTarget::RotateKey(
    const v1::RotateKeyRequest& request) {
  return Admin(&v1::Admin::Stub::RotateKey, request,
               &ResponseRevision<v1::CreateKeyResponse>);
}
absl::StatusOr<v1::App> ServerTarget::PutApp(const v1::PutAppRequest& request) {
  return Admin(&v1::Admin::Stub::PutApp, request, &NoRevision<v1::App>);
}
absl::StatusOr<v1::Installation> ServerTarget::ApproveInstallation(
    const v1::ApproveInstallationRequest& request) {
  return Admin(&v1::Admin::Stub::ApproveInstallation, request,
               &NoRevision<v1::Installation>);
}

Target::Answers ServerTarget::Authorize(
    const std::vector<v1::AuthorizeRequest>& requests) {
  std::vector<v1::AuthorizeRequest> sent = requests;
  if (replicas_.size() > 1) {
    for (auto& r : sent) {
      r.set_min_revision(std::max(r.min_revision(), last_write_));
    }
  }
  auto deadline = [] {
    return std::chrono::system_clock::now() + std::chrono::seconds(30);
  };
  Answers out;
  if (sent.size() > 1) {
    v1::BatchAuthorizeRequest batch;
    for (const auto& r : sent) *batch.add_requests() = r;
    v1::BatchAuthorizeResponse response;
    grpc::ClientContext context;
    context.set_deadline(deadline());
    out.batch =
        FromGrpc(Next().authorizer->BatchAuthorize(&context, batch, &response));
    if (out.batch->ok()) {
      for (auto& r : *response.mutable_responses()) {
        out.each.push_back(std::move(r));
      }
      return out;
    }
  }
  for (const auto& request : sent) {
    v1::AuthorizeResponse response;
    grpc::ClientContext context;
    context.set_deadline(deadline());
    const grpc::Status status =
        Next().authorizer->Authorize(&context, request, &response);
    if (status.ok()) {
      out.each.push_back(std::move(response));
    } else {
      out.each.push_back(FromGrpc(status));
    }
  }
  return out;
}

TargetFactory ServerTargetFactory(std::vector<std::string> addresses,
                                  std::string admin_token, FakeClock* clock) {
  return [=]() -> std::unique_ptr<Target> {
    return std::make_unique<ServerTarget>(addresses, admin_token, clock);
  };
}

}  // namespace scopekeeper::oracle
