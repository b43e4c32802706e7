// Replica: what makes a Scopekeeper server one replica of a cluster sharing
// an etcd cluster (--etcd_endpoints): the etcd client and store, the
// Follower that keeps the serving state current, the EtcdCommitter that
// writes, the Freshness gate, and the audit retention. ScopekeeperServer
// builds its Registry and DecisionEngine on these instead of the embedded
// RocksDB store; everything else (adapters, auth, metrics) is the same.
#ifndef SCOPEKEEPER_SERVER_CLUSTER_REPLICA_H_
#define SCOPEKEEPER_SERVER_CLUSTER_REPLICA_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "base/mutex.h"
#include "server/cluster/etcd_committer.h"
#include "server/cluster/follower.h"
#include "server/decision/freshness.h"
#include "server/decision/serving_state.h"
#include "server/registry/applier.h"
#include "server/registry/commit_observer.h"
#include "storage/etcd/etcd_client.h"
#include "storage/etcd/etcd_store.h"

namespace scopekeeper {

struct ReplicaOptions {
  // host:port of each etcd member; empty = no cluster (the embedded store).
  std::vector<std::string> etcd_endpoints;
  // Every etcd key of this deployment starts with it.
  std::string etcd_prefix = "/scopekeeper/";
  // TLS to etcd: PEM files of the CA that signed the members' certificates,
  // and of the client certificate and key (both or neither).
  std::string etcd_ca_file;
  std::string etcd_cert_file;
  std::string etcd_key_file;
  // etcd authentication: user, and a file whose first line is its password.
  std::string etcd_user;
  std::string etcd_password_file;
  // Deadline of every etcd call (retries on other members included).
  absl::Duration etcd_call_timeout = absl::Seconds(2);
  // etcd's --max-txn-ops and --max-request-bytes (mutations beyond them are
  // refused with INVALID_ARGUMENT before anything is sent).
  int etcd_max_txn_ops = 128;
  int64_t etcd_max_request_bytes = 1572864;
  // A replica not confirmed current with the cluster for longer fails
  // closed (see Freshness).
  absl::Duration max_staleness = absl::Seconds(5);
  // Audit events older than this are deleted (0: kept forever); checked
  // every `audit_prune_interval`.
  absl::Duration audit_retention = absl::ZeroDuration();
  absl::Duration audit_prune_interval = absl::Minutes(10);
  // A directory written by CreateBackup on a cluster (EtcdStore export):
  // imported into the (empty) prefix before the replica starts.
  std::string restore_from;
};

// Thread-safe.
class Replica {
 public:
  // Open() connects to etcd and opens the store (checking its format); it
  // loads nothing yet (Registry::Load() starts the committer, which loads
  // and follows). `state`, `clock` and `observer` must outlive it.
  static absl::StatusOr<std::unique_ptr<Replica>> Open(
      const ReplicaOptions& options, ServingState* state, const Clock* clock,
      CommitObserver* observer);
  ~Replica();  // Stop()

  storage::EtcdStore* store() { return store_.get(); }
  Applier* applier() { return applier_.get(); }
  Committer* committer() { return committer_.get(); }
  const Freshness* freshness() const { return freshness_.get(); }
  Follower& follower() { return *follower_; }

  // StartBackgroundWork() starts the audit retention (after Load()).
  void StartBackgroundWork();
  // Stop() ends background work and following. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // OnServingChange(): see Follower::OnServingChange().
  void OnServingChange(std::function<void(bool serving)> fn) {
    follower_->OnServingChange(std::move(fn));
  }

  // RenderMetrics() is the replica's part of /metrics (Prometheus text):
  // scopekeeper_replica_revision, scopekeeper_replica_lag_seconds, ...
  std::string RenderMetrics() const;

 private:
  Replica() = default;
  void PruneAuditUntilStopped() ABSL_LOCKS_EXCLUDED(mu_);

  ReplicaOptions options_;
  const Clock* clock_ = nullptr;
  std::shared_ptr<storage::etcd::EtcdClient> client_;
  std::unique_ptr<storage::EtcdStore> store_;
  std::unique_ptr<Applier> applier_;
  std::unique_ptr<Freshness> freshness_;
  std::unique_ptr<Follower> follower_;
  std::unique_ptr<EtcdCommitter> committer_;

  Mutex mu_;
  CondVar cv_;  // stopping_ set
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread pruner_;
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_CLUSTER_REPLICA_H_
