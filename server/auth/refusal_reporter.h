// RefusalReporter: what a refused caller credential leaves behind, for one
// service: a count per reason (scopekeeper_auth_refused_total{service,
// reason}) and a log line, at most one per second per reason, naming the
// client-certificate subject presented, if any, and how many refusals of
// that reason the log left out since its previous line:
//
//   level=warning msg="credential refused" service=scopekeeper.v1.Admin
//     reason=subject_not_listed subject="CN=ci-runner,O=Example"
//     suppressed=41
//
// Never in it: the token presented (right or wrong).
#ifndef SCOPEKEEPER_SERVER_AUTH_REFUSAL_REPORTER_H_
#define SCOPEKEEPER_SERVER_AUTH_REFUSAL_REPORTER_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "base/clock.h"
#include "base/log_throttle.h"
#include "server/auth/caller_auth.h"

namespace scopekeeper {

// Thread-safe.
class RefusalReporter final : public AuthRefusalObserver {
 public:
  // `service`: the gRPC service the credential is for (its metric label).
  // `clock` paces the log (must outlive this).
  RefusalReporter(std::string service, const Clock* clock,
                  absl::Duration log_interval = absl::Seconds(1))
      : service_(std::move(service)), throttle_(clock, log_interval) {}

  void OnRefused(AuthRefusal reason,
                 const std::vector<std::string>& peer_subjects) override;

  const std::string& service() const { return service_; }
  // count() is how many credentials were refused for `reason`.
  uint64_t count(AuthRefusal reason) const {
    return counts_[static_cast<int>(reason)].load(std::memory_order_relaxed);
  }

 private:
  const std::string service_;
  LogThrottle throttle_;
  std::array<std::atomic<uint64_t>, kAuthRefusals> counts_{};
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_AUTH_REFUSAL_REPORTER_H_
