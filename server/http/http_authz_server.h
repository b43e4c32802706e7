// HttpAuthzServer: HTTP forward-auth for gateways (nginx auth_request,
// Traefik ForwardAuth, Caddy forward_auth) at /authz, over plain HTTP/1.1
// with GNU libmicrohttpd (Debian libmicrohttpd-dev). Not cpp-httplib: its
// server percent-decodes every request header value (0.11.4), so
// "X-Original-URI: /a%2F..%2Fb" would be matched as "/a/../b" while the
// upstream gets the raw URI. A thin adapter: the gateway's subrequest headers
// -> ForwardedRequest() -> DecisionEngine -> GatewayAnswer (see
// server/gateway/gateway.h). Any method; no body needed.
//
// Answers: 200 with the x-scopekeeper-* identity headers (those with a
// value: the gateway's copy of an absent one clears what a client sent, see
// deploy/nginx); 401/403/404 with the JSON denial body; 400 for a request it
// cannot read; 503 when it cannot decide (store unavailable, caller not
// authenticated). Gateways must deny on anything but 200.
//
// Connections: at most `max_connections` open (more are refused at accept),
// served by `threads` epoll threads; a decision runs on the thread that read
// the request. A request for a key being written (decidable once a revision
// is applied) is parked without holding that thread: its connection is
// suspended and resumed with the answer, or with 503 after
// `decision_timeout`. Keep-alive; a connection idle (or a request or answer
// stalled) for `idle_timeout` is closed. Request heads larger than
// `max_header_bytes` are refused (431). Plain HTTP without TLS: bind it to
// loopback or a private network, and with a caller token
// (ServerOptions.authorizer_token_file) every request must carry
// `X-Scopekeeper-Authorizer-Token: <token>`.
#ifndef SCOPEKEEPER_SERVER_HTTP_HTTP_AUTHZ_SERVER_H_
#define SCOPEKEEPER_SERVER_HTTP_HTTP_AUTHZ_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/auth/caller_auth.h"
#include "server/decision/decision_engine.h"
#include "server/decision/serving_state.h"
#include "server/gateway/gateway.h"
#include "server/http/http_daemon.h"

namespace scopekeeper {

struct HttpAuthzOptions {
  // "host:port"; port 0 picks a free one (see HttpAuthzServer::port()).
  std::string listen;
  // Threads answering (each an epoll loop over its share of connections).
  int threads = 4;
  // Open connections at most (gateways keep a pool of keep-alive ones),
  // split evenly across the threads.
  int max_connections = 1024;
  // An idle keep-alive connection, or a stalled request or answer, is closed
  // after this. Keep the gateway's own idle timeout for its upstream
  // connections shorter (nginx `keepalive_timeout` in the upstream block).
  absl::Duration idle_timeout = absl::Seconds(30);
  // Largest request head (request line and headers) accepted.
  size_t max_header_bytes = 16 << 10;
  // Bound on a decision (waits for a key being written, store reads).
  absl::Duration decision_timeout = absl::Seconds(2);
};

// The header that carries the caller token.
inline constexpr char kAuthorizerTokenHeader[] =
    "X-Scopekeeper-Authorizer-Token";

class HttpAuthzServer {
 public:
  // Start() listens and serves until destroyed. Does not own `engine`,
  // `state` (the engine's, for parked requests' waits), `settings` or `auth`,
  // which must outlive it; `auth` null = open (no
  // caller token). INVALID_ARGUMENT for a bad address, UNAVAILABLE when it
  // cannot listen.
  static absl::StatusOr<std::unique_ptr<HttpAuthzServer>> Start(
      const HttpAuthzOptions& options, DecisionEngine* engine,
      ServingState* state, const GatewaySettings* settings,
      const CallerAuthenticator* auth);

  // Answers parked requests 503, closes every connection, joins the
  // threads.
  ~HttpAuthzServer();

  int port() const { return daemon_->port(); }

 private:
  class Handler;
  HttpAuthzServer() = default;

  std::unique_ptr<Handler> handler_;
  std::unique_ptr<HttpDaemon> daemon_;  // last: stopped before the handler
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_HTTP_HTTP_AUTHZ_SERVER_H_
