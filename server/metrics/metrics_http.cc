#include "server/metrics/metrics_http.h"

#include <httplib.h>

#include <atomic>
#include <memory>
#include <thread>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace scopekeeper {

absl::StatusOr<std::unique_ptr<MetricsHttpServer>> MetricsHttpServer::Start(
    absl::string_view listen, std::function<std::string()> render) {
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == absl::string_view::npos ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--metrics_listen: expected HOST:PORT, got \"", listen, "\""));
  }
  std::string host(listen.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);  // [::1] -> ::1
  }
  std::unique_ptr<MetricsHttpServer> s(new MetricsHttpServer());
  s->http_ = std::make_unique<httplib::Server>();
  // cpp-httplib's default options add SO_REUSEPORT, which lets a second
  // server bind the same port and take half the scrapes: SO_REUSEADDR only.
  s->http_->set_socket_options([](socket_t sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  s->http_->Get(
      "/metrics", [render = std::move(render)](const httplib::Request&,
                                               httplib::Response& res) {
        res.set_content(render(), "text/plain; version=0.0.4; charset=utf-8");
      });
  s->port_ = port == 0 ? s->http_->bind_to_any_port(host)
                       : (s->http_->bind_to_port(host, port) ? port : -1);
  if (s->port_ <= 0) {
    return absl::UnavailableError(
        absl::StrCat("--metrics_listen: cannot listen on ", listen,
                     " (address in use or invalid)"));
  }
  httplib::Server* http = s->http_.get();
  auto returned = std::make_shared<std::atomic<bool>>(false);
  s->thread_ = std::thread([http, returned] {
    http->listen_after_bind();
    returned->store(true);
  });
  // Returns once the thread serves: cpp-httplib 0.11's stop() does nothing
  // before then, and the destructor's join() would wait forever (a server
  // stopped right after it started hung).
  while (!http->is_running() && !returned->load()) std::this_thread::yield();
  return s;
}

MetricsHttpServer::~MetricsHttpServer() {
  http_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace scopekeeper
