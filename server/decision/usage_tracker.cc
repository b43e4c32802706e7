#include "server/decision/usage_tracker.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "base/status_macros.h"
#include "base/time_util.h"

namespace scopekeeper {

void UsageTracker::Touch(const CompiledKey& key, absl::Time now) {
  const int64_t minute = absl::ToUnixSeconds(now) / 60;
  int64_t seen = key.last_use_minute.load(std::memory_order_relaxed);
  if (seen >= minute) return;
  // One decision per key and minute wins the right to record it.
  if (!key.last_use_minute.compare_exchange_strong(seen, minute,
                                                   std::memory_order_relaxed)) {
    return;
  }
  MutexLock lock(&mu_);
  absl::Time& pending = pending_[key.key_id()];
  pending = std::max(pending, now);
}

absl::Status UsageTracker::Flush() {
  absl::flat_hash_map<std::string, absl::Time> taken;
  {
    MutexLock lock(&mu_);
    taken.swap(pending_);
  }
  if (taken.empty()) return absl::OkStatus();
  std::vector<std::pair<std::string, google::protobuf::Timestamp>> uses;
  uses.reserve(taken.size());
  for (const auto& [key_id, time] : taken) {
    uses.emplace_back(key_id, ToProtoTime(time));
  }
  const absl::Status status = store_->RecordKeyUses(uses);
  if (!status.ok()) {
    MutexLock lock(&mu_);
    for (const auto& [key_id, time] : taken) {
      absl::Time& pending = pending_[key_id];
      pending = std::max(pending, time);
    }
  }
  return status;
}

absl::StatusOr<std::optional<absl::Time>> UsageTracker::LastUse(
    absl::string_view key_id) {
  std::optional<absl::Time> latest;
  {
    MutexLock lock(&mu_);
    const auto it = pending_.find(key_id);
    if (it != pending_.end()) latest = it->second;
  }
  SK_ASSIGN_OR_RETURN(std::optional<google::protobuf::Timestamp> stored,
                      store_->GetKeyLastUse(key_id));
  if (stored.has_value()) {
    const absl::Time t = FromProtoTime(*stored);
    if (!latest.has_value() || t > *latest) latest = t;
  }
  return latest;
}

}  // namespace scopekeeper
