// ExtAuthzService: Envoy's external authorization API
// (envoy.service.auth.v3.Authorization/Check, ext_authz filter with
// transport_api_version V3), served on the main port beside Authorizer. A
// thin adapter: CheckRequest -> GatewayRequest -> DecisionEngine ->
// GatewayAnswer -> CheckResponse (see server/gateway/gateway.h).
//
// Allowed: status OK and an OkHttpResponse setting the x-scopekeeper-*
// identity headers (removing the empty ones and, with hide_credentials, the
// credential). Denied: status UNAUTHENTICATED, PERMISSION_DENIED, NOT_FOUND
// or INVALID_ARGUMENT (Envoy lets any OK status through) and a
// DeniedHttpResponse with the decision's HTTP status and JSON body. Not
// decided (store unavailable, stale replica, caller not authenticated): a
// gRPC error, which Envoy with failure_mode_allow: false turns into a denial.
#ifndef SCOPEKEEPER_SERVER_GRPC_EXT_AUTHZ_SERVICE_H_
#define SCOPEKEEPER_SERVER_GRPC_EXT_AUTHZ_SERVICE_H_

#include "envoy/service/auth/v3/external_auth.grpc.pb.h"
#include "server/auth/caller_auth.h"
#include "server/decision/decision_engine.h"
#include "server/gateway/gateway.h"
#include "server/grpc/arena_message_allocator.h"

namespace scopekeeper {

// Does not own its arguments. With a non-null `auth` every call must
// authenticate as Authorizer calls do (UNAUTHENTICATED otherwise).
class ExtAuthzService final
    : public envoy::service::auth::v3::Authorization::CallbackService {
 public:
  ExtAuthzService(DecisionEngine* engine, const GatewaySettings* settings,
                  const CallerAuthenticator* auth = nullptr)
      : engine_(engine), settings_(settings), auth_(auth) {
    SetMessageAllocatorFor_Check(&allocator_);
  }

  grpc::ServerUnaryReactor* Check(
      grpc::CallbackServerContext* context,
      const envoy::service::auth::v3::CheckRequest* request,
      envoy::service::auth::v3::CheckResponse* response) override;

 private:
  DecisionEngine* const engine_;
  const GatewaySettings* const settings_;
  const CallerAuthenticator* const auth_;
  // Each call's messages, and the AuthorizeRequest/Response made from them,
  // on one arena. Envoy sends every request header: ~2 KB of messages.
  ArenaMessageAllocator<envoy::service::auth::v3::CheckRequest,
                        envoy::service::auth::v3::CheckResponse,
                        /*kInlineBytes=*/4096>
      allocator_;
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_GRPC_EXT_AUTHZ_SERVICE_H_
