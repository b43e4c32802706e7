// Thin gRPC adapters (callback API): each method authenticates where needed,
// calls one core object and converts the result with ToGrpcStatus(). No
// business logic lives here.
#ifndef SCOPEKEEPER_SERVER_GRPC_SERVICES_H_
#define SCOPEKEEPER_SERVER_GRPC_SERVICES_H_

#include "proto/scopekeeper/v1/scopekeeper.grpc.pb.h"
#include "server/grpc/arena_message_allocator.h"
#include "server/grpc/blocking_executor.h"
#include "server/auth/caller_auth.h"
#include "server/decision/decision_engine.h"
#include "server/registry/registry.h"

namespace scopekeeper {

// Does not own its arguments. With a non-null `auth` every call must
// authenticate (UNAUTHENTICATED otherwise); with null the service is open.
class AuthorizerService final : public v1::Authorizer::CallbackService {
 public:
  explicit AuthorizerService(DecisionEngine* engine,
                             const CallerAuthenticator* auth = nullptr)
      : engine_(engine), auth_(auth) {
    SetMessageAllocatorFor_Authorize(&authorize_allocator_);
    SetMessageAllocatorFor_BatchAuthorize(&batch_allocator_);
  }

  grpc::ServerUnaryReactor* Authorize(grpc::CallbackServerContext* context,
                                      const v1::AuthorizeRequest* request,
                                      v1::AuthorizeResponse* response) override;
  grpc::ServerUnaryReactor* BatchAuthorize(
      grpc::CallbackServerContext* context,
      const v1::BatchAuthorizeRequest* request,
      v1::BatchAuthorizeResponse* response) override;
  grpc::ServerUnaryReactor* DescribeKey(
      grpc::CallbackServerContext* context,
      const v1::DescribeKeyRequest* request,
      v1::DescribeKeyResponse* response) override;

 private:
  // OK when the service is open or the caller authenticates.
  absl::Status AuthenticateCaller(
      const grpc::CallbackServerContext* context) const;

  DecisionEngine* const engine_;
  const CallerAuthenticator* const auth_;
  // Each call's messages on one arena (the data plane's hot path).
  ArenaMessageAllocator<v1::AuthorizeRequest, v1::AuthorizeResponse>
      authorize_allocator_;
  // A 100-entry batch takes ~45 KB of messages.
  ArenaMessageAllocator<v1::BatchAuthorizeRequest, v1::BatchAuthorizeResponse,
                        /*kInlineBytes=*/8192, /*kBlockBytes=*/32768>
      batch_allocator_;
};

// Every method requires the admin bearer token. Does not own its arguments.
class AdminService final : public v1::Admin::CallbackService {
 public:
  // Admin calls run on `threads` threads of the service's own (see
  // BlockingExecutor), never on gRPC's callback threads.
  static constexpr int kDefaultThreads = 64;
  AdminService(Registry* registry, const CallerAuthenticator* auth,
               int threads = kDefaultThreads)
      : registry_(registry), auth_(auth), executor_(threads) {}

  grpc::ServerUnaryReactor* PutPolicy(grpc::CallbackServerContext* context,
                                      const v1::PutPolicyRequest* request,
                                      v1::PutPolicyResponse* response) override;
  grpc::ServerUnaryReactor* GetPolicy(grpc::CallbackServerContext* context,
                                      const v1::GetPolicyRequest* request,
                                      v1::Policy* response) override;
  grpc::ServerUnaryReactor* CreateKey(grpc::CallbackServerContext* context,
                                      const v1::CreateKeyRequest* request,
                                      v1::CreateKeyResponse* response) override;
  grpc::ServerUnaryReactor* GetKey(grpc::CallbackServerContext* context,
                                   const v1::GetKeyRequest* request,
                                   v1::Key* response) override;
  grpc::ServerUnaryReactor* ListKeys(grpc::CallbackServerContext* context,
                                     const v1::ListKeysRequest* request,
                                     v1::ListKeysResponse* response) override;
  grpc::ServerUnaryReactor* GrantScopes(grpc::CallbackServerContext* context,
                                        const v1::GrantScopesRequest* request,
                                        v1::Key* response) override;
  grpc::ServerUnaryReactor* RevokeScopes(grpc::CallbackServerContext* context,
                                         const v1::RevokeScopesRequest* request,
                                         v1::Key* response) override;
  grpc::ServerUnaryReactor* RevokeKey(grpc::CallbackServerContext* context,
                                      const v1::RevokeKeyRequest* request,
                                      v1::Key* response) override;
  grpc::ServerUnaryReactor* RotateKey(grpc::CallbackServerContext* context,
                                      const v1::RotateKeyRequest* request,
                                      v1::CreateKeyResponse* response) override;
  grpc::ServerUnaryReactor* PutApp(grpc::CallbackServerContext* context,
                                   const v1::PutAppRequest* request,
                                   v1::App* response) override;
  grpc::ServerUnaryReactor* ApproveInstallation(
      grpc::CallbackServerContext* context,
      const v1::ApproveInstallationRequest* request,
      v1::Installation* response) override;
  grpc::ServerUnaryReactor* GetInstallation(
      grpc::CallbackServerContext* context,
      const v1::GetInstallationRequest* request,
      v1::Installation* response) override;
  grpc::ServerUnaryReactor* ListAuditEvents(
      grpc::CallbackServerContext* context,
      const v1::ListAuditEventsRequest* request,
      v1::ListAuditEventsResponse* response) override;
  grpc::ServerUnaryReactor* CreateBackup(
      grpc::CallbackServerContext* context,
      const v1::CreateBackupRequest* request,
      v1::CreateBackupResponse* response) override;
  // Watch() streams Registry::Changes() after `from_revision`, then each new
  // change as it is applied, until the client cancels or the server stops.
  grpc::ServerWriteReactor<v1::WatchEvent>* Watch(
      grpc::CallbackServerContext* context,
      const v1::WatchRequest* request) override;

 private:
  // Authenticates, then runs fn(actor) -> absl::Status on executor_,
  // finishing the call from there. `fn` must capture by value: it runs after
  // the handler has returned (the request and response stay valid until the
  // call is finished).
  template <typename Fn>
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* context, Fn fn);

  Registry* const registry_;
  const CallerAuthenticator* const auth_;
  BlockingExecutor executor_;  // last: joined first, before what it uses
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_GRPC_SERVICES_H_
