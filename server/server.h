// ScopekeeperServer: wires the store, the core and the gRPC services into a
// running server. Options come from main.cc (flags) or from tests.
#ifndef SCOPEKEEPER_SERVER_SERVER_H_
#define SCOPEKEEPER_SERVER_SERVER_H_

#include <grpcpp/server.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "base/clock.h"
#include "base/mutex.h"
#include "server/auth/caller_auth.h"
#include "server/auth/refusal_reporter.h"
#include "server/cluster/replica.h"
#include "server/decision/decision_engine.h"
#include "server/decision/decision_log.h"
#include "server/decision/serving_state.h"
#include "server/decision/usage_tracker.h"
#include "server/gateway/gateway.h"
#include "server/grpc/call_tracker.h"
#include "server/grpc/ext_authz_service.h"
#include "server/grpc/services.h"
#include "server/http/http_authz_server.h"
#include "server/metrics/metrics.h"
#include "server/metrics/metrics_http.h"
#include "server/metrics/rpc_metrics.h"
#include "server/registry/change_feed.h"
#include "server/registry/registry.h"
#include "storage/store.h"

namespace scopekeeper {

struct ServerOptions {
  // host:port; port 0 picks a free port (see ScopekeeperServer::port()).
  std::string listen = "127.0.0.1:50051";
  // Directory of the embedded RocksDB store (<data_dir>/db) and, by default,
  // the admin token (<data_dir>/admin_token). Created if missing, with any
  // missing parents (mode 0700).
  std::string data_dir;
  // File whose first line is the admin token; empty = <data_dir>/admin_token,
  // generated on first start.
  std::string admin_token_file;
  // JSON Policy applied at start when it differs from the stored one.
  std::string policy_file;
  // TLS: PEM files of the server's certificate chain and private key. Both
  // or neither; without them the server listens in plaintext.
  std::string tls_cert_file;
  std::string tls_key_file;
  // mTLS: PEM file of the CA that client certificates must chain to. When
  // set, every client must present a certificate that verifies.
  std::string tls_client_ca_file;
  // With mTLS, client-certificate subjects that are admins without a token.
  std::vector<std::string> admin_subjects;
  // Data-plane caller authentication, off when both are empty: then any
  // client that can connect may call Authorizer (bind to loopback or use
  // mTLS). When either is set, every Authorizer call must carry
  // `authorization: Bearer <token from this file>` or come with a client
  // certificate whose subject is in `authorizer_subjects` (needs mTLS).
  std::string authorizer_token_file;
  std::vector<std::string> authorizer_subjects;
  // Which headers carry the key, organization, API and request id for the
  // gateway doors (Envoy ext_authz Check on the main port, always on; HTTP
  // forward-auth). See docs/GATEWAYS.md.
  GatewaySettings gateway;
  // HTTP forward-auth (GET /authz) for nginx, Traefik, Caddy: "host:port",
  // port 0 picks one (see http_authz_port()); empty = off. With an
  // authorizer token its callers must send it (X-Scopekeeper-Authorizer-
  // Token); --authorizer_subjects alone cannot close it (no TLS): an error.
  // `listen` is ignored in favour of http_authz_listen.
  std::string http_authz_listen;
  HttpAuthzOptions http_authz;
  // "host:port" for Prometheus metrics over HTTP (GET /metrics); empty = off.
  // Port 0 picks one (see ScopekeeperServer::metrics_port()).
  std::string metrics_listen;
  // Fraction of decisions logged (one logfmt line each); 0 = none.
  double decision_log_sample_rate = 0;
  // Largest request accepted; larger ones fail with RESOURCE_EXHAUSTED.
  int max_receive_message_bytes = 4 << 20;
  // Completion-queue threads of the callback server.
  int server_threads = 2;
  // Most secret digests kept in memory; 0 = every key (the whole key set is
  // loaded at start). With a limit, keys beyond it are read from the store
  // when used and the least recently used are evicted (see KeyCache).
  int64_t key_cache_capacity = 0;
  // Source of time for expiry; must outlive the server.
  const Clock* clock = SystemClock::Get();
  // After a store write failed (e.g. a full disk), how often a write tries
  // to recover the store.
  absl::Duration store_retry_interval = absl::Seconds(1);
  // Watch streams: most open at once (RESOURCE_EXHAUSTED beyond), and how
  // long a client may leave an event untaken before its stream is ended.
  int max_watch_streams = 1000;
  absl::Duration watch_stall_timeout = absl::Seconds(30);
  // At shutdown, how long calls in flight may take to finish.
  absl::Duration shutdown_grace = absl::Seconds(5);
  // How often last-used times are written to the store.
  absl::Duration usage_flush_interval = absl::Seconds(10);
  // Start even though acknowledged writes are lost: the store recovered to
  // a revision below the one it acknowledged (a damaged or deleted WAL), or
  // the data dir has held a store whose db/ is gone. Otherwise such a start
  // is refused with DATA_LOSS. Logged as an error; see docs/OPERATIONS.md.
  bool accept_data_loss = false;
  // Start with decisions held (kStartHold): after a restore, the Authorizer
  // answers UNAVAILABLE and reports NOT_SERVING until the operator releases
  // it (SetDecisionsServing(kStartHold, true); SIGUSR1 in main.cc), while
  // the Admin service works, e.g. to re-apply revocations.
  bool hold_decisions = false;
  // With cluster.etcd_endpoints set, the server is one replica of a cluster
  // on etcd (see server/cluster/replica.h) instead of a single node on the
  // embedded RocksDB store; data_dir then holds only local files (the
  // generated admin token).
  ReplicaOptions cluster;
};

class ScopekeeperServer {
 public:
  // Start() opens the store, loads it, applies the policy file, and starts
  // serving. Errors name what failed (bad flag value, credential or TLS
  // file, policy entry, unreadable or damaged data dir, lost writes, port in
  // use) and leave nothing running; all but a store failure are found before
  // the stored policy is changed (startup_checks.h).
  static absl::StatusOr<std::unique_ptr<ScopekeeperServer>> Start(
      const ServerOptions& options);

  ~ScopekeeperServer();  // Shutdown()

  // port() is the port actually bound.
  int port() const { return port_; }
  // address() is "host:port" with the bound port.
  const std::string& address() const { return address_; }
  // metrics_port() is the bound metrics port, 0 when metrics are off.
  int metrics_port() const {
    return metrics_http_ != nullptr ? metrics_http_->port() : 0;
  }
  // http_authz_port() is the bound forward-auth port, 0 when it is off.
  int http_authz_port() const {
    return http_authz_ != nullptr ? http_authz_->port() : 0;
  }
  // serving_state() is what decisions read (for tests and diagnostics).
  ServingState& serving_state() { return state_; }
  // admin_token_path() is where the admin token was read or written.
  const std::string& admin_token_path() const { return admin_token_path_; }

  // Health (grpc.health.v1.Health/Check): "" and scopekeeper.v1.Admin are
  // SERVING while the server runs; scopekeeper.v1.Authorizer is SERVING
  // while decisions are served; all are NOT_SERVING once Shutdown() begins.
  static constexpr char kAuthorizerService[] = "scopekeeper.v1.Authorizer";
  static constexpr char kAdminService[] = "scopekeeper.v1.Admin";

  // SetDecisionsServing() holds (serving = false) or releases decisions on
  // behalf of `holder` — e.g. the etcd staleness gate, or kStartHold. While
  // any holder holds, Authorizer calls fail UNAVAILABLE with "decisions are
  // held (<holder>): <reason>" and the Authorizer's health is NOT_SERVING;
  // releasing one hold leaves the others. Logged when decisions stop or
  // resume. Thread-safe; callable from any thread while the server runs.
  void SetDecisionsServing(absl::string_view holder, bool serving,
                           absl::string_view reason = "")
      ABSL_LOCKS_EXCLUDED(serving_mu_);
  // decisions_serving() is false while any hold is in place.
  bool decisions_serving() const { return state_.holds().serving(); }
  // The holder of ServerOptions::hold_decisions.
  static constexpr char kStartHold[] = "hold_decisions";
  // The holder for a cluster replica not confirmed current with etcd. While
  // it holds, "" is NOT_SERVING too: such a replica can neither decide nor
  // write, so load balancers should send nothing to it.
  static constexpr char kClusterHold[] = "etcd";

  // Shutdown() reports NOT_SERVING for every service, closes the HTTP endpoints
  // and their connections, ends waits for revisions and Watch streams, refuses
  // new calls (UNAVAILABLE) and lets the calls in flight finish for up to
  // `grace` -- never waiting for connections without a call -- then stops
  // gRPC and closes the store. Idempotent.
  void Shutdown(absl::Duration grace) ABSL_LOCKS_EXCLUDED(serving_mu_);

 private:
  explicit ScopekeeperServer(size_t key_cache_capacity)
      : state_(key_cache_capacity) {}

  // HousekeepingUntilShutdown() ends stalled Watch streams (every second)
  // and writes last-use times (every `usage_flush_interval`).
  void HousekeepingUntilShutdown(absl::Duration usage_flush_interval);
  // RenderMetrics() is the /metrics page.
  std::string RenderMetrics() const;
  // SetAuthorizerHealth() reports whether decisions are served (and, for a
  // replica, whether it is current: "").
  void SetAuthorizerHealth() ABSL_EXCLUSIVE_LOCKS_REQUIRED(serving_mu_);

  std::unique_ptr<storage::Store> store_;  // the embedded store, or null
  ServingState state_;
  std::unique_ptr<Replica> replica_;  // a cluster replica's store, or null
  storage::Store* store_in_use_ = nullptr;
  Metrics metrics_;
  std::unique_ptr<DecisionLog> decision_log_;
  std::unique_ptr<DecisionObservers> decision_observers_;
  std::unique_ptr<MetricsHttpServer> metrics_http_;
  std::unique_ptr<UsageTracker> usage_;
  absl::Notification stop_housekeeping_;
  std::thread housekeeping_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<DecisionEngine> engine_;
  std::unique_ptr<RpcMetrics> rpc_metrics_;
  std::unique_ptr<RefusalReporter> admin_refusals_;
  std::unique_ptr<RefusalReporter> authorizer_refusals_;
  std::unique_ptr<CallerAuthenticator> auth_;
  std::unique_ptr<CallerAuthenticator> authorizer_auth_;  // null: open
  std::unique_ptr<AuthorizerService> authorizer_service_;
  std::unique_ptr<ChangeFeed> change_feed_;  // outlives the admin service
  std::unique_ptr<AdminService> admin_service_;
  GatewaySettings gateway_settings_;
  std::unique_ptr<ExtAuthzService> ext_authz_service_;
  std::unique_ptr<HttpAuthzServer> http_authz_;
  CallTracker calls_;
  absl::Duration shutdown_grace_;
  std::unique_ptr<grpc::Server> server_;
  // Orders decision holds with the health reports of them.
  mutable Mutex serving_mu_;
  bool shutting_down_ ABSL_GUARDED_BY(serving_mu_) = false;
  bool cluster_stale_ ABSL_GUARDED_BY(serving_mu_) = false;
  int port_ = 0;
  std::string address_;
  std::string admin_token_path_;
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_SERVER_H_
