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
  const bool woken = wait_cv_.wait_until(lock, tp, [&] {
    return closed_ || revision_.load(std::memory_order_acquire) >= revision;
  });
  if (revision_.load(std::memory_order_acquire) >= revision) {
    return absl::OkStatus();
  }
  if (woken) return absl::UnavailableError("server is shutting down");
  return absl::DeadlineExceededError(absl::StrCat(
      "min_revision ", revision, " not reached before the deadline (at ",
      revision_.load(), ")"));
}

void ServingState::Close() {
  {
    std::lock_guard<std::mutex> lock(wait_mu_);
    closed_ = true;
  }
  wait_cv_.notify_all();
}

}  // namespace scopekeeper
