// EtcdCommitter: the Registry's write path on a cluster replica (see
// server/registry/committer.h). Any replica takes writes; etcd serializes
// them.
//
// Commit(): run the build step, write its mutation as one etcd transaction
// guarded by the revisions it names (EtcdStore::WriteGuarded: records,
// indexes and the audit event together, all or nothing, within etcd's
// limits), then wait until this replica's Follower has applied that
// revision, so the caller reads its own write here, and min_revision makes
// any other replica wait for it. A transaction whose guards fail (another
// replica changed what the build read) is ABORTED by etcd and changes
// nothing: the committer brings this replica up to the cluster's head and
// runs the build again on the fresh state, up to `max_attempts` times.
// Never lost, never applied twice, never applied on stale state.
//
// Barriers (builds that read the serving state) first catch up with the
// cluster's head. A transaction that etcd did not answer (member lost,
// deadline) is not resent: its outcome is unknown, and the caller gets
// UNAVAILABLE saying so.
#ifndef SCOPEKEEPER_SERVER_CLUSTER_ETCD_COMMITTER_H_
#define SCOPEKEEPER_SERVER_CLUSTER_ETCD_COMMITTER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/cluster/follower.h"
#include "server/registry/commit_observer.h"
#include "server/registry/committer.h"
#include "storage/etcd/etcd_store.h"

namespace scopekeeper {

// Thread-safe. Does not own its arguments.
class EtcdCommitter final : public Committer {
 public:
  struct Options {
    // Builds of one Commit() (the first included) before ABORTED.
    int max_attempts = 10;
    // How long a commit or a read waits for this replica to apply a
    // revision before it answers UNAVAILABLE.
    absl::Duration visible_timeout = absl::Seconds(5);
  };

  EtcdCommitter(storage::EtcdStore* store, Follower* follower,
                CommitObserver* observer, Options options)
      : store_(store),
        follower_(follower),
        observer_(observer),
        options_(options) {}

  // Start() loads the serving state and starts following (Follower).
  absl::Status Start() override { return follower_->Start(); }
  absl::StatusOr<uint64_t> Commit(bool barrier, Build build) override;
  // CatchUp(): a linearizable read of the cluster's head, then waits until
  // this replica has applied it.
  absl::Status CatchUp() override;
  absl::Status AwaitVisible(uint64_t revision) override;
  size_t queued() const override {
    return in_flight_.load(std::memory_order_relaxed);
  }

  // conflicts() counts builds that lost a race and were run again.
  uint64_t conflicts() const {
    return conflicts_.load(std::memory_order_relaxed);
  }

 private:
  // Reports whether etcd takes writes, on changes only.
  void SetWritable(const absl::Status& cause);

  storage::EtcdStore* const store_;
  Follower* const follower_;
  CommitObserver* const observer_;
  const Options options_;
  std::atomic<size_t> in_flight_{0};
  std::atomic<uint64_t> conflicts_{0};
  std::atomic<bool> writable_{true};
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_CLUSTER_ETCD_COMMITTER_H_
