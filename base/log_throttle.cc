#include "base/log_throttle.h"

namespace scopekeeper {

bool LogThrottle::Admit(absl::string_view kind, uint64_t* suppressed) {
  const absl::Time now = clock_->Now();
  MutexLock lock(&mu_);
  Kind& k = kinds_[kind];
  if (now - k.last_admitted < interval_) {
    ++k.suppressed;
    *suppressed = 0;
    return false;
  }
  k.last_admitted = now;
  *suppressed = k.suppressed;
  k.suppressed = 0;
  return true;
}

}  // namespace scopekeeper
