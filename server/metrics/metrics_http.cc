#include "server/metrics/metrics_http.h"

#include <cstring>
#include <utility>

namespace scopekeeper {

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    absl::string_view listen, std::function<std::string()> render) {
  std::unique_ptr<MetricsHttpServer> s(new MetricsHttpServer());
  s->render_ = std::move(render);
  HttpDaemonOptions options;
  options.flag = "--metrics_listen";
  options.listen = std::string(listen);
  options.threads = 1;
  options.max_connections = 64;
  options.idle_timeout = absl::Seconds(10);
  options.max_header_bytes = 8 << 10;
  absl::StatusOr<std::unique_ptr<HttpDaemon>> daemon =
      HttpDaemon::Start(options, &MetricsHttpServer::Access, s.get());
  if (!daemon.ok()) return daemon.status();
  s->daemon_ = *std::move(daemon);
  return s;
}

MetricsHttpServer::~MetricsHttpServer() = default;

MHD_Result MetricsHttpServer::Access(void* cls, MHD_Connection* connection,
                                     const char* url, const char* method,
                                     const char*, const char*,
                                     size_t* upload_data_size,
                                     void** request_state) {
  static int kHeadSeen;
  if (*request_state == nullptr) {  // the head arrived: answer on the next
    *request_state = &kHeadSeen;
    return MHD_YES;
  }
  if (*upload_data_size != 0) {
    *upload_data_size = 0;  // a scrape has no body; drop any
    return MHD_YES;
  }
  if (std::strcmp(url, "/metrics") != 0) {
    return QueueText(connection, MHD_HTTP_NOT_FOUND, "not found\n",
                     "text/plain; charset=utf-8");
  }
  if (std::strcmp(method, "GET") != 0 && std::strcmp(method, "HEAD") != 0) {
    return QueueText(connection, MHD_HTTP_METHOD_NOT_ALLOWED, "GET /metrics\n",
                     "text/plain; charset=utf-8");
  }
  return QueueText(connection, MHD_HTTP_OK,
                   static_cast<MetricsHttpServer*>(cls)->render_(),
                   "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace scopekeeper
