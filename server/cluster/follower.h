// Follower: keeps a cluster replica's serving state current with etcd.
//
// Start() loads one consistent snapshot (EtcdStore::ReadAt(R)) into the
// serving state, then follows the state prefix from R + 1
// (EtcdStore::Follow) and applies each committed transaction, in revision
// order, through the Applier (with each key's previous record, so secrets
// a key no longer has stop authenticating). The serving state's revision is
// the etcd revision it is current as of: each applied transaction's, and,
// when the feed or a confirmation shows nothing changed since, the later
// cluster revision.
//
// Freshness. Every `confirm_interval` a confirmer thread reads, at time T,
// the cluster's head linearizably (EtcdStore::ReadHead(): a quorum read, so
// a member cut off from its quorum cannot answer it with stale data); once
// everything up to that head's last state write is applied, the replica is
// confirmed current as of T (Freshness::Confirm). etcd's own progress
// notifications only advance the revision: they come from one member.
//
// Failures. When the feed ends (member died or lost its leader — the client
// sends require_leader, so etcd cancels the watch — or the stream broke),
// a feeder thread follows again from the last revision applied, on another
// member if need be. When that revision was compacted meanwhile, it loads a
// fresh snapshot over the serving state (Applier::LoadSnapshot drops what
// the snapshot lacks) and follows from there. A feed that delivers nothing
// while confirmations show it is behind for `stall_timeout` is restarted
// too. Decisions go on from the state applied so far until Freshness says
// it is too old.
//
// Horizon. The follower is the serving state's HorizonProbe: a call asking
// for a min_revision this replica has not heard of yet (written on another
// replica a moment ago) makes the confirmer read the head at once, which
// either shows the revision exists (the call waits for it to be applied)
// or ends the call with OUT_OF_RANGE.
//
// Thread-safety: Start() once; the rest from any thread. The feed's
// callbacks, the feeder and the confirmer apply and publish under one
// mutex, so the published revision only moves forward.
#ifndef SCOPEKEEPER_SERVER_CLUSTER_FOLLOWER_H_
#define SCOPEKEEPER_SERVER_CLUSTER_FOLLOWER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "base/mutex.h"
#include "server/decision/freshness.h"
#include "server/decision/serving_state.h"
#include "server/registry/applier.h"
#include "storage/etcd/etcd_store.h"

namespace scopekeeper {

class Follower final : public ServingState::HorizonProbe {
 public:
  struct Options {
    // How often the cluster's head is read to confirm freshness. Keep it
    // well below --max_staleness.
    absl::Duration confirm_interval = absl::Milliseconds(500);
    // A feed that stays behind a confirmed head for this long without
    // delivering is restarted.
    absl::Duration stall_timeout = absl::Seconds(2);
    // Wait before following again after a failed attempt.
    absl::Duration retry_interval = absl::Milliseconds(200);
  };

  // What a scrape or the health service reads.
  struct Status {
    uint64_t revision = 0;                          // the serving state's
    absl::Duration lag = absl::InfiniteDuration();  // Freshness::Lag()
    bool serving = false;                           // Freshness::fresh()
    uint64_t reloads = 0;        // snapshots loaded after the first
    uint64_t feed_restarts = 0;  // feeds followed again
  };

  // Does not own its arguments; they must outlive it.
  Follower(storage::EtcdStore* store, Applier* applier, ServingState* state,
           Freshness* freshness, const Clock* clock, Options options);
  ~Follower() override;  // Stop()
  Follower(const Follower&) = delete;
  Follower& operator=(const Follower&) = delete;

  // Start() loads the snapshot (an error if etcd cannot be read), starts
  // following and the supervisor.
  absl::Status Start() ABSL_LOCKS_EXCLUDED(mu_, serving_mu_);
  // Stop() ends the feed and the supervisor. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

  // AwaitApplied() returns once the serving state is current as of
  // `revision`, or UNAVAILABLE at `deadline`.
  absl::Status AwaitApplied(uint64_t revision, absl::Time deadline)
      ABSL_LOCKS_EXCLUDED(mu_);
  // CatchUp() reads the cluster's head (linearizably) and waits until the
  // serving state holds every change up to it: afterwards, it holds every
  // change committed before the call. UNAVAILABLE when etcd cannot be read
  // or at `deadline`.
  absl::Status CatchUp(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);

  // OnServingChange() calls `fn` with whether the replica serves (Freshness
  // says fresh) now, and again (on a background thread) whenever that
  // changes. Replaces an earlier `fn`.
  void OnServingChange(std::function<void(bool serving)> fn)
      ABSL_LOCKS_EXCLUDED(serving_mu_);

  Status status() const ABSL_LOCKS_EXCLUDED(mu_);

  // HorizonProbe: wakes the confirmer (lock-free; it runs on the thread
  // that parks a call, possibly inside an apply).
  void ProbeSoon() override;

 private:
  // A confirmation read: at `as_of` the head was (last_write, revision).
  struct Pending {
    absl::Time as_of;
    uint64_t last_write = 0;
    uint64_t revision = 0;
  };

  // LoadSnapshot() loads the latest snapshot into the serving state (at
  // start, or over it after compaction: `reload`) and confirms it.
  absl::Status LoadSnapshot(bool reload) ABSL_LOCKS_EXCLUDED(mu_);
  // StartFeed() follows from the revision applied.
  absl::Status StartFeed() ABSL_LOCKS_EXCLUDED(mu_);
  void OnChange(storage::Change change) ABSL_LOCKS_EXCLUDED(mu_);
  void OnProgress(uint64_t revision) ABSL_LOCKS_EXCLUDED(mu_);
  void OnEnd(const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);
  // Publish() moves the served revision to `revision` if that is later,
  // and confirms the pending reads that are now applied.
  void PublishLocked(uint64_t revision) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void ConfirmLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // ReadHead() reads the head and queues it as a pending confirmation.
  absl::StatusOr<storage::EtcdStore::Head> ReadHead() ABSL_LOCKS_EXCLUDED(mu_);
  // The two background threads: one keeps the feed running (following
  // again, reloading), the other confirms freshness, so that a slow feed
  // restart never delays a confirmation or the other way round.
  void RunFeeder() ABSL_LOCKS_EXCLUDED(mu_);
  void RunConfirmer() ABSL_LOCKS_EXCLUDED(mu_);
  // Reports a change of Freshness (log, callback).
  void CheckServing(const absl::Status& last_error)
      ABSL_LOCKS_EXCLUDED(serving_mu_);

  storage::EtcdStore* const store_;
  // Single-writer: applied only under mu_.
  Applier* const applier_ ABSL_PT_GUARDED_BY(mu_);
  ServingState* const state_;
  Freshness* const freshness_;
  const Clock* const clock_;
  const Options options_;

  // The last Freshness seen by the supervisor, and who hears of changes.
  Mutex serving_mu_;
  bool serving_ ABSL_GUARDED_BY(serving_mu_) = false;
  std::function<void(bool)> on_serving_change_ ABSL_GUARDED_BY(serving_mu_);

  // Serializes applying (the Applier is single-writer) with publishing.
  mutable Mutex mu_;
  CondVar cv_;  // applied_, feed_ended_, stopping_
  uint64_t applied_ ABSL_GUARDED_BY(mu_) = 0;  // served revision
  std::deque<Pending> pending_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool feed_ended_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status feed_end_ ABSL_GUARDED_BY(mu_);
  // The feeder should follow again: the feed stalled (set by the
  // confirmer).
  bool restart_requested_ ABSL_GUARDED_BY(mu_) = false;
  bool feed_running_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status feed_error_ ABSL_GUARDED_BY(mu_);   // last failure to follow
  absl::Time last_delivery_ ABSL_GUARDED_BY(mu_);  // a change or progress
  uint64_t reloads_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t feed_restarts_ ABSL_GUARDED_BY(mu_) = 0;
  // A horizon probe is wanted (read without mu_: ProbeSoon() may run while
  // mu_ is held by an apply on the same thread).
  std::atomic<bool> probe_requested_{false};

  // The feeder thread's (and Start()'s).
  std::unique_ptr<storage::ChangeFeed> feed_;
  std::thread feeder_;
  std::thread confirmer_;
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_CLUSTER_FOLLOWER_H_
