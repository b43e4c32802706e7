// MetricsHttpServer: serves GET /metrics (Prometheus text exposition) over
// plain HTTP (server/http's libmicrohttpd daemon: one event-driven thread, so
// slow clients hold no thread and cannot delay scrapes; at most 64
// connections; a connection idle or stalled for 10 s is closed; stopping
// closes every connection at once). Meant for a loopback or
// cluster-internal address: it exposes only counters, never keys or
// identities.
#ifndef SCOPEKEEPER_SERVER_METRICS_METRICS_HTTP_H_
#define SCOPEKEEPER_SERVER_METRICS_METRICS_HTTP_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/http/http_daemon.h"

namespace scopekeeper {

class MetricsHttpServer {
 public:
  // Start() listens on `listen` ("host:port", port 0 picks one) and answers
  // GET /metrics with render() (404 for other paths). INVALID_ARGUMENT for
  // a bad address, UNAVAILABLE when it cannot listen.
  static absl::StatusOr<std::unique_ptr<MetricsHttpServer>> Start(
      absl::string_view listen, std::function<std::string()> render);

  ~MetricsHttpServer();  // closes every connection, joins the thread

  int port() const { return daemon_->port(); }

 private:
  MetricsHttpServer() = default;
  static MHD_Result Access(void* cls, MHD_Connection* connection,
                           const char* url, const char* method,
                           const char* version, const char* upload_data,
                           size_t* upload_data_size, void** request_state);

  std::function<std::string()> render_;
  std::unique_ptr<HttpDaemon> daemon_;  // last: stopped before render_ goes
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_METRICS_METRICS_HTTP_H_
