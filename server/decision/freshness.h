// Freshness: whether a cluster replica may still decide (the fail-closed
// gate of "bounded staleness").
//
// A replica decides from its own copy of the state, kept current by
// following etcd. It is *confirmed current as of T* once it has applied
// every change the cluster had committed at time T; its follower confirms
// this with linearizable reads of the cluster's revision (not the local
// member's: a member cut off from its quorum keeps serving its own stale
// data). Decisions are refused with UNAVAILABLE while the last
// confirmation is older than `max_staleness`. So a change committed at
// T0 is, from T0 + max_staleness on, either applied on a replica or that
// replica fails closed: the published revocation bound.
//
// Check() is on the decision path: one atomic load and one clock read. The
// single-node server has no Freshness (its state is the store's).
#ifndef SCOPEKEEPER_SERVER_DECISION_FRESHNESS_H_
#define SCOPEKEEPER_SERVER_DECISION_FRESHNESS_H_

#include <atomic>
#include <cstdint>
#include <limits>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "base/clock.h"

namespace scopekeeper {

// Thread-safe. Does not own `clock`.
class Freshness {
 public:
  Freshness(const Clock* clock, absl::Duration max_staleness)
      : clock_(clock), max_staleness_(max_staleness) {}

  // Confirm() records that the applied state is current as of `as_of` (a
  // time taken before the read that showed it). Only moves forward.
  void Confirm(absl::Time as_of);

  // Check() is OK while the last confirmation is at most max_staleness old,
  // UNAVAILABLE (saying for how long it is not confirmed) otherwise, and
  // before the first confirmation.
  absl::Status Check() const;
  bool fresh() const { return Lag() <= max_staleness_; }

  // Lag() is the age of the last confirmation (InfiniteDuration() before
  // the first): how stale the replica may be.
  absl::Duration Lag() const;
  // confirmed_as_of() is the last confirmation (InfinitePast() before it).
  absl::Time confirmed_as_of() const;
  absl::Duration max_staleness() const { return max_staleness_; }

 private:
  static constexpr int64_t kNever = std::numeric_limits<int64_t>::min();

  const Clock* const clock_;
  const absl::Duration max_staleness_;
  std::atomic<int64_t> confirmed_unix_nanos_{kNever};
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_DECISION_FRESHNESS_H_
