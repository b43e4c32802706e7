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
  // The server, or the replicas of a cluster: "host:port"; a list
  // "host:port,host:port,..." (every replica: calls are spread over them
  // round robin, and a replica that is down is skipped); or any gRPC
  // target ("dns:///sk.internal:50051" spreads over every address the name
  // resolves to, "ipv4:10.0.0.1:50051,10.0.0.2:50051").
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
// first call connects), load-balanced round robin over its addresses.
std::shared_ptr<Connection> MakeGrpcConnection(
    const ConnectionOptions& options);

// GrpcTarget() is the gRPC target of an address as ConnectionOptions
// describes it: a list of IP literals becomes "ipv4:a:p,b:p" (or "ipv6:");
// a list with host names is resolved now (every address of each name); a
// single "host:port" or a target with a scheme is kept.
std::string GrpcTarget(const std::string& address);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_CLIENT_CONNECTION_H_
