#include "server/serving_state.h"

#include <chrono>

#include "absl/strings/str_cat.h"

namespace scopekeeper {

void ServingState::PublishRevision(uint64_t revision) {
  {
    std::lock_guard<std::mutex> lock(wait_mu_);
    revision_.store(revision, std::memory_order_release);
  }
  wait_cv_.notify_all();
}

absl::Status ServingState::WaitForRevision(uint64_t revision,
                                           absl::Time deadline) const {
  if (this->revision() >= revision) return absl::OkStatus();
  std::unique_lock<std::mutex> lock(wait_mu_);
  const auto tp = absl::ToChronoTime(deadline);
  const bool reached = wait_cv_.wait_until(lock, tp, [&] {
    return revision_.load(std::memory_order_acquire) >= revision;
  });
  if (!reached) {
    return absl::DeadlineExceededError(absl::StrCat(
        "min_revision ", revision, " not reached before the deadline (at ",
        revision_.load(), ")"));
  }
  return absl::OkStatus();
}

}  // namespace scopekeeper
