// Thin gRPC adapters (callback API): each method authenticates where needed,
// calls one core object and converts the result with ToGrpcStatus(). No
// business logic lives here.
//
// Every method is "raw" (grpc::ByteBuffer in and out): the adapters parse
// requests themselves (raw_messages.h), so a malformed request is
// INVALID_ARGUMENT naming the problem instead of gRPC's empty UNIMPLEMENTED.
// Nothing here blocks a gRPC callback thread: a decision that needs a
// revision not yet applied is parked on the serving state and finished from
// the thread that applies it (or cancelled with the call); admin calls run
// on the service's own threads; Watch streams are event-driven
// (ChangeFeed). Every call is counted (CallTracker) so that shutdown waits
// for the calls in flight and nothing else.
#ifndef SCOPEKEEPER_SERVER_GRPC_SERVICES_H_
#define SCOPEKEEPER_SERVER_GRPC_SERVICES_H_

#include <grpcpp/support/byte_buffer.h>

#include <string>
#include <vector>

#include "base/blocking_executor.h"
#include "proto/scopekeeper/v1/scopekeeper.grpc.pb.h"
#include "server/auth/caller_auth.h"
#include "server/decision/decision_engine.h"
#include "server/decision/serving_state.h"
#include "server/grpc/call_tracker.h"
#include "server/metrics/rpc_metrics.h"
#include "server/registry/change_feed.h"
#include "server/registry/registry.h"

namespace scopekeeper {

// Does not own its arguments. With a non-null `auth` every call must
// authenticate (UNAUTHENTICATED otherwise); with null the service is open.
// With non-null `rpc_metrics` each call is counted and timed there by its
// handler (RpcMetrics::Call), so these methods need no metrics interceptor
// (CountedMethods() lists them for RpcMetricsInterceptorFactory).
class AuthorizerService final
    : public v1::Authorizer::WithRawCallbackMethod_Authorize<
          v1::Authorizer::WithRawCallbackMethod_BatchAuthorize<
              v1::Authorizer::WithRawCallbackMethod_DescribeKey<
                  v1::Authorizer::Service>>> {
 public:
  AuthorizerService(DecisionEngine* engine, ServingState* state,
                    CallTracker* calls,
                    const CallerAuthenticator* auth = nullptr,
                    RpcMetrics* rpc_metrics = nullptr);

  // The paths of the methods counted by their handlers.
  static const std::vector<std::string>& CountedMethods();

  grpc::ServerUnaryReactor* Authorize(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* request,
                                      grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* BatchAuthorize(grpc::CallbackServerContext* context,
                                           const grpc::ByteBuffer* request,
                                           grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* DescribeKey(grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer* request,
                                        grpc::ByteBuffer* response) override;

 private:
  // Decide() parses the request, calls `attempt` (a DecisionEngine Try*()
  // call) and finishes, or parks the call until the revision it needs is
  // applied and asks again.
  template <typename Request, typename Response, typename Attempt>
  grpc::ServerUnaryReactor* Decide(grpc::CallbackServerContext* context,
                                   int method,
                                   const grpc::ByteBuffer* raw_request,
                                   grpc::ByteBuffer* raw_response,
                                   Attempt attempt);

  // The methods' RpcMetrics indices (CountedMethods() order).
  enum Method { kAuthorize, kBatchAuthorize, kDescribeKey, kMethods };

  DecisionEngine* const engine_;
  ServingState* const state_;
  CallTracker* const calls_;
  const CallerAuthenticator* const auth_;
  RpcMetrics* const rpc_metrics_;
  int metric_index_[kMethods] = {};
};

// Every method requires the admin credential. Does not own its arguments.
class AdminService final
    : public v1::Admin::WithRawCallbackMethod_PutPolicy<v1::Admin::WithRawCallbackMethod_GetPolicy<
          v1::Admin::WithRawCallbackMethod_CreateKey<v1::Admin::WithRawCallbackMethod_GetKey<
              v1::Admin::WithRawCallbackMethod_ListKeys<v1::Admin::WithRawCallbackMethod_GrantScopes<
                  v1::Admin::WithRawCallbackMethod_RevokeScopes<
                      v1::Admin::WithRawCallbackMethod_RevokeKey<
                          v1::Admin::WithRawCallbackMethod_RotateKey<
                              v1::Admin::WithRawCallbackMethod_PutApp<
                                  v1::Admin::WithRawCallbackMethod_ApproveInstallation<
                                      v1::Admin::WithRawCallbackMethod_GetInstallation<
                                          v1::Admin::WithRawCallbackMethod_ListAuditEvents<
                                              v1::Admin::WithRawCallbackMethod_CreateBackup<
                                                  v1::Admin::WithRawCallbackMethod_Watch<
                                                      v1::Admin::
                                                          Service>>>>>>>>>>>>>>> {
 public:
  // Admin calls run on `threads` threads of the service's own (see
  // BlockingExecutor), never on gRPC's callback threads.
  static constexpr int kDefaultThreads = 64;
  AdminService(Registry* registry, ChangeFeed* feed, CallTracker* calls,
               const CallerAuthenticator* auth, int threads = kDefaultThreads)
      : registry_(registry),
        feed_(feed),
        calls_(calls),
        auth_(auth),
        executor_(threads) {}

#define SK_ADMIN_METHOD(Name)                                          \
  grpc::ServerUnaryReactor* Name(grpc::CallbackServerContext* context, \
                                 const grpc::ByteBuffer* request,      \
                                 grpc::ByteBuffer* response) override
  SK_ADMIN_METHOD(PutPolicy);
  SK_ADMIN_METHOD(GetPolicy);
  SK_ADMIN_METHOD(CreateKey);
  SK_ADMIN_METHOD(GetKey);
  SK_ADMIN_METHOD(ListKeys);
  SK_ADMIN_METHOD(GrantScopes);
  SK_ADMIN_METHOD(RevokeScopes);
  SK_ADMIN_METHOD(RevokeKey);
  SK_ADMIN_METHOD(RotateKey);
  SK_ADMIN_METHOD(PutApp);
  SK_ADMIN_METHOD(ApproveInstallation);
  SK_ADMIN_METHOD(GetInstallation);
  SK_ADMIN_METHOD(ListAuditEvents);
  SK_ADMIN_METHOD(CreateBackup);
#undef SK_ADMIN_METHOD

  // Watch() streams the changes after `from_revision` (ChangeFeed).
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Watch(
      grpc::CallbackServerContext* context,
      const grpc::ByteBuffer* request) override;

 private:
  // Run() authenticates and parses a Request, then runs
  // fn(actor, request) -> absl::StatusOr<Response> on executor_ and
  // finishes the call from there with the response.
  template <typename Request, typename Fn>
  grpc::ServerUnaryReactor* Run(grpc::CallbackServerContext* context,
                                const grpc::ByteBuffer* raw_request,
                                grpc::ByteBuffer* raw_response, Fn fn);

  Registry* const registry_;
  ChangeFeed* const feed_;
  CallTracker* const calls_;
  const CallerAuthenticator* const auth_;
  BlockingExecutor executor_;  // last: joined first, before what it uses
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_GRPC_SERVICES_H_
