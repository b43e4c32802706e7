// MetricsHttpServer: serves GET /metrics (Prometheus text exposition) over
// plain HTTP on its own thread, using cpp-httplib (Debian
// libcpp-httplib-dev). Meant for a loopback or cluster-internal address: it
// exposes only counters, never keys or identities.
#ifndef SCOPEKEEPER_SERVER_METRICS_METRICS_HTTP_H_
#define SCOPEKEEPER_SERVER_METRICS_METRICS_HTTP_H_

#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace httplib {
class Server;
}

namespace scopekeeper {

class MetricsHttpServer {
 public:
  // Start() listens on `listen` ("host:port", port 0 picks one) and answers
  // GET /metrics with render(). UNAVAILABLE when it cannot listen.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      absl::string_view listen, std::function<std::string()> render);

  ~MetricsHttpServer();  // stops and joins

  int port() const { return port_; }

 private:
  MetricsHttpServer() = default;

  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_METRICS_METRICS_HTTP_H_
