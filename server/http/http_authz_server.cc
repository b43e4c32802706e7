#include "server/http/http_authz_server.h"

#include <microhttpd.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace scopekeeper {
namespace {

// A request's headers as libmicrohttpd keeps them: raw values (no
// percent-decoding), valid until the request is answered.
class MhdHeaders final : public GatewayHeaders {
 public:
  explicit MhdHeaders(MHD_Connection* connection) {
    MHD_get_connection_values_n(connection, MHD_HEADER_KIND, &Collect, this);
  }

  int Count(absl::string_view name, absl::string_view* value) const override {
    int count = 0;
    for (const auto& [key, val] : headers_) {
      if (absl::EqualsIgnoreCase(key, name)) {
        *value = val;
        ++count;
      }
    }
    return count;
  }

 private:
  static MHD_Result Collect(void* cls, MHD_ValueKind, const char* key,
                            size_t key_size, const char* value,
                            size_t value_size) {
    static_cast<MhdHeaders*>(cls)->headers_.emplace_back(
        absl::string_view(key, key_size),
        absl::string_view(value == nullptr ? "" : value, value_size));
    return MHD_YES;
  }

  std::vector<std::pair<absl::string_view, absl::string_view>> headers_;
};

}  // namespace

// The adapter: authenticate the caller, translate, decide, answer.
class HttpAuthzServer::Handler {
 public:
  Handler(DecisionEngine* engine, const GatewaySettings* settings,
          const CallerAuthenticator* auth, absl::Duration timeout)
      : engine_(engine), settings_(settings), auth_(auth), timeout_(timeout) {}

  // libmicrohttpd's access handler: called once when the head has arrived,
  // then with each piece of a body (ignored), then once more to answer.
  static MHD_Result Access(void* cls, MHD_Connection* connection,
                           const char* url, const char*, const char*,
                           const char*, size_t* upload_data_size,
                           void** request_state) {
    static int kHeadSeen;
    if (*request_state == nullptr) {
      *request_state = &kHeadSeen;
      return MHD_YES;
    }
    if (*upload_data_size != 0) {
      *upload_data_size = 0;  // gateways send no body; drop any
      return MHD_YES;
    }
    if (std::strcmp(url, "/authz") != 0) {
      return Queue(connection, MHD_HTTP_NOT_FOUND, {}, "");
    }
    const GatewayAnswer answer = static_cast<Handler*>(cls)->Answer(connection);
    return Queue(connection, answer.http_status, answer, answer.body);
  }

 private:
  GatewayAnswer Answer(MHD_Connection* connection) const {
    const MhdHeaders headers(connection);
    if (auth_ != nullptr) {
      std::optional<std::string> authorization;
      absl::string_view token;
      if (headers.Count(kAuthorizerTokenHeader, &token) == 1) {
        authorization = absl::StrCat("Bearer ", token);
      }
      const absl::Status caller =
          auth_
              ->Authenticate(
                  authorization.has_value()
                      ? std::optional<absl::string_view>(*authorization)
                      : std::nullopt)
              .status();
      if (!caller.ok()) return AnswerError(caller, "");
    }
    absl::StatusOr<GatewayRequest> request =
        ForwardedRequest(headers, *settings_);
    if (!request.ok()) return AnswerError(request.status(), "");
    v1::AuthorizeRequest authorize;
    v1::AuthorizeResponse decision;
    absl::StatusOr<GatewayAnswer> answer =
        DecideGatewayRequest(*engine_, *request, *settings_, &authorize,
                             &decision, std::min(timeout_, kMaxGatewayWait));
    if (!answer.ok()) return AnswerError(answer.status(), "");
    return *std::move(answer);
  }

  // Queue() sends the answer: identity headers when allowed (those with a
  // value), the JSON body otherwise.
  static MHD_Result Queue(MHD_Connection* connection, int status,
                          const GatewayAnswer& answer,
                          const std::string& body) {
    MHD_Response* response = MHD_create_response_from_buffer(
        body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
    if (response == nullptr) return MHD_NO;
    if (!answer.trace_id.empty()) {
      const std::string name(kTraceIdHeader);
      MHD_add_response_header(response, name.c_str(), answer.trace_id.c_str());
    }
    for (const auto& [name, value] : answer.upstream_headers) {
      if (name == kTraceIdHeader || value.empty()) continue;
      MHD_add_response_header(response, std::string(name).c_str(),
                              value.c_str());
    }
    if (!body.empty()) {
      MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE,
                              "application/json");
    }
    const MHD_Result queued = MHD_queue_response(connection, status, response);
    MHD_destroy_response(response);
    return queued;
  }

  DecisionEngine* const engine_;
  const GatewaySettings* const settings_;
  const CallerAuthenticator* const auth_;
  const absl::Duration timeout_;
};

absl::StatusOr<std::unique_ptr<HttpAuthzServer>> HttpAuthzServer::Start(
    const HttpAuthzOptions& options, DecisionEngine* engine,
    const GatewaySettings* settings, const CallerAuthenticator* auth) {
  std::unique_ptr<HttpAuthzServer> s(new HttpAuthzServer());
  s->handler_ = std::make_unique<Handler>(engine, settings, auth,
                                          options.decision_timeout);
  HttpDaemonOptions daemon;
  daemon.flag = "--http_authz_listen";
  daemon.listen = options.listen;
  daemon.threads = options.threads;
  daemon.max_connections = options.max_connections;
  daemon.idle_timeout = options.idle_timeout;
  daemon.max_header_bytes = options.max_header_bytes;
  SK_ASSIGN_OR_RETURN(s->daemon_, HttpDaemon::Start(daemon, &Handler::Access,
                                                    s->handler_.get()));
  return s;
}

HttpAuthzServer::~HttpAuthzServer() = default;

}  // namespace scopekeeper
