// LogThrottle: keeps a flood of one kind of event (refused credentials from a
// misconfigured client, say) from flooding the log: at most one line per
// interval for each kind, and that line says how many were left out since
// the previous one. Counting every event is the metrics' job.
#ifndef SCOPEKEEPER_BASE_LOG_THROTTLE_H_
#define SCOPEKEEPER_BASE_LOG_THROTTLE_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "base/mutex.h"

namespace scopekeeper {

// Thread-safe. Kinds should be few (a fixed set of names): one small entry
// is kept per kind.
class LogThrottle {
 public:
  // `clock` must outlive the throttle.
  LogThrottle(const Clock* clock, absl::Duration interval)
      : clock_(clock), interval_(interval) {}

  // Admit() records one event of `kind`. True when its line should be
  // written: the first event of the kind, or the first one at least
  // `interval` after the last admitted one. Then *suppressed is the number
  // of events of the kind not admitted since that last one (0 otherwise).
  bool Admit(absl::string_view kind, uint64_t* suppressed)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Kind {
    absl::Time last_admitted = absl::InfinitePast();
    uint64_t suppressed = 0;
  };

  const Clock* const clock_;
  const absl::Duration interval_;
  Mutex mu_;
  absl::flat_hash_map<std::string, Kind> kinds_ ABSL_GUARDED_BY(mu_);
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_BASE_LOG_THROTTLE_H_
