#include "server/grpc/call_tracker.h"

namespace scopekeeper {

absl::StatusOr<CallTracker::Call> CallTracker::Enter() {
  MutexLock lock(&mu_);
  if (draining_) {
    return absl::UnavailableError("server is shutting down; retry elsewhere");
  }
  ++in_flight_;
  return Call(this);
}

void CallTracker::Leave() {
  MutexLock lock(&mu_);
  if (--in_flight_ == 0) idle_cv_.SignalAll();
}

bool CallTracker::Drain(absl::Duration timeout) {
  MutexLock lock(&mu_);
  draining_ = true;
  return idle_cv_.WaitWithTimeout(
      &mu_, timeout,
      [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return in_flight_ == 0; });
}

int CallTracker::in_flight() const {
  MutexLock lock(&mu_);
  return in_flight_;
}

}  // namespace scopekeeper
