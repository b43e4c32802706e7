#include "examples/guarded_service/guarded_handler.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace example {
namespace {

std::string Header(const HttpRequest& request, const std::string& name) {
  auto it = request.headers.find(name);
  return it == request.headers.end() ? "" : it->second;
}

std::string ApiKey(const HttpRequest& request) {
  std::string key = Header(request, "x-api-key");
  if (key.empty()) {
    const std::string authorization = Header(request, "authorization");
    if (absl::StartsWith(authorization, "Bearer ")) {
      key = authorization.substr(7);
    }
  }
  return key;
}

}  // namespace

HttpResponse GuardedHandler::Handle(const HttpRequest& request) {
  const scopekeeper::Decision decision =
      client_->CheckHttp(ApiKey(request), api_, request.method, request.path,
                         Header(request, "x-organization-id"));
  if (!decision.allowed) {
    // Fail closed: a denial and an unreachable Scopekeeper both stop here.
    // The body carries the end-user message and trace id, never the key.
    return {decision.http_status(),
            absl::StrCat(R"({"code":"forbidden","message":")",
                         decision.message(), R"(","trace_id":")",
                         decision.response.trace_id(), R"("})"),
            {}};
  }
  HttpResponse response = inner_(request);
  for (const std::string& field : decision.response.redactions()) {
    response.strip_fields.push_back(field);
  }
  return response;
}

}  // namespace example
