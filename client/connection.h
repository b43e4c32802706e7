// Connection: one Scopekeeper RPC per method, no retries, no policy — the
// seam between scopekeeper::Client and the network. Client adds deadlines,
// retries and fail-closed decisions on top; tests replace the Connection with
// MockConnection (client/mocks.h) and never open a socket.
#ifndef SCOPEKEEPER_CLIENT_CONNECTION_H_
#define SCOPEKEEPER_CLIENT_CONNECTION_H_

#include <grpcpp/security/credentials.h>

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "proto/scopekeeper/v1/scopekeeper.pb.h"

namespace scopekeeper {

// Every method sends one request with `deadline` and returns the response or
// the call's status (gRPC codes map one to one onto absl codes). Thread-safe.
class Connection {
 public:
  virtual ~Connection() = default;

  // Data plane (scopekeeper.v1.Authorizer).
  virtual absl::StatusOr<v1::AuthorizeResponse> Authorize(
      const v1::AuthorizeRequest& request, absl::Time deadline) = 0;
  virtual absl::StatusOr<v1::BatchAuthorizeResponse> BatchAuthorize(
      const v1::BatchAuthorizeRequest& request, absl::Time deadline) = 0;
  virtual absl::StatusOr<v1::DescribeKeyResponse> DescribeKey(
      const v1::DescribeKeyRequest& request, absl::Time deadline) = 0;

  // Control plane (scopekeeper.v1.Admin).
  virtual absl::StatusOr<v1::PutPolicyResponse> PutPolicy(
      const v1::PutPolicyRequest& request, absl::Time deadline) = 0;
  virtual absl::StatusOr<v1::Policy> GetPolicy(
      const v1::GetPolicyRequest& request, absl::Time deadline) = 0;
  virtual absl::StatusOr<v1::CreateKeyResponse> CreateKey(
      const v1::CreateKeyRequest& request, absl::Time deadline) = 0;
  virtual absl::StatusOr<v1::Key> GetKey(const v1::GetKeyRequest& request,
                                         absl::Time deadline) = 0;
  virtual absl::StatusOr<v1::ListKeysResponse> ListKeys(
      const v1::ListKeysRequest& request, absl::Time deadline) = 0;
  virtual absl::StatusOr<v1::Key> GrantScopes(
      const v1::GrantScopesRequest& request, absl::Time deadline) = 0;
  virtual absl::StatusOr<v1::Key> RevokeScopes(
      const v1::RevokeScopesRequest& request, absl::Time deadline) = 0;
  virtual absl::StatusOr<v1::Key> RevokeKey(const v1::RevokeKeyRequest& request,
                                            absl::Time deadline) = 0;
  virtual absl::StatusOr<v1::CreateKeyResponse> RotateKey(
      const v1::RotateKeyRequest& request, absl::Time deadline) = 0;
  virtual absl::StatusOr<v1::App> PutApp(const v1::PutAppRequest& request,
                                         absl::Time deadline) = 0;
  virtual absl::StatusOr<v1::Installation> ApproveInstallation(
      const v1::ApproveInstallationRequest& request, absl::Time deadline) = 0;
  virtual absl::StatusOr<v1::Installation> GetInstallation(
      const v1::GetInstallationRequest& request, absl::Time deadline) = 0;
  virtual absl::StatusOr<v1::ListAuditEventsResponse> ListAuditEvents(
      const v1::ListAuditEventsRequest& request, absl::Time deadline) = 0;
  // Watch() opens the change stream and calls `on_event` with each event, in
  // order, on the calling thread, until `on_event` returns false (then the
  // stream is cancelled and Watch() returns OK), the server ends the stream
  // (OK), or the call fails (its status, e.g. DEADLINE_EXCEEDED when
  // `deadline` passes; absl::InfiniteFuture() means no deadline).
  virtual absl::Status Watch(
      const v1::WatchRequest& request, absl::Time deadline,
      const std::function<bool(const v1::WatchEvent&)>& on_event) = 0;
  virtual absl::StatusOr<v1::CreateBackupResponse> CreateBackup(
      const v1::CreateBackupRequest& request, absl::Time deadline) = 0;
};

struct ConnectionOptions {
  // "host:port" of the server.
  std::string address;
  // Channel credentials; null means plaintext (loopback / trusted network).
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  // Sent as `authorization: Bearer <token>` on Admin calls when non-empty.
  std::string admin_token;
  // Sent as `authorization: Bearer <token>` on Authorizer calls when
  // non-empty (servers started with --authorizer_token_file).
  std::string authorizer_token;
};

// MakeGrpcConnection() opens a channel to `options.address` (lazily: the
// first call connects).
std::shared_ptr<Connection> MakeGrpcConnection(
    const ConnectionOptions& options);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_CLIENT_CONNECTION_H_
