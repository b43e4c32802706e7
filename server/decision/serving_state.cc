#include "server/decision/serving_state.h"

#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

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
  std::vector<absl::AnyInvocable<void(absl::Status)>> ready;
  {
    MutexLock lock(&wait_mu_);
    revision_.store(revision, std::memory_order_release);
    const auto end = parked_.upper_bound(revision);
    for (auto it = parked_.begin(); it != end; ++it) {
      parked_ids_.erase(it->second.id);
      ready.push_back(std::move(it->second.done));
    }
    parked_.erase(parked_.begin(), end);
  }
  RaiseHorizon(revision);
  wait_cv_.SignalAll();
  for (auto& done : ready) done(absl::OkStatus());
}

void ServingState::RaiseHorizon(uint64_t revision) {
  uint64_t current = horizon_.load(std::memory_order_relaxed);
  while (current < revision &&
         !horizon_.compare_exchange_weak(current, revision,
                                         std::memory_order_acq_rel)) {
  }
}

absl::Status ServingState::EndedLocked() const {
  if (closed_) return absl::UnavailableError("server is shutting down");
  return stopped_;
}

ServingState::WaitId ServingState::WhenApplied(
    uint64_t revision, absl::AnyInvocable<void(absl::Status)> done) {
  absl::Status now;
  WaitId id = 0;
  {
    MutexLock lock(&wait_mu_);
    if (revision_.load(std::memory_order_acquire) < revision) {
      now = EndedLocked();
      if (now.ok() && parked_.size() >= kMaxParkedWaits) {
        now = absl::ResourceExhaustedError(absl::StrCat(
            "too many calls waiting for a revision (", kMaxParkedWaits, ")"));
      }
      if (now.ok()) {
        id = next_wait_id_++;
        parked_ids_[id] = parked_.emplace(
            revision, Parked{id, std::move(done), horizon_reads_});
      }
    }
  }
  if (id == 0) {
    done(std::move(now));
    return 0;
  }
  // After parking: a horizon read that begins from now on covers it.
  if (revision > horizon()) {
    if (HorizonProbe* probe = probe_.load(std::memory_order_acquire)) {
      probe->ProbeSoon();
    }
  }
  return id;
}

uint64_t ServingState::BeginHorizonRead() {
  MutexLock lock(&wait_mu_);
  return ++horizon_reads_;
}

void ServingState::EndHorizonRead(uint64_t read, uint64_t head) {
  RaiseHorizon(head);
  std::vector<std::pair<uint64_t, absl::AnyInvocable<void(absl::Status)>>>
      beyond;
  {
    MutexLock lock(&wait_mu_);
    for (auto it = parked_.upper_bound(horizon()); it != parked_.end();) {
      if (it->second.horizon_reads < read) {
        parked_ids_.erase(it->second.id);
        beyond.emplace_back(it->first, std::move(it->second.done));
        it = parked_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& [revision, done] : beyond) {
    done(absl::OutOfRangeError(absl::StrCat(
        "min_revision: revision ", revision,
        " is beyond the latest revision of the cluster (", horizon(), ")")));
  }
}

bool ServingState::CancelWait(WaitId id) {
  MutexLock lock(&wait_mu_);
  const auto it = parked_ids_.find(id);
  if (it == parked_ids_.end()) return false;
  parked_.erase(it->second);
  parked_ids_.erase(it);
  return true;
}

size_t ServingState::parked_waits() const {
  MutexLock lock(&wait_mu_);
  return parked_.size();
}

absl::Status ServingState::WaitForRevision(uint64_t revision,
                                           absl::Duration timeout) const {
  if (this->revision() >= revision) return absl::OkStatus();
  MutexLock lock(&wait_mu_);
  wait_cv_.WaitWithTimeout(
      &wait_mu_, timeout, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(wait_mu_) {
        return !EndedLocked().ok() ||
               revision_.load(std::memory_order_acquire) >= revision;
      });
  if (revision_.load(std::memory_order_acquire) >= revision) {
    return absl::OkStatus();
  }
  SK_RETURN_IF_ERROR(EndedLocked());
  return absl::DeadlineExceededError(absl::StrCat(
      "min_revision ", revision, " not reached before the deadline (at ",
      revision_.load(), ")"));
}

void ServingState::StopAdvancing(absl::Status why) {
  std::multimap<uint64_t, Parked> ended;
  absl::Status status;
  {
    MutexLock lock(&wait_mu_);
    if (stopped_.ok()) stopped_ = std::move(why);
    status = stopped_;
    ended.swap(parked_);
    parked_ids_.clear();
  }
  wait_cv_.SignalAll();
  for (auto& [revision, parked] : ended) parked.done(status);
}

void ServingState::ResumeAdvancing() {
  MutexLock lock(&wait_mu_);
  stopped_ = absl::OkStatus();
}

void ServingState::Close() {
  std::multimap<uint64_t, Parked> ended;
  {
    MutexLock lock(&wait_mu_);
    closed_ = true;
    ended.swap(parked_);
    parked_ids_.clear();
  }
  wait_cv_.SignalAll();
  for (auto& [revision, parked] : ended) {
    parked.done(absl::UnavailableError("server is shutting down"));
  }
}

}  // namespace scopekeeper
