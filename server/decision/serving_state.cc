#include "server/decision/serving_state.h"

#include <chrono>

#include "absl/strings/str_cat.h"

namespace scopekeeper {

uint64_t ServingState::NextPolicyVersion() {
  static std::atomic<uint64_t> last{0};
  return last.fetch_add(1, std::memory_order_relaxed) + 1;
}

const PolicySnapshot& ServingState::PolicyForDecision() const {
  struct Cached {
    uint64_t version = 0;  // 0: none (versions start at 1)
    std::shared_ptr<const PolicySnapshot> snapshot;
  };
  thread_local Cached cached;
  // Version first (acquire pairs with set_policy()'s release): the snapshot
  // loaded after it is at least as new as the version says.
  const uint64_t version = policy_version_.load(std::memory_order_acquire);
  if (cached.version != version) {
    cached.snapshot = policy();
    cached.version = version;
  }
  return *cached.snapshot;
}

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
    return closed_ || !stopped_.ok() ||
           revision_.load(std::memory_order_acquire) >= revision;
  });
  if (revision_.load(std::memory_order_acquire) >= revision) {
    return absl::OkStatus();
  }
  if (woken && closed_) {
    return absl::UnavailableError("server is shutting down");
  }
  if (woken) return stopped_;
  return absl::DeadlineExceededError(absl::StrCat(
      "min_revision ", revision, " not reached before the deadline (at ",
      revision_.load(), ")"));
}

void ServingState::StopAdvancing(absl::Status why) {
  {
    std::lock_guard<std::mutex> lock(wait_mu_);
    if (stopped_.ok()) stopped_ = std::move(why);
  }
  wait_cv_.notify_all();
}

void ServingState::ResumeAdvancing() {
  std::lock_guard<std::mutex> lock(wait_mu_);
  stopped_ = absl::OkStatus();
}

void ServingState::Close() {
  {
    std::lock_guard<std::mutex> lock(wait_mu_);
    closed_ = true;
  }
  wait_cv_.notify_all();
}

}  // namespace scopekeeper
