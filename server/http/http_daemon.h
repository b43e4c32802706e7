// HttpDaemon: a GNU libmicrohttpd daemon on a HOST:PORT, shared by the HTTP
// endpoints (forward-auth /authz, Prometheus /metrics). Event-driven
// (epoll), so a slow client holds no thread; connections are bounded, a
// connection idle or stalled for `idle_timeout` is closed, request heads
// are bounded, and stopping (destruction) closes every connection at once.
#ifndef SCOPEKEEPER_SERVER_HTTP_HTTP_DAEMON_H_
#define SCOPEKEEPER_SERVER_HTTP_HTTP_DAEMON_H_

#include <microhttpd.h>

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace scopekeeper {

struct HttpDaemonOptions {
  // The flag the address came from, for messages ("--metrics_listen").
  std::string flag;
  // "host:port" (an IP address or localhost); port 0 picks a free one.
  std::string listen;
  // Threads serving (each an epoll loop over its share of connections).
  int threads = 1;
  // Open connections at most; more are refused at accept.
  int max_connections = 256;
  // An idle keep-alive connection, or a stalled request or answer, is
  // closed after this.
  absl::Duration idle_timeout = absl::Seconds(10);
  // Largest request head (request line and headers) accepted.
  size_t max_header_bytes = 16 << 10;
  // Lets the handler suspend a connection (MHD_suspend_connection) while its
  // answer waits, and resume it (MHD_resume_connection, from any thread).
  // The handler must resume every suspended connection before the daemon is
  // destroyed.
  bool allow_suspend = false;
  // Called when a request ends, however it ends (answered, connection
  // closed, daemon stopped), with the handler's per-request state: where a
  // handler frees what it kept there. Null: nothing to free.
  MHD_RequestCompletedCallback completed = nullptr;
};

class HttpDaemon {
 public:
  // Start() listens and calls `handler(cls, …)` (libmicrohttpd's access
  // handler) for each request until destroyed. INVALID_ARGUMENT naming the
  // flag for a bad address or option, UNAVAILABLE when it cannot listen.
  static absl::StatusOr<std::unique_ptr<HttpDaemon>> Start(
      const HttpDaemonOptions& options, MHD_AccessHandlerCallback handler,
      void* cls);

  // Closes every connection and joins the threads (a handler running
  // finishes first).
  ~HttpDaemon();
  HttpDaemon(const HttpDaemon&) = delete;
  HttpDaemon& operator=(const HttpDaemon&) = delete;

  int port() const { return port_; }

 private:
  HttpDaemon() = default;
  MHD_Daemon* daemon_ = nullptr;
  int port_ = 0;
};

// QueueText() answers with `status` and a text body of `content_type`.
MHD_Result QueueText(MHD_Connection* connection, unsigned int status,
                     absl::string_view body, const char* content_type);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_HTTP_HTTP_DAEMON_H_
