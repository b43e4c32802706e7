// The gateway doors' translation, plain C++ (no gRPC, no HTTP): a request as
// a gateway describes it (method, host, path, headers, an explicit API) plus
// GatewaySettings becomes an AuthorizeRequest; the engine's decision becomes
// a GatewayAnswer (allow + identity headers for the upstream, or a denial's
// status and JSON body). Stateless functions: thread-safe. Envoy ext_authz
// (//server/grpc:ext_authz_service) and HTTP forward-auth (//server/http) are
// thin adapters over it.
//
// Fail closed: anything that cannot be read unambiguously (a repeated
// credential header, a missing original URI, an encoded '/' or '.') is a
// 400 denial, never an allow.
#ifndef SCOPEKEEPER_SERVER_GATEWAY_GATEWAY_H_
#define SCOPEKEEPER_SERVER_GATEWAY_GATEWAY_H_

#include <array>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/scopekeeper/v1/scopekeeper.pb.h"
#include "server/decision/decision_engine.h"

namespace scopekeeper {

// Which headers carry what. Header names are lowercase. From flags in
// main.cc (--gateway_*), shared by both doors.
struct GatewaySettings {
  // The key is taken from `authorization: Bearer <key>`, else from this
  // header; empty = Authorization only.
  std::string key_header = "x-api-key";
  // The organization the request is for (AuthorizeRequest.organization_id);
  // empty = none (the key's own organization).
  std::string organization_header = "x-organization-id";
  // Forward-auth only: the API chosen by the gateway's configuration (e.g.
  // nginx `proxy_set_header X-Scopekeeper-Api management`); empty = never
  // read. The gateway must set or clear it: a client could send it too.
  // Envoy uses the per-route context extension "api" instead.
  std::string api_header = "x-scopekeeper-api";
  // A request id adopted as the trace id when it is a valid id (1-128 of
  // [A-Za-z0-9_.:-]); otherwise one is generated. Empty = always generate.
  std::string trace_header = "x-request-id";
  // Remove the credential header the key came from before the upstream sees
  // the request (Kong's hide_credentials).
  bool hide_credentials = false;
};

// Headers of the request a gateway is asking about.
class GatewayHeaders {
 public:
  virtual ~GatewayHeaders() = default;
  // Count() returns how many times header `name` (lowercase) was sent and,
  // when exactly once, sets *value (valid while the headers are).
  virtual int Count(absl::string_view name, absl::string_view* value) const = 0;
};

// The request a gateway is asking about. Views; the caller owns the data.
struct GatewayRequest {
  absl::string_view method;  // e.g. "GET"
  absl::string_view host;    // Host / :authority; may carry a port
  absl::string_view path;    // origin-form, query string allowed
  // The API chosen by the gateway's configuration; empty = the policy
  // selects it by host and path (Api.hosts, Api.path_prefix).
  absl::string_view api;
  const GatewayHeaders* headers = nullptr;  // never null
};

// Forward-auth: the original request from the headers nginx `auth_request`
// (X-Original-Method, X-Original-URI, as configured in deploy/nginx),
// Traefik ForwardAuth and Caddy forward_auth (X-Forwarded-Method,
// X-Forwarded-Uri) send, the host from X-Forwarded-Host, the API from
// settings.api_header. INVALID_ARGUMENT when the method or URI is missing,
// any of these headers is repeated, or both families are present: each
// gateway passes the client's own headers on, so a client could add the
// family its gateway does not set, and neither may win.
absl::StatusOr<GatewayRequest> ForwardedRequest(
    const GatewayHeaders& headers, const GatewaySettings& settings);

// ToAuthorizeRequest() fills `out` (cleared first) for `request`: the key
// from `authorization: Bearer …` or settings.key_header (none: the decision
// is KEY_INVALID), the organization and trace id from their headers, an http
// target of the request's method, path and host, and the explicit API if
// any. Sets *credential_header to the header the key came from ("" = none).
// INVALID_ARGUMENT, with a message for the end client, for a missing method,
// a path not starting with '/', an encoded '/', '\' or '.' or a '\' in the
// path (upstreams may decode what the route match did not), or a repeated
// credential, organization or request-id header. The decision engine
// validates the rest (method, UTF-8, lengths, ids).
absl::Status ToAuthorizeRequest(const GatewayRequest& request,
                                const GatewaySettings& settings,
                                v1::AuthorizeRequest* out,
                                absl::string_view* credential_header);

// The identity headers an allowed request carries to the upstream.
inline constexpr absl::string_view kKeyIdHeader = "x-scopekeeper-key-id";
inline constexpr absl::string_view kOrganizationIdHeader =
    "x-scopekeeper-organization-id";
inline constexpr absl::string_view kAppIdHeader = "x-scopekeeper-app-id";
// Response fields the upstream must strip, comma-separated ("prescription").
inline constexpr absl::string_view kRedactHeader = "x-scopekeeper-redact";
inline constexpr absl::string_view kTraceIdHeader = "x-scopekeeper-trace-id";

struct GatewayAnswer {
  // 200 allowed; 400, 401, 403, 404 denied; 503 not decided.
  int http_status = 0;
  bool allowed() const { return http_status == 200; }
  // Allowed: every identity header above, in that order, as (name, value);
  // an empty value means "remove it" (a client must not supply it).
  std::vector<std::pair<absl::string_view, std::string>> upstream_headers;
  // Allowed, with hide_credentials: the credential header to remove.
  std::string remove_header;
  // Not allowed: the JSON DenialBody for the client.
  std::string body;
  std::string trace_id;
};

// UpstreamHeaders: what an allowed request's answer carries to the
// upstream, as views into the decision, the credential header's name and
// `joined_redactions` (set when there are several redactions): the identity
// headers in the order above, as (name, value), an empty value meaning
// "remove it"; and with hide_credentials, the credential header to remove
// ("" = none). Valid while those live and the struct is not moved: for a
// handler that answers at once, without copying a string.
struct UpstreamHeaders {
  std::array<std::pair<absl::string_view, absl::string_view>, 5> headers;
  absl::string_view remove_header;
  std::string joined_redactions;
};

// AllowedUpstream() fills `*out` when `decided` is OK and the decision
// allows (what AnswerDecided() then answers with); false otherwise.
bool AllowedUpstream(const absl::Status& decided,
                     const v1::AuthorizeResponse& decision,
                     absl::string_view credential_header,
                     const GatewaySettings& settings, UpstreamHeaders* out);

// AnswerDecision() answers a decision (AuthorizeResponse) of a request whose
// key came from `credential_header` (see ToAuthorizeRequest()).
GatewayAnswer AnswerDecision(const v1::AuthorizeResponse& decision,
                             absl::string_view credential_header,
                             const GatewaySettings& settings);

// AnswerError() answers a request that got no decision: 400 (bad_request,
// with the message) for INVALID_ARGUMENT, else 503 (unavailable; the
// message is not shown). Gateways deny both. `trace_id`: the request's, or
// empty to generate one.
GatewayAnswer AnswerError(const absl::Status& status,
                          absl::string_view trace_id);

// AnswerDecided() answers a request translated by ToAuthorizeRequest() (its
// key from `credential_header`) whose translation or decision ended with
// `decided`: AnswerDecision() when OK, 400 for INVALID_ARGUMENT (the
// request cannot be read; AnswerError() with the request's trace id). Any
// other error is returned: there is no decision, the caller fails closed.
absl::StatusOr<GatewayAnswer> AnswerDecided(
    const absl::Status& decided, const v1::AuthorizeRequest& authorize,
    const v1::AuthorizeResponse& decision, absl::string_view credential_header,
    const GatewaySettings& settings);

// TryGatewayRequest() is a door's decision without waiting:
// ToAuthorizeRequest() into `*authorize`, then the engine's TryAuthorize()
// into `*decision`. The outcome's status is the translation's error or the
// decision's; when it is not ready, TryAuthorize() `*authorize` again once
// the outcome's revision is applied. Either way AnswerDecided() answers it.
DecisionEngine::Outcome TryGatewayRequest(DecisionEngine& engine,
                                          const GatewayRequest& request,
                                          const GatewaySettings& settings,
                                          v1::AuthorizeRequest* authorize,
                                          v1::AuthorizeResponse* decision,
                                          absl::string_view* credential_header);

// The longest a gateway door lets a decision wait for a key written but not
// yet applied (gateway requests name no min_revision; the write path makes
// such waits last milliseconds). Both doors decide with TryAuthorize() and
// park the request meanwhile, holding no thread: ext_authz bounded by
// Envoy's timeout, forward-auth by this.
inline constexpr absl::Duration kMaxGatewayWait = absl::Seconds(2);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_GATEWAY_GATEWAY_H_
