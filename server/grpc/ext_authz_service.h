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
// decided (store unavailable, stale replica, caller not authenticated), or a
// request that does not parse: a gRPC error, which Envoy with
// failure_mode_allow: false turns into a denial.
#ifndef SCOPEKEEPER_SERVER_GRPC_EXT_AUTHZ_SERVICE_H_
#define SCOPEKEEPER_SERVER_GRPC_EXT_AUTHZ_SERVICE_H_

#include <grpcpp/support/byte_buffer.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "envoy/service/auth/v3/external_auth.grpc.pb.h"
#include "proto/scopekeeper/v1/scopekeeper.pb.h"
#include "server/auth/caller_auth.h"
#include "server/decision/decision_engine.h"
#include "server/decision/serving_state.h"
#include "server/gateway/gateway.h"
#include "server/grpc/call_tracker.h"
#include "server/metrics/rpc_metrics.h"

namespace scopekeeper {

// A Check whose decision has to wait for a revision (a key written but not
// yet applied): what asking again needs.
struct PendingCheck {
  uint64_t await_revision = 0;
  v1::AuthorizeRequest authorize;  // the Check, translated
  std::string credential_header;   // the header the key came from
};

// TryAnswerCheck() is Check's work without the call (for Check and its
// benchmark): read `raw_request` (a CheckRequest, with ReadCheckRequest()
// of check_wire.h), decide it without waiting, put the CheckResponse into
// `*raw_response`. When the decision has to wait, sets `*pending` instead
// (and returns OK): ask the engine again once pending->await_revision is
// applied and answer with AnswerCheckDecision(). An error when there is no
// answer to send: INVALID_ARGUMENT for a request that does not parse, or
// the reason there is no decision.
absl::Status TryAnswerCheck(DecisionEngine& engine,
                            const GatewaySettings& settings,
                            const grpc::ByteBuffer& raw_request,
                            grpc::ByteBuffer* raw_response,
                            std::optional<PendingCheck>* pending);

// AnswerCheckDecision() puts the CheckResponse for a pending Check's
// decision (TryAuthorize() of pending->authorize, ended with `decided`) into
// `*raw_response`; the error when there is no decision (AnswerDecided()).
absl::Status AnswerCheckDecision(const absl::Status& decided,
                                 const v1::AuthorizeRequest& authorize,
                                 const v1::AuthorizeResponse& decision,
                                 absl::string_view credential_header,
                                 const GatewaySettings& settings,
                                 grpc::ByteBuffer* raw_response);

// Does not own its arguments. With a non-null `auth` every call must
// authenticate as Authorizer calls do (UNAUTHENTICATED otherwise). With
// non-null `rpc_metrics` each call is counted and timed there by the handler
// (RpcMetrics::Call), as the Authorizer's are, so Check needs no metrics
// interceptor (CountedMethods() lists it for RpcMetricsInterceptorFactory).
//
// A raw (ByteBuffer) handler, as the Authorizer's: the request is parsed,
// and the answer built, on the thread's reused arena (CallArena), with the
// AuthorizeRequest/Response made from them; a request that does not parse
// is INVALID_ARGUMENT naming the problem. A decision that has to wait for a
// revision parks the call (ParkedDecision), holding no thread, until the
// revision is applied or the call ends (Envoy's grpc_service timeout is its
// deadline). Calls are tracked in `calls`, so shutdown drains them.
class ExtAuthzService final
    : public envoy::service::auth::v3::Authorization::
          WithRawCallbackMethod_Check<
              envoy::service::auth::v3::Authorization::Service> {
 public:
  ExtAuthzService(DecisionEngine* engine, ServingState* state,
                  CallTracker* calls, const GatewaySettings* settings,
                  const CallerAuthenticator* auth = nullptr,
                  RpcMetrics* rpc_metrics = nullptr);

  // The paths of the methods counted by their handlers.
  static const std::vector<std::string>& CountedMethods();

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* context,
                                  const grpc::ByteBuffer* request,
                                  grpc::ByteBuffer* response) override;

 private:
  DecisionEngine* const engine_;
  ServingState* const state_;
  CallTracker* const calls_;
  const GatewaySettings* const settings_;
  const CallerAuthenticator* const auth_;
  RpcMetrics* const rpc_metrics_;
  int check_metric_ = 0;  // Check's RpcMetrics index
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_GRPC_EXT_AUTHZ_SERVICE_H_
