// GroupCommitter: the local store's write path. One writer thread takes the
// queued commits in batches: it runs each commit's build step against the
// store (which shows every earlier write, synced or not), writes the
// resulting mutation unsynced as the next revision, then syncs the store
// once for the whole batch and applies the batch's changes to the serving
// state in revision order (Applier) before any of its callers return. So
// concurrent writers share one sync and hand no lock to each other, and the
// serving state (what decisions read) only ever holds durable changes.
//
// Barriers (commits built from the serving state itself: PutPolicy, PutApp,
// ApproveInstallation) run their build step once every earlier change is
// applied, and their change is applied before the next build step runs.
//
// Failure. When a store write or sync fails for lack of storage (UNAVAILABLE
// or RESOURCE_EXHAUSTED from the store), the batch's callers get
// UNAVAILABLE, decisions keep serving the last durable state, and every
// later commit fails at once with the cause — except that, at most once per
// `recovery_interval`, the committer asks the store to Recover() (e.g. after
// disk space was freed). If it does, the changes written before the failed
// sync are durable: they are applied, and commits are taken again.
#ifndef SCOPEKEEPER_SERVER_REGISTRY_GROUP_COMMIT_H_
#define SCOPEKEEPER_SERVER_REGISTRY_GROUP_COMMIT_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <optional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "base/mutex.h"
#include "server/decision/serving_state.h"
#include "server/registry/applier.h"
#include "server/registry/commit_observer.h"
#include "server/registry/committer.h"
#include "storage/store.h"

namespace scopekeeper {

// Thread-safe. Does not own its arguments; nothing else may write to or
// sync the store. Build steps run once, on the writer thread; guards are
// not checked (there is one writer).
class GroupCommitter final : public Committer {
 public:
  using Prepared = Committer::Prepared;
  using Build = Committer::Build;

  static constexpr absl::Duration kDefaultRecoveryInterval = absl::Seconds(1);

  GroupCommitter(storage::Store* store, Applier* applier, ServingState* state,
                 const Clock* clock, CommitObserver* observer,
                 absl::Duration recovery_interval = kDefaultRecoveryInterval);
  // Stops the writer thread once the queued commits are done.
  ~GroupCommitter() override;
  GroupCommitter(const GroupCommitter&) = delete;
  GroupCommitter& operator=(const GroupCommitter&) = delete;

  // Start() starts the writer thread at the store's revision.
  // REQUIRES: the serving state is loaded (Applier::Load()).
  absl::Status Start() override;

  // Commit() runs `build` (see Build) after every earlier commit's build and
  // writes its change as the next revision. It returns once everything
  // written up to that point is durable and applied, with the revision
  // written (0 when build wrote nothing), build's error, or UNAVAILABLE if
  // the store failed. See the file comment for `barrier`.
  absl::StatusOr<uint64_t> Commit(bool barrier, Build build) override
      ABSL_LOCKS_EXCLUDED(mu_);

  // AwaitVisible() returns once `revision`, if this committer wrote it, is
  // durable and applied: for reads, which see unsynced writes in the store.
  // UNAVAILABLE if the store failed before it was.
  absl::Status AwaitVisible(uint64_t revision) override;

  // queued() is how many commits wait for the writer thread (not yet taken
  // into a batch).
  size_t queued() const override ABSL_LOCKS_EXCLUDED(mu_);

  // written_revision() is the last revision written to the store (maybe not
  // yet durable).
  uint64_t written_revision() const {
    return written_.load(std::memory_order_acquire);
  }

 private:
  struct Request {
    bool barrier;
    Build* build;
    absl::StatusOr<uint64_t> result = uint64_t{0};
    // Guarded by GroupCommitter::mu_, which the analysis cannot name from
    // here: set only by Finish() and read only by Commit(), both under it.
    bool done = false;
  };
  // Written, not yet durable.
  struct Pending {
    CommittedChange change;
  };

  void Run() ABSL_LOCKS_EXCLUDED(mu_);  // the writer thread
  void ProcessBatch(const std::vector<Request*>& batch);
  // SyncAndApply() syncs `pending` and applies it, then finishes `waiting`
  // (with UNAVAILABLE instead if the sync failed). Both are emptied. False
  // if the store failed.
  bool SyncAndApply(std::vector<Pending>* pending,
                    std::vector<Request*>* waiting);
  // Fail() records a store failure; `unsynced` are changes written that a
  // recovery makes durable.
  void Fail(const absl::Status& cause, std::vector<Pending> unsynced);
  // TryRecover() is true when the store takes writes (again).
  bool TryRecover();
  void Finish(const std::vector<Request*>& requests) ABSL_LOCKS_EXCLUDED(mu_);

  storage::Store* const store_;
  Applier* const applier_;
  ServingState* const state_;
  const Clock* const clock_;
  CommitObserver* const observer_;
  const absl::Duration recovery_interval_;

  std::atomic<uint64_t> written_{0};
  // Writer thread only.
  absl::Status failure_;           // non-OK: the store failed
  std::vector<Pending> unsynced_;  // written before the failed sync
  absl::Time next_recovery_ = absl::InfinitePast();

  mutable Mutex mu_;
  CondVar work_cv_;  // queue_ or stopping_ changed
  CondVar done_cv_;  // some request is done
  std::deque<Request*> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread writer_;
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_REGISTRY_GROUP_COMMIT_H_
