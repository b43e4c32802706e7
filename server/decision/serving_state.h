// ServingState: what decisions read: the policy in force, the apps and
// installations, the key cache and the applied revision. Written only by the
// Registry (one writer at a time); read concurrently by any number of
// decisions.
#ifndef SCOPEKEEPER_SERVER_DECISION_SERVING_STATE_H_
#define SCOPEKEEPER_SERVER_DECISION_SERVING_STATE_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "base/mutex.h"
#include "server/decision/decision_holds.h"
#include "server/decision/key_cache.h"
#include "server/policy/app_directory.h"
#include "server/policy/policy.h"

namespace scopekeeper {

// Thread-safe.
class ServingState {
 public:
  // `key_cache_capacity`: see KeyCache (kUnbounded: every key cached).
  explicit ServingState(size_t key_cache_capacity = KeyCache::kUnbounded)
      : policy_(PolicySnapshot::Empty()),
        apps_(std::make_shared<const AppDirectory>()),
        cache_(key_cache_capacity) {}

  // policy() is the snapshot in force (never null).
  std::shared_ptr<const PolicySnapshot> policy() const {
    return std::atomic_load_explicit(&policy_, std::memory_order_acquire);
  }
  void set_policy(std::shared_ptr<const PolicySnapshot> policy) {
    std::atomic_store_explicit(&policy_, std::move(policy),
                               std::memory_order_release);
    policy_version_.store(NextPolicyVersion(), std::memory_order_release);
  }

  // PolicyForDecision() is policy() for the data plane, without its cost:
  // each thread keeps its own reference to the snapshot and re-reads
  // policy() only after set_policy(), so a decision takes no lock and
  // writes no reference count shared with other cores. The result is at
  // least as new as any set_policy() that happened before the call, and
  // stays valid until the same thread calls PolicyForDecision() again (on
  // any ServingState): do not keep it across decisions.
  const PolicySnapshot& PolicyForDecision() const;

  // apps() is the app directory in force (never null).
  std::shared_ptr<const AppDirectory> apps() const {
    return std::atomic_load_explicit(&apps_, std::memory_order_acquire);
  }
  void set_apps(std::shared_ptr<const AppDirectory> apps) {
    std::atomic_store_explicit(&apps_, std::move(apps),
                               std::memory_order_release);
  }

  KeyCache& cache() { return cache_; }
  const KeyCache& cache() const { return cache_; }

  // holds() are the holds on decisions (see DecisionHolds): the engine
  // checks them before each decision.
  DecisionHolds& holds() { return holds_; }
  const DecisionHolds& holds() const { return holds_; }

  // revision() is the last revision whose mutation is applied to this state.
  uint64_t revision() const {
    return revision_.load(std::memory_order_acquire);
  }

  // PublishRevision() raises the applied revision and wakes waiters.
  // REQUIRES: the mutation of `revision` is applied to policy and cache.
  void PublishRevision(uint64_t revision) ABSL_LOCKS_EXCLUDED(wait_mu_);

  // horizon() is the highest revision known to exist: written here (not
  // necessarily applied yet), or seen in the cluster. A min_revision beyond
  // it cannot be waited for. RaiseHorizon() raises it (never lowers it).
  uint64_t horizon() const { return horizon_.load(std::memory_order_acquire); }
  void RaiseHorizon(uint64_t revision);

  // A cluster replica's horizon trails the cluster: a revision written on
  // another replica a moment ago may be beyond it and still be real. With a
  // HorizonProbe, a wait beyond the horizon is parked like any other and
  // the probe is asked to read the cluster's head soon; that read, between
  // BeginHorizonRead() and EndHorizonRead(), either raises the horizon past
  // the wait (which then waits as usual) or ends it with OUT_OF_RANGE.
  class HorizonProbe {
   public:
    virtual ~HorizonProbe() = default;
    // ProbeSoon() asks for a read of the head soon. Must not block, and
    // must not call back into this state.
    virtual void ProbeSoon() = 0;
  };
  // SetHorizonProbe(): before the state serves, or nullptr when the probe
  // stops. Without one, a wait beyond the horizon is the caller's error
  // (the engine answers OUT_OF_RANGE at once).
  void SetHorizonProbe(HorizonProbe* probe) {
    probe_.store(probe, std::memory_order_release);
  }
  bool probes_horizon() const {
    return probe_.load(std::memory_order_acquire) != nullptr;
  }
  // BeginHorizonRead() is called before reading the cluster's head, and
  // EndHorizonRead() with that read's token and the head's revision: it
  // raises the horizon to `head` and ends the waits parked before the read
  // began that are still beyond it.
  uint64_t BeginHorizonRead() ABSL_LOCKS_EXCLUDED(wait_mu_);
  void EndHorizonRead(uint64_t read, uint64_t head)
      ABSL_LOCKS_EXCLUDED(wait_mu_);

  // Revision waits that hold no thread. WhenApplied() calls `done` once
  // revision() >= `revision` (with OK), once the state stops advancing or
  // closes (UNAVAILABLE), when a horizon read shows `revision` does not
  // exist (OUT_OF_RANGE; see HorizonProbe), or at once with
  // RESOURCE_EXHAUSTED when
  // kMaxParkedWaits waits are parked. `done` runs at once on this thread
  // when it can, else on the thread that publishes, stops or closes: keep
  // it short, and never call back into WhenApplied()/CancelWait() of this
  // state from it while holding a lock `done`'s caller also takes. Returns
  // an id for CancelWait(); 0 when `done` already ran.
  using WaitId = uint64_t;
  static constexpr size_t kMaxParkedWaits = 100000;
  WaitId WhenApplied(uint64_t revision,
                     absl::AnyInvocable<void(absl::Status)> done)
      ABSL_LOCKS_EXCLUDED(wait_mu_);
  // CancelWait() drops a parked wait: true if its `done` will never run,
  // false if it already ran or is running.
  bool CancelWait(WaitId id) ABSL_LOCKS_EXCLUDED(wait_mu_);
  // parked_waits() is how many waits are parked.
  size_t parked_waits() const ABSL_LOCKS_EXCLUDED(wait_mu_);

  // WaitForRevision() blocks the calling thread until revision() >=
  // `revision` or `timeout` passes (DEADLINE_EXCEEDED naming both
  // revisions); UNAVAILABLE once Close() or StopAdvancing() was called (at
  // once, for a revision that can no longer be reached). For in-process
  // callers that may block (admin threads, tests); the gRPC data plane uses
  // WhenApplied().
  absl::Status WaitForRevision(uint64_t revision, absl::Duration timeout) const
      ABSL_LOCKS_EXCLUDED(wait_mu_);

  // StopAdvancing() says no revision after revision() will be applied (the
  // registry failed: `why`, an UNAVAILABLE status, is what waiters get).
  // Decisions keep serving the applied state; nothing waits for more.
  void StopAdvancing(absl::Status why) ABSL_LOCKS_EXCLUDED(wait_mu_);
  // ResumeAdvancing() undoes StopAdvancing(): the registry recovered.
  void ResumeAdvancing() ABSL_LOCKS_EXCLUDED(wait_mu_);

  // Close() wakes every waiter and makes later waits fail: the server is
  // shutting down and long waits (Watch streams) must end now.
  void Close() ABSL_LOCKS_EXCLUDED(wait_mu_);

 private:
  std::shared_ptr<const PolicySnapshot> policy_;  // atomic_load/store only
  std::shared_ptr<const AppDirectory> apps_;      // atomic_load/store only
  // Changes with every set_policy(); unique across all ServingStates of the
  // process, so a thread's cached snapshot can never be mistaken for another
  // state's (see PolicyForDecision()).
  static uint64_t NextPolicyVersion();
  std::atomic<uint64_t> policy_version_{NextPolicyVersion()};
  KeyCache cache_;
  DecisionHolds holds_;
  std::atomic<uint64_t> revision_{0};
  std::atomic<uint64_t> horizon_{0};
  // The status waits end with now instead of waiting: OK while revisions
  // may still come.
  absl::Status EndedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(wait_mu_);
  struct Parked {
    WaitId id;
    absl::AnyInvocable<void(absl::Status)> done;
    uint64_t horizon_reads = 0;  // horizon reads begun when it was parked
  };
  mutable Mutex wait_mu_;
  mutable CondVar wait_cv_;  // revision_ raised, or the waits ended
  bool closed_ ABSL_GUARDED_BY(wait_mu_) = false;
  // Non-OK once StopAdvancing().
  absl::Status stopped_ ABSL_GUARDED_BY(wait_mu_);
  // Parked waits by the revision they wait for, and where each id is.
  std::multimap<uint64_t, Parked> parked_ ABSL_GUARDED_BY(wait_mu_);
  absl::flat_hash_map<WaitId, std::multimap<uint64_t, Parked>::iterator>
      parked_ids_ ABSL_GUARDED_BY(wait_mu_);
  WaitId next_wait_id_ ABSL_GUARDED_BY(wait_mu_) = 1;
  uint64_t horizon_reads_ ABSL_GUARDED_BY(wait_mu_) = 0;
  std::atomic<HorizonProbe*> probe_{nullptr};
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_DECISION_SERVING_STATE_H_
