#include "server/decision/decision_holds.h"

#include "absl/strings/str_cat.h"

namespace scopekeeper {

bool DecisionHolds::Hold(absl::string_view holder, absl::string_view reason) {
  MutexLock lock(&mu_);
  const bool was_serving = holds_.empty();
  holds_[std::string(holder)] = std::string(reason);
  held_.store(true, std::memory_order_release);
  return was_serving;
}

bool DecisionHolds::Release(absl::string_view holder) {
  MutexLock lock(&mu_);
  const auto it = holds_.find(holder);
  if (it == holds_.end()) return false;
  holds_.erase(it);
  held_.store(!holds_.empty(), std::memory_order_release);
  return holds_.empty();
}

absl::Status DecisionHolds::HeldStatus() const {
  MutexLock lock(&mu_);
  if (holds_.empty()) return absl::OkStatus();  // released meanwhile
  const auto& [holder, reason] = *holds_.begin();
  return absl::UnavailableError(
      absl::StrCat("decisions are held (", holder, "): ", reason));
}

}  // namespace scopekeeper
