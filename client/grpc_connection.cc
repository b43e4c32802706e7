// The gRPC implementation of Connection over the generated stubs.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "client/connection.h"
#include "proto/scopekeeper/v1/scopekeeper.grpc.pb.h"

namespace scopekeeper {
namespace {

// The one place grpc::Status becomes absl::Status in the client.
absl::Status FromGrpcStatus(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

class GrpcConnection final : public Connection {
 public:
  explicit GrpcConnection(const ConnectionOptions& options)
      : channel_(grpc::CreateChannel(options.address,
                                     options.credentials != nullptr
                                         ? options.credentials
                                         : grpc::InsecureChannelCredentials())),
        authorizer_(v1::Authorizer::NewStub(channel_)),
        admin_(v1::Admin::NewStub(channel_)),
        admin_token_(options.admin_token),
        authorizer_token_(options.authorizer_token) {}

  absl::StatusOr<v1::AuthorizeResponse> Authorize(
      const v1::AuthorizeRequest& request, absl::Time deadline) override {
    return Data(&v1::Authorizer::Stub::Authorize, request, deadline);
  }
  absl::StatusOr<v1::BatchAuthorizeResponse> BatchAuthorize(
      const v1::BatchAuthorizeRequest& request, absl::Time deadline) override {
    return Data(&v1::Authorizer::Stub::BatchAuthorize, request, deadline);
  }
  absl::StatusOr<v1::DescribeKeyResponse> DescribeKey(
      const v1::DescribeKeyRequest& request, absl::Time deadline) override {
    return Data(&v1::Authorizer::Stub::DescribeKey, request, deadline);
  }

  absl::StatusOr<v1::PutPolicyResponse> PutPolicy(
      const v1::PutPolicyRequest& request, absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::PutPolicy, request, deadline);
  }
  absl::StatusOr<v1::Policy> GetPolicy(const v1::GetPolicyRequest& request,
                                       absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::GetPolicy, request, deadline);
  }
  absl::StatusOr<v1::CreateKeyResponse> CreateKey(
      const v1::CreateKeyRequest& request, absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::CreateKey, request, deadline);
  }
  absl::StatusOr<v1::Key> GetKey(const v1::GetKeyRequest& request,
                                 absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::GetKey, request, deadline);
  }
  absl::StatusOr<v1::ListKeysResponse> ListKeys(
      const v1::ListKeysRequest& request, absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::ListKeys, request, deadline);
  }
  absl::StatusOr<v1::Key> GrantScopes(const v1::GrantScopesRequest& request,
                                      absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::GrantScopes, request, deadline);
  }
  absl::StatusOr<v1::Key> RevokeScopes(const v1::RevokeScopesRequest& request,
                                       absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::RevokeScopes, request, deadline);
  }
  absl::StatusOr<v1::Key> RevokeKey(const v1::RevokeKeyRequest& request,
                                    absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::RevokeKey, request, deadline);
  }
  absl::StatusOr<v1::CreateKeyResponse> RotateKey(
      const v1::RotateKeyRequest& request, absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::RotateKey, request, deadline);
  }
  absl::StatusOr<v1::App> PutApp(const v1::PutAppRequest& request,
                                 absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::PutApp, request, deadline);
  }
  absl::StatusOr<v1::Installation> ApproveInstallation(
      const v1::ApproveInstallationRequest& request,
      absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::ApproveInstallation, request, deadline);
  }
  absl::StatusOr<v1::Installation> GetInstallation(
      const v1::GetInstallationRequest& request, absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::GetInstallation, request, deadline);
  }
  absl::StatusOr<v1::ListAuditEventsResponse> ListAuditEvents(
      const v1::ListAuditEventsRequest& request, absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::ListAuditEvents, request, deadline);
  }
  absl::Status Watch(
      const v1::WatchRequest& request, absl::Time deadline,
      const std::function<bool(const v1::WatchEvent&)>& on_event) override {
    grpc::ClientContext context;
    SetUp(&context, deadline, admin_token_);
    std::unique_ptr<grpc::ClientReader<v1::WatchEvent>> reader =
        admin_->Watch(&context, request);
    v1::WatchEvent event;
    bool stopped = false;
    while (reader->Read(&event)) {
      if (!on_event(event)) {
        stopped = true;
        context.TryCancel();
        while (reader->Read(&event)) {
        }  // drain what was in flight before Finish()
        break;
      }
    }
    const grpc::Status status = reader->Finish();
    if (stopped) return absl::OkStatus();
    return FromGrpcStatus(status);
  }
  absl::StatusOr<v1::CreateBackupResponse> CreateBackup(
      const v1::CreateBackupRequest& request, absl::Time deadline) override {
    return Admin(&v1::Admin::Stub::CreateBackup, request, deadline);
  }

 private:
  // Sets `deadline` (unless infinite) and, when `token` is set, the bearer
  // metadata on `context`.
  static void SetUp(grpc::ClientContext* context, absl::Time deadline,
                    const std::string& token) {
    if (deadline != absl::InfiniteFuture()) {
      context->set_deadline(absl::ToChronoTime(deadline));
    }
    if (!token.empty()) {
      context->AddMetadata("authorization", "Bearer " + token);
    }
  }

  // One unary call on `stub` with `deadline` and, when `token` is set, the
  // bearer metadata.
  template <typename Stub, typename Request, typename Response>
  static absl::StatusOr<Response> Call(
      Stub* stub,
      grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&,
                                   Response*),
      const Request& request, absl::Time deadline, const std::string& token) {
    grpc::ClientContext context;
    SetUp(&context, deadline, token);
    Response response;
    const grpc::Status status = (stub->*method)(&context, request, &response);
    if (!status.ok()) return FromGrpcStatus(status);
    return response;
  }

  template <typename Request, typename Response>
  absl::StatusOr<Response> Data(
      grpc::Status (v1::Authorizer::Stub::*method)(grpc::ClientContext*,
                                                   const Request&, Response*),
      const Request& request, absl::Time deadline) {
    return Call(authorizer_.get(), method, request, deadline,
                authorizer_token_);
  }

  template <typename Request, typename Response>
  absl::StatusOr<Response> Admin(
      grpc::Status (v1::Admin::Stub::*method)(grpc::ClientContext*,
                                              const Request&, Response*),
      const Request& request, absl::Time deadline) {
    return Call(admin_.get(), method, request, deadline, admin_token_);
  }

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Authorizer::Stub> authorizer_;
  std::unique_ptr<v1::Admin::Stub> admin_;
  const std::string admin_token_;
  const std::string authorizer_token_;
};

}  // namespace

std::shared_ptr<Connection> MakeGrpcConnection(
    const ConnectionOptions& options) {
  return std::make_shared<GrpcConnection>(options);
}

}  // namespace scopekeeper
