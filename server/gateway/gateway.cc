#include "server/gateway/gateway.h"

#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "base/trace_id.h"
#include "google/protobuf/util/json_util.h"
#include "server/gateway/denial_body.pb.h"
#include "server/policy/names.h"

namespace scopekeeper {
namespace {

// OneHeader() is the value of header `name`, nullopt when absent;
// INVALID_ARGUMENT when it was sent more than once.
absl::StatusOr<std::optional<absl::string_view>> OneHeader(
    const GatewayHeaders& headers, absl::string_view name) {
  absl::string_view value;
  const int count = headers.Count(name, &value);
  if (count > 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("Header ", name, " sent more than once"));
  }
  if (count == 0) return std::nullopt;
  return value;
}

// OneOf() is the value of whichever of the two headers is present, nullopt
// when neither is; INVALID_ARGUMENT when both are (see ForwardedRequest()).
absl::StatusOr<std::optional<absl::string_view>> OneOf(
    const GatewayHeaders& headers, absl::string_view nginx,
    absl::string_view forwarded) {
  SK_ASSIGN_OR_RETURN(std::optional<absl::string_view> a,
                      OneHeader(headers, nginx));
  SK_ASSIGN_OR_RETURN(std::optional<absl::string_view> b,
                      OneHeader(headers, forwarded));
  if (a.has_value() && b.has_value()) {
    return absl::InvalidArgumentError(
        absl::StrCat("Headers ", nginx, " and ", forwarded, " both sent"));
  }
  return a.has_value() ? a : b;
}

// BearerToken() is the token of "Bearer <token>" (scheme case-insensitive),
// nullopt for another scheme or an empty token.
std::optional<absl::string_view> BearerToken(absl::string_view authorization) {
  constexpr absl::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size() ||
      !absl::StartsWithIgnoreCase(authorization, kScheme)) {
    return std::nullopt;
  }
  absl::string_view token =
      absl::StripAsciiWhitespace(authorization.substr(kScheme.size()));
  if (token.empty()) return std::nullopt;
  return token;
}

// CheckPath() rejects what a route match on the raw path cannot see and an
// upstream might decode into another path: %2F, %2E and %5C (any case) and
// '\' before the query string.
absl::Status CheckPath(absl::string_view path) {
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError(
        "Invalid request path: must start with '/'");
  }
  const absl::string_view no_query = path.substr(0, path.find('?'));
  for (size_t i = 0; i < no_query.size(); ++i) {
    if (no_query[i] == '\\') {
      return absl::InvalidArgumentError("Invalid request path: '\\'");
    }
    if (no_query[i] == '%' && i + 2 < no_query.size()) {
      const char hi = no_query[i + 1];
      const char lo =
          absl::ascii_tolower(static_cast<unsigned char>(no_query[i + 2]));
      if ((hi == '2' && (lo == 'f' || lo == 'e')) || (hi == '5' && lo == 'c')) {
        return absl::InvalidArgumentError(
            "Invalid request path: encoded '/', '.' or '\\'");
      }
    }
  }
  return absl::OkStatus();
}

absl::string_view CodeForStatus(int http_status) {
  switch (http_status) {
    case 400:
      return "bad_request";
    case 401:
      return "unauthorized";
    case 403:
      return "forbidden";
    case 404:
      return "not_found";
    default:
      return "unavailable";
  }
}

// DenialJson() renders the DenialBody. A message that is not printable
// UTF-8 is replaced by a fixed one.
std::string DenialJson(int http_status, absl::string_view message,
                       absl::string_view trace_id) {
  gateway::DenialBody body;
  body.set_code(std::string(CodeForStatus(http_status)));
  body.set_message(ValidateText("message", message).ok() ? std::string(message)
                                                         : "Request denied");
  body.set_trace_id(std::string(trace_id));
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  std::string json;
  // Cannot fail: every field is valid UTF-8 (trace ids are validated ids).
  (void)google::protobuf::util::MessageToJsonString(body, &json, options);
  return json;
}

}  // namespace

absl::StatusOr<GatewayRequest> ForwardedRequest(
    const GatewayHeaders& headers, const GatewaySettings& settings) {
  GatewayRequest request;
  request.headers = &headers;
  SK_ASSIGN_OR_RETURN(
      std::optional<absl::string_view> method,
      OneOf(headers, "x-original-method", "x-forwarded-method"));
  SK_ASSIGN_OR_RETURN(std::optional<absl::string_view> uri,
                      OneOf(headers, "x-original-uri", "x-forwarded-uri"));
  if (!method.has_value() || method->empty()) {
    return absl::InvalidArgumentError(
        "Missing the original method (X-Original-Method or "
        "X-Forwarded-Method)");
  }
  if (!uri.has_value() || uri->empty()) {
    return absl::InvalidArgumentError(
        "Missing the original URI (X-Original-URI or X-Forwarded-Uri)");
  }
  request.method = *method;
  request.path = *uri;
  SK_ASSIGN_OR_RETURN(std::optional<absl::string_view> host,
                      OneHeader(headers, "x-forwarded-host"));
  request.host = host.value_or("");
  if (!settings.api_header.empty()) {
    SK_ASSIGN_OR_RETURN(std::optional<absl::string_view> api,
                        OneHeader(headers, settings.api_header));
    request.api = api.value_or("");
  }
  return request;
}

absl::Status ToAuthorizeRequest(const GatewayRequest& request,
                                const GatewaySettings& settings,
                                v1::AuthorizeRequest* out,
                                absl::string_view* credential_header) {
  out->Clear();
  *credential_header = "";
  const GatewayHeaders& headers = *request.headers;
  if (request.method.empty()) {
    return absl::InvalidArgumentError("Missing the request method");
  }
  SK_RETURN_IF_ERROR(CheckPath(request.path));

  SK_ASSIGN_OR_RETURN(std::optional<absl::string_view> authorization,
                      OneHeader(headers, "authorization"));
  std::optional<absl::string_view> key;
  if (authorization.has_value()) key = BearerToken(*authorization);
  if (key.has_value()) {
    *credential_header = "authorization";
  } else if (!settings.key_header.empty()) {
    SK_ASSIGN_OR_RETURN(key, OneHeader(headers, settings.key_header));
    if (key.has_value()) *credential_header = settings.key_header;
  }
  if (key.has_value()) out->set_api_key(key->data(), key->size());

  if (!settings.organization_header.empty()) {
    SK_ASSIGN_OR_RETURN(std::optional<absl::string_view> organization,
                        OneHeader(headers, settings.organization_header));
    if (organization.has_value()) {
      out->set_organization_id(organization->data(), organization->size());
    }
  }
  if (!settings.trace_header.empty()) {
    SK_ASSIGN_OR_RETURN(std::optional<absl::string_view> trace,
                        OneHeader(headers, settings.trace_header));
    if (trace.has_value() && ValidateId("", *trace).ok()) {
      out->set_trace_id(trace->data(), trace->size());
    }
  }
  v1::HttpRequestTarget* http = out->mutable_http();
  http->set_api(request.api.data(), request.api.size());
  http->set_method(request.method.data(), request.method.size());
  http->set_path(request.path.data(), request.path.size());
  http->set_host(request.host.data(), request.host.size());
  return absl::OkStatus();
}

bool AllowedUpstream(const absl::Status& decided,
                     const v1::AuthorizeResponse& decision,
                     absl::string_view credential_header,
                     const GatewaySettings& settings, UpstreamHeaders* out) {
  if (!decided.ok() || !decision.allowed()) return false;
  absl::string_view redactions;
  if (decision.redactions_size() == 1) {
    redactions = decision.redactions(0);
  } else if (decision.redactions_size() > 1) {
    out->joined_redactions = absl::StrJoin(decision.redactions(), ",");
    redactions = out->joined_redactions;
  }
  out->headers = {{{kKeyIdHeader, decision.key_id()},
                   {kOrganizationIdHeader, decision.organization_id()},
                   {kAppIdHeader, decision.app_id()},
                   {kRedactHeader, redactions},
                   {kTraceIdHeader, decision.trace_id()}}};
  out->remove_header = settings.hide_credentials ? credential_header : "";
  return true;
}

GatewayAnswer AnswerDecision(const v1::AuthorizeResponse& decision,
                             absl::string_view credential_header,
                             const GatewaySettings& settings) {
  GatewayAnswer answer;
  answer.trace_id = decision.trace_id();
  if (!decision.allowed()) {
    // A decision's status is 401, 403 or 404; anything else is not ours to
    // pass on.
    const int status = decision.http_status();
    answer.http_status =
        status == 401 || status == 403 || status == 404 ? status : 403;
    answer.body =
        DenialJson(answer.http_status, decision.message(), decision.trace_id());
    return answer;
  }
  answer.http_status = 200;
  UpstreamHeaders upstream;
  AllowedUpstream(absl::OkStatus(), decision, credential_header, settings,
                  &upstream);
  answer.upstream_headers.reserve(upstream.headers.size());
  for (const auto& [name, value] : upstream.headers) {
    answer.upstream_headers.emplace_back(name, std::string(value));
  }
  answer.remove_header = std::string(upstream.remove_header);
  return answer;
}

GatewayAnswer AnswerError(const absl::Status& status,
                          absl::string_view trace_id) {
  GatewayAnswer answer;
  answer.trace_id = trace_id.empty() ? NewTraceId() : std::string(trace_id);
  if (absl::IsInvalidArgument(status)) {
    answer.http_status = 400;
    answer.body = DenialJson(
        400, absl::StrCat("Bad request: ", status.message()), answer.trace_id);
  } else {
    answer.http_status = 503;
    answer.body =
        DenialJson(503, "Authorization is unavailable; retry", answer.trace_id);
  }
  return answer;
}

absl::StatusOr<GatewayAnswer> AnswerDecided(
    const absl::Status& decided, const v1::AuthorizeRequest& authorize,
    const v1::AuthorizeResponse& decision, absl::string_view credential_header,
    const GatewaySettings& settings) {
  if (decided.ok()) {
    return AnswerDecision(decision, credential_header, settings);
  }
  if (absl::IsInvalidArgument(decided)) {
    return AnswerError(decided, authorize.trace_id());
  }
  return decided;
}

DecisionEngine::Outcome TryGatewayRequest(
    DecisionEngine& engine, const GatewayRequest& request,
    const GatewaySettings& settings, v1::AuthorizeRequest* authorize,
    v1::AuthorizeResponse* decision, absl::string_view* credential_header) {
  const absl::Status translated =
      ToAuthorizeRequest(request, settings, authorize, credential_header);
  if (!translated.ok()) return {translated};
  return engine.TryAuthorize(*authorize, decision);
}

}  // namespace scopekeeper
