#include "server/http/http_daemon.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "base/host_port.h"
#include "base/redact.h"
#include "base/status_macros.h"

namespace scopekeeper {
namespace {

absl::StatusOr<sockaddr_storage> SocketAddress(absl::string_view flag,
                                               absl::string_view listen,
                                               bool* ipv6) {
  std::string host;
  int port = 0;
  SK_RETURN_IF_ERROR(ParseHostPort(flag, listen, &host, &port));
  if (host == "localhost") host = "127.0.0.1";
  sockaddr_storage address{};
  auto* v4 = reinterpret_cast<sockaddr_in*>(&address);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&address);
  if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    *ipv6 = false;
  } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    *ipv6 = true;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat(flag,
                     ": expected an IP address (or localhost) as host, "
                     "got ",
                     Quote(listen)));
  }
  return address;
}

}  // namespace

absl::StatusOr<std::unique_ptr<HttpDaemon>> HttpDaemon::Start(
    const HttpDaemonOptions& options, MHD_AccessHandlerCallback handler,
    void* cls) {
  bool ipv6 = false;
  SK_ASSIGN_OR_RETURN(sockaddr_storage address,
                      SocketAddress(options.flag, options.listen, &ipv6));
  if (options.threads < 1 || options.max_connections < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.flag, ": threads and max_connections must be positive"));
  }
  std::unique_ptr<HttpDaemon> d(new HttpDaemon());
  unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
  if (ipv6) flags |= MHD_USE_IPv6;
  if (options.allow_suspend) flags |= MHD_ALLOW_SUSPEND_RESUME;
  d->daemon_ = MHD_start_daemon(
      flags, /*port=*/0, /*apc=*/nullptr, nullptr, handler, cls,
      MHD_OPTION_SOCK_ADDR, reinterpret_cast<const sockaddr*>(&address),
      MHD_OPTION_THREAD_POOL_SIZE, static_cast<unsigned int>(options.threads),
      MHD_OPTION_CONNECTION_LIMIT,
      static_cast<unsigned int>(options.max_connections),
      MHD_OPTION_CONNECTION_TIMEOUT,
      static_cast<unsigned int>(
          std::max<int64_t>(1, absl::ToInt64Seconds(options.idle_timeout))),
      MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      static_cast<size_t>(options.max_header_bytes),
      MHD_OPTION_NOTIFY_COMPLETED, options.completed, cls, MHD_OPTION_END);
  if (d->daemon_ == nullptr) {
    return absl::UnavailableError(
        absl::StrCat(options.flag, ": cannot listen on ", options.listen,
                     " (address in use or invalid)"));
  }
  const MHD_DaemonInfo* info =
      MHD_get_daemon_info(d->daemon_, MHD_DAEMON_INFO_BIND_PORT);
  d->port_ = info == nullptr ? 0 : info->port;
  return d;
}

HttpDaemon::~HttpDaemon() {
  if (daemon_ != nullptr) MHD_stop_daemon(daemon_);
}

MHD_Result QueueText(MHD_Connection* connection, unsigned int status,
                     absl::string_view body, const char* content_type) {
  MHD_Response* response = MHD_create_response_from_buffer(
      body.size(), const_cast<char*>(body.data()), MHD_RESPMEM_MUST_COPY);
  if (response == nullptr) return MHD_NO;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  const MHD_Result queued = MHD_queue_response(connection, status, response);
  MHD_destroy_response(response);
  return queued;
}

}  // namespace scopekeeper
