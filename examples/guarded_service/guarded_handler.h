// An example of guarding a service's own HTTP-like handler with
// scopekeeper::Client: the shape of code a platform team puts in its API
// gateway or service middleware.
#ifndef SCOPEKEEPER_EXAMPLES_GUARDED_SERVICE_GUARDED_HANDLER_H_
#define SCOPEKEEPER_EXAMPLES_GUARDED_SERVICE_GUARDED_HANDLER_H_

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "client/client.h"

namespace example {

struct HttpRequest {
  std::string method;
  std::string path;                            // with query string, as received
  std::map<std::string, std::string> headers;  // lower-case names
};

struct HttpResponse {
  int status = 0;
  std::string body;
  // Fields the handler must strip from its response (Scopekeeper
  // redactions, e.g. "prescription").
  std::vector<std::string> strip_fields;
};

// Checks every request with Scopekeeper before `inner` sees it. The API key
// comes from `X-API-Key` (or `Authorization: Bearer`), the organization from
// `X-Organization-Id`. Denials and errors never reach `inner`.
class GuardedHandler {
 public:
  GuardedHandler(scopekeeper::Client* client, std::string api,
                 std::function<HttpResponse(const HttpRequest&)> inner)
      : client_(client), api_(std::move(api)), inner_(std::move(inner)) {}

  HttpResponse Handle(const HttpRequest& request);

 private:
  scopekeeper::Client* client_;
  std::string api_;
  std::function<HttpResponse(const HttpRequest&)> inner_;
};

}  // namespace example

#endif  // SCOPEKEEPER_EXAMPLES_GUARDED_SERVICE_GUARDED_HANDLER_H_
