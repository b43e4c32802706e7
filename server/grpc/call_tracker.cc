#include "server/grpc/call_tracker.h"

namespace scopekeeper {

absl::StatusOr<CallTracker::Call> CallTracker::Enter() {
  std::lock_guard<std::mutex> lock(mu_);
  if (draining_) {
    return absl::UnavailableError("server is shutting down; retry elsewhere");
  }
  ++in_flight_;
  return Call(this);
}

void CallTracker::Leave() {
  std::lock_guard<std::mutex> lock(mu_);
  if (--in_flight_ == 0) idle_cv_.notify_all();
}

bool CallTracker::Drain(absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  draining_ = true;
  const auto idle = [&] { return in_flight_ == 0; };
  if (timeout == absl::InfiniteDuration()) {
    idle_cv_.wait(lock, idle);
    return true;
  }
  return idle_cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout), idle);
}

int CallTracker::in_flight() const {
  std::lock_guard<std::mutex> lock(mu_);
  return in_flight_;
}

}  // namespace scopekeeper
