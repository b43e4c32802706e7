#include "server/grpc/ext_authz_service.h"

#include <optional>
#include <string>
#include <vector>

#include "base/status_macros.h"
#include "server/grpc/call_context.h"
#include "server/grpc/grpc_status.h"
#include "server/grpc/parked_decision.h"
#include "server/grpc/raw_messages.h"

namespace scopekeeper {
namespace {

using ::envoy::config::core::v3::HeaderValueOption;
using ::envoy::service::auth::v3::AttributeContext;
using ::envoy::service::auth::v3::CheckRequest;
using ::envoy::service::auth::v3::CheckResponse;

// The request's headers as Envoy sends them: the `headers` map (lowercase
// keys, repeated headers joined with ','), or with encode_raw_headers the
// `header_map` list (repeated headers kept apart, values in raw_value).
class EnvoyHeaders final : public GatewayHeaders {
 public:
  explicit EnvoyHeaders(const AttributeContext::HttpRequest& http)
      : http_(http) {}

  int Count(absl::string_view name, absl::string_view* value) const override {
    if (!http_.headers().empty()) {
      // The map looks up std::string keys: reuse one per thread rather than
      // allocate for each lookup (most header names exceed the SSO).
      thread_local std::string key;
      key.assign(name.data(), name.size());
      auto it = http_.headers().find(key);
      if (it == http_.headers().end()) return 0;
      *value = it->second;
      return 1;
    }
    int count = 0;
    for (const auto& header : http_.header_map().headers()) {
      if (header.key() != name) continue;
      ++count;
      *value = header.raw_value().empty() ? header.value() : header.raw_value();
    }
    return count;
  }

 private:
  const AttributeContext::HttpRequest& http_;
};

// google.rpc.Code of a denial's HTTP status.
int RpcCodeFor(int http_status) {
  switch (http_status) {
    case 400:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case 401:
      return grpc::StatusCode::UNAUTHENTICATED;
    case 404:
      return grpc::StatusCode::NOT_FOUND;
    default:
      return grpc::StatusCode::PERMISSION_DENIED;
  }
}

void SetHeader(absl::string_view name, absl::string_view value,
               HeaderValueOption* option) {
  option->mutable_header()->set_key(name.data(), name.size());
  option->mutable_header()->set_value(value.data(), value.size());
}

void ToCheckResponse(const GatewayAnswer& answer, CheckResponse* response) {
  if (answer.allowed()) {
    response->mutable_status()->set_code(grpc::StatusCode::OK);
    auto* ok = response->mutable_ok_response();
    for (const auto& [name, value] : answer.upstream_headers) {
      if (value.empty()) {
        ok->add_headers_to_remove(name.data(), name.size());
        continue;
      }
      HeaderValueOption* option = ok->add_headers();
      SetHeader(name, value, option);
      option->set_append_action(HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD);
    }
    if (!answer.remove_header.empty()) {
      ok->add_headers_to_remove(answer.remove_header);
    }
    return;
  }
  response->mutable_status()->set_code(RpcCodeFor(answer.http_status));
  auto* denied = response->mutable_denied_response();
  // The enum's values are the HTTP status codes.
  denied->mutable_status()->set_code(
      static_cast<envoy::type::v3::StatusCode>(answer.http_status));
  SetHeader("content-type", "application/json", denied->add_headers());
  SetHeader(kTraceIdHeader, answer.trace_id, denied->add_headers());
  denied->set_body(answer.body);
}

// ToAuthorizeRequest() for a CheckRequest.
absl::Status TranslateCheck(const CheckRequest& request,
                            const GatewaySettings& settings,
                            v1::AuthorizeRequest* authorize,
                            absl::string_view* credential_header) {
  const AttributeContext& attributes = request.attributes();
  const AttributeContext::HttpRequest& http = attributes.request().http();
  const EnvoyHeaders headers(http);
  GatewayRequest gateway_request;
  gateway_request.method = http.method();
  gateway_request.host = http.host();
  gateway_request.path = http.path();
  gateway_request.headers = &headers;
  auto api = attributes.context_extensions().find("api");
  if (api != attributes.context_extensions().end()) {
    gateway_request.api = api->second;
  }
  return ToAuthorizeRequest(gateway_request, settings, authorize,
                            credential_header);
}

// AnswerCheckDecision() with a CheckResponse to build the answer in.
absl::Status Answer(const absl::Status& decided,
                    const v1::AuthorizeRequest& authorize,
                    const v1::AuthorizeResponse& decision,
                    absl::string_view credential_header,
                    const GatewaySettings& settings, CheckResponse* response,
                    grpc::ByteBuffer* raw_response) {
  SK_ASSIGN_OR_RETURN(
      GatewayAnswer answer,
      AnswerDecided(decided, authorize, decision, credential_header, settings));
  ToCheckResponse(answer, response);
  SerializeResponse(*response, raw_response);
  return absl::OkStatus();
}

}  // namespace

absl::Status TryAnswerCheck(DecisionEngine& engine,
                            const GatewaySettings& settings,
                            const grpc::ByteBuffer& raw_request,
                            grpc::ByteBuffer* raw_response,
                            std::optional<PendingCheck>* pending) {
  CallArena arena;
  auto* request = arena.Create<CheckRequest>();
  SK_RETURN_IF_ERROR(ParseRequest(raw_request, request));
  auto* authorize = arena.Create<v1::AuthorizeRequest>();
  auto* decision = arena.Create<v1::AuthorizeResponse>();
  absl::string_view credential_header;
  DecisionEngine::Outcome outcome = {
      TranslateCheck(*request, settings, authorize, &credential_header)};
  if (outcome.status.ok()) outcome = engine.TryAuthorize(*authorize, decision);
  if (!outcome.ready()) {
    PendingCheck& wait = pending->emplace();
    wait.await_revision = outcome.await_revision;
    wait.authorize = *authorize;
    wait.credential_header = std::string(credential_header);
    return absl::OkStatus();
  }
  return Answer(outcome.status, *authorize, *decision, credential_header,
                settings, arena.Create<CheckResponse>(), raw_response);
}

absl::Status AnswerCheckDecision(const absl::Status& decided,
                                 const v1::AuthorizeRequest& authorize,
                                 const v1::AuthorizeResponse& decision,
                                 absl::string_view credential_header,
                                 const GatewaySettings& settings,
                                 grpc::ByteBuffer* raw_response) {
  CallArena arena;
  return Answer(decided, authorize, decision, credential_header, settings,
                arena.Create<CheckResponse>(), raw_response);
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
