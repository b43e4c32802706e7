#include "server/decision/freshness.h"

#include "absl/strings/str_cat.h"

namespace scopekeeper {

void Freshness::Confirm(absl::Time as_of) {
  const int64_t nanos = absl::ToUnixNanos(as_of);
  int64_t seen = confirmed_unix_nanos_.load(std::memory_order_relaxed);
  while (seen < nanos && !confirmed_unix_nanos_.compare_exchange_weak(
                             seen, nanos, std::memory_order_release,
                             std::memory_order_relaxed)) {
  }
}

absl::Time Freshness::confirmed_as_of() const {
  const int64_t nanos = confirmed_unix_nanos_.load(std::memory_order_acquire);
  return nanos == kNever ? absl::InfinitePast() : absl::FromUnixNanos(nanos);
}

absl::Duration Freshness::Lag() const {
  const absl::Time as_of = confirmed_as_of();
  if (as_of == absl::InfinitePast()) return absl::InfiniteDuration();
  return clock_->Now() - as_of;
}

absl::Status Freshness::Check() const {
  const absl::Duration lag = Lag();
  if (lag <= max_staleness_) return absl::OkStatus();
  if (lag == absl::InfiniteDuration()) {
    return absl::UnavailableError(
        "replica has not yet confirmed it is current with the cluster; "
        "failing closed");
  }
  return absl::UnavailableError(absl::StrCat(
      "replica not confirmed current with the cluster for ",
      absl::FormatDuration(absl::Trunc(lag, absl::Milliseconds(1))),
      " (more than --max_staleness=", absl::FormatDuration(max_staleness_),
      "); failing closed"));
}

}  // namespace scopekeeper
