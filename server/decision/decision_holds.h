// DecisionHolds: the data plane's off switch. Parts of the server that know
// decisions must not be made — a restored database the operator has not yet
// reviewed (--hold_decisions), a replica that cannot confirm it is current
// (the etcd staleness gate) — hold decisions under their own name; while any
// hold is in place the decision engine answers UNAVAILABLE with the hold's
// reason, and the server reports its Authorizer service NOT_SERVING. Holds
// are independent: releasing one leaves the others in place.
#ifndef SCOPEKEEPER_SERVER_DECISION_DECISION_HOLDS_H_
#define SCOPEKEEPER_SERVER_DECISION_DECISION_HOLDS_H_

#include <atomic>
#include <map>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "base/mutex.h"

namespace scopekeeper {

// Thread-safe. Check() is one atomic load while nothing holds.
class DecisionHolds {
 public:
  // Hold() places (or updates the reason of) `holder`'s hold. Release()
  // removes it. Each returns true when decisions went from served to held
  // (or back): the caller then updates what reports it (health).
  bool Hold(absl::string_view holder, absl::string_view reason)
      ABSL_LOCKS_EXCLUDED(mu_);
  bool Release(absl::string_view holder) ABSL_LOCKS_EXCLUDED(mu_);

  // Check() is OK when decisions may be made, else UNAVAILABLE naming a
  // hold: "decisions are held (<holder>): <reason>".
  absl::Status Check() const {
    if (!held_.load(std::memory_order_acquire)) return absl::OkStatus();
    return HeldStatus();
  }
  bool serving() const { return !held_.load(std::memory_order_acquire); }

 private:
  absl::Status HeldStatus() const ABSL_LOCKS_EXCLUDED(mu_);

  std::atomic<bool> held_{false};  // !holds_.empty()
  mutable Mutex mu_;
  std::map<std::string, std::string, std::less<>> holds_ ABSL_GUARDED_BY(mu_);
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_DECISION_DECISION_HOLDS_H_
