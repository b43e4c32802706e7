// ScopekeeperServer: wires the store, the core and the gRPC services into a
// running server. Options come from main.cc (flags) or from tests.
#ifndef SCOPEKEEPER_SERVER_SERVER_H_
#define SCOPEKEEPER_SERVER_SERVER_H_

#include <grpcpp/server.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "base/clock.h"
#include "server/auth/caller_auth.h"
#include "server/cluster/replica.h"
#include "server/decision/decision_engine.h"
#include "server/decision/decision_log.h"
#include "server/decision/serving_state.h"
#include "server/decision/usage_tracker.h"
#include "server/grpc/services.h"
#include "server/metrics/metrics.h"
#include "server/metrics/metrics_http.h"
#include "server/registry/registry.h"
#include "storage/store.h"

namespace scopekeeper {

struct ServerOptions {
  // host:port; port 0 picks a free port (see ScopekeeperServer::port()).
  std::string listen = "127.0.0.1:50051";
  // Directory of the embedded RocksDB store (<data_dir>/db) and, by default,
  // the admin token (<data_dir>/admin_token). Created if missing.
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
  // How often last-used times are written to the store.
  absl::Duration usage_flush_interval = absl::Seconds(10);
  // With cluster.etcd_endpoints set, the server is one replica of a cluster
  // on etcd (see server/cluster/replica.h) instead of a single node on the
  // embedded RocksDB store; data_dir then holds only local files (the
  // generated admin token).
  ReplicaOptions cluster;
};

class ScopekeeperServer {
 public:
  // Start() opens the store, loads it, applies the policy file, and starts
  // serving. Errors name what failed (bad policy entry, unreadable data dir,
  // port in use) and leave nothing running.
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
  // admin_token_path() is where the admin token was read or written.
  const std::string& admin_token_path() const { return admin_token_path_; }

  // Shutdown() stops accepting calls, lets in-flight calls finish (up to
  // `grace`), then closes the store. Idempotent.
  void Shutdown(absl::Duration grace = absl::Seconds(5));

 private:
  explicit ScopekeeperServer(size_t key_cache_capacity)
      : state_(key_cache_capacity) {}

  void FlushUsageUntilShutdown(absl::Duration interval);

  std::unique_ptr<storage::Store> store_;  // the embedded store, or null
  ServingState state_;
  std::unique_ptr<Replica> replica_;  // a cluster replica's store, or null
  storage::Store* store_in_use_ = nullptr;
  Metrics metrics_;
  std::unique_ptr<DecisionLog> decision_log_;
  std::unique_ptr<DecisionObservers> decision_observers_;
  std::unique_ptr<MetricsHttpServer> metrics_http_;
  std::unique_ptr<UsageTracker> usage_;
  absl::Notification stop_usage_flusher_;
  std::thread usage_flusher_;
  std::unique_ptr<Registry> registry_;
  std::unique_ptr<DecisionEngine> engine_;
  std::unique_ptr<CallerAuthenticator> auth_;
  std::unique_ptr<CallerAuthenticator> authorizer_auth_;  // null: open
  std::unique_ptr<AuthorizerService> authorizer_service_;
  std::unique_ptr<AdminService> admin_service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::string address_;
  std::string admin_token_path_;
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_SERVER_H_
