#include "server/grpc/ext_authz_service.h"

#include <optional>
#include <string>
#include <vector>

#include "base/status_macros.h"
#include "server/grpc/call_context.h"
#include "server/grpc/check_wire.h"
#include "server/grpc/grpc_status.h"
#include "server/grpc/parked_decision.h"
#include "server/grpc/raw_messages.h"

namespace scopekeeper {
namespace {

// The request's headers as Envoy sends them: the `headers` map (lowercase
// keys, repeated headers joined with ','), or with encode_raw_headers the
// `header_map` list (repeated headers kept apart, values in raw_value).
class EnvoyHeaders final : public GatewayHeaders {
 public:
  explicit EnvoyHeaders(const CheckReading& request) : request_(request) {}

  int Count(absl::string_view name, absl::string_view* value) const override {
    if (!request_.headers.empty()) {
      const absl::string_view* found = LastValue(request_.headers, name);
      if (found == nullptr) return 0;
      *value = *found;
      return 1;
    }
    int count = 0;
    for (const CheckReading::HeaderValue& header : request_.header_map) {
      if (header.key != name) continue;
      ++count;
      *value = header.raw_value.empty() ? header.value : header.raw_value;
    }
    return count;
  }

 private:
  const CheckReading& request_;
};

// TryGatewayRequest() for a CheckRequest.
DecisionEngine::Outcome TryCheck(DecisionEngine& engine,
                                 const CheckReading& request,
                                 const GatewaySettings& settings,
                                 v1::AuthorizeRequest* authorize,
                                 v1::AuthorizeResponse* decision,
                                 absl::string_view* credential_header) {
  const EnvoyHeaders headers(request);
  GatewayRequest gateway_request;
  gateway_request.method = request.method;
  gateway_request.host = request.host;
  gateway_request.path = request.path;
  gateway_request.headers = &headers;
  const absl::string_view* api = LastValue(request.context_extensions, "api");
  if (api != nullptr) gateway_request.api = *api;
  return TryGatewayRequest(engine, gateway_request, settings, authorize,
                           decision, credential_header);
}

}  // namespace

absl::Status TryAnswerCheck(DecisionEngine& engine,
                            const GatewaySettings& settings,
                            const grpc::ByteBuffer& raw_request,
                            grpc::ByteBuffer* raw_response,
                            std::optional<PendingCheck>* pending) {
  CheckReading request;
  SK_RETURN_IF_ERROR(ReadCheckRequest(raw_request, &request));
  CallArena arena;
  auto* authorize = arena.Create<v1::AuthorizeRequest>();
  auto* decision = arena.Create<v1::AuthorizeResponse>();
  absl::string_view credential_header;
  const DecisionEngine::Outcome outcome = TryCheck(
      engine, request, settings, authorize, decision, &credential_header);
  if (!outcome.ready()) {
    PendingCheck& wait = pending->emplace();
    wait.await_revision = outcome.await_revision;
    wait.authorize = *authorize;
    wait.credential_header = std::string(credential_header);
    return absl::OkStatus();
  }
  return AnswerCheckDecision(outcome.status, *authorize, *decision,
                             credential_header, settings, raw_response);
}

absl::Status AnswerCheckDecision(const absl::Status& decided,
                                 const v1::AuthorizeRequest& authorize,
                                 const v1::AuthorizeResponse& decision,
                                 absl::string_view credential_header,
                                 const GatewaySettings& settings,
                                 grpc::ByteBuffer* raw_response) {
  UpstreamHeaders upstream;
  if (AllowedUpstream(decided, decision, credential_header, settings,
                      &upstream)) {
    // The common answer, written from the decision's strings.
    SerializeCheckAllowed(upstream, raw_response);
    return absl::OkStatus();
  }
  SK_ASSIGN_OR_RETURN(
      GatewayAnswer answer,
      AnswerDecided(decided, authorize, decision, credential_header, settings));
  SerializeCheckResponse(answer, raw_response);
  return absl::OkStatus();
}

ExtAuthzService::ExtAuthzService(DecisionEngine* engine, ServingState* state,
                                 CallTracker* calls,
                                 const GatewaySettings* settings,
                                 const CallerAuthenticator* auth,
                                 RpcMetrics* rpc_metrics)
    : engine_(engine),
      state_(state),
      calls_(calls),
      settings_(settings),
      auth_(auth),
      rpc_metrics_(rpc_metrics) {
  if (rpc_metrics_ != nullptr) {
    check_metric_ = rpc_metrics_->Find(CountedMethods()[0]);
  }
}

const std::vector<std::string>& ExtAuthzService::CountedMethods() {
  static const auto* const methods = new std::vector<std::string>{
      "/envoy.service.auth.v3.Authorization/Check"};
  return *methods;
}

grpc::ServerUnaryReactor* ExtAuthzService::Check(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
    grpc::ByteBuffer* raw_response) {
  RpcMetrics::Call counted;
  if (rpc_metrics_ != nullptr) counted = rpc_metrics_->Start(check_metric_);
  absl::StatusOr<CallTracker::Call> call = calls_->Enter();
  absl::Status status = call.status();
  if (status.ok() && auth_ != nullptr) {
    status = AuthenticateCall(*auth_, context).status();
  }
  std::optional<PendingCheck> pending;
  if (status.ok()) {
    status = TryAnswerCheck(*engine_, *settings_, *raw_request, raw_response,
                            &pending);
  }
  if (status.ok() && pending.has_value()) {
    // Not decidable yet: park the call (no thread waits), as Authorize does.
    auto* parked =
        new ParkedDecision<v1::AuthorizeRequest, v1::AuthorizeResponse>(
            state_, *std::move(call), std::move(counted),
            std::move(pending->authorize), raw_response,
            [engine = engine_](const v1::AuthorizeRequest& r,
                               v1::AuthorizeResponse* out) {
              return engine->TryAuthorize(r, out);
            },
            [settings = settings_,
             credential = std::move(pending->credential_header)](
                const absl::Status& decided, const v1::AuthorizeRequest& r,
                const v1::AuthorizeResponse& decision, grpc::ByteBuffer* raw) {
              return AnswerCheckDecision(decided, r, decision, credential,
                                         *settings, raw);
            });
    parked->Park(pending->await_revision);
    return parked;
  }
  const grpc::Status grpc_status = ToGrpcStatus(status);
  counted.Done(grpc_status.error_code());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc_status);
  return reactor;
}

}  // namespace scopekeeper
