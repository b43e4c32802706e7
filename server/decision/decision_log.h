// DecisionLog: sampled one-line logs of decisions, for tracing a request
// through Scopekeeper by its trace_id without logging every decision on the
// hot path.
//
//   ts=… level=info msg="decision" trace_id=… api=external-pharmacy
//   method=GET route="GET /pharmacy_orders/{uid}" allowed=false
//   reason=INSUFFICIENT_SCOPE http_status=403 key_id=key_… organization_id=…
//   revision=12 latency_us=4
//
// Never logged: the API key, the request path (it may carry personal data
// in its query string; the matched route template is logged instead).
#ifndef SCOPEKEEPER_SERVER_DECISION_DECISION_LOG_H_
#define SCOPEKEEPER_SERVER_DECISION_DECISION_LOG_H_

#include <functional>
#include <string>

#include "absl/time/time.h"
#include "proto/scopekeeper/v1/scopekeeper.pb.h"
#include "server/decision/decision_observer.h"

namespace scopekeeper {

// Thread-safe. A DecisionObserver: give it to the DecisionEngine.
class DecisionLog final : public DecisionObserver {
 public:
  // Logs each decision with probability `sample_rate` (clamped to [0, 1];
  // 0 costs one comparison per decision). Lines go to `sink`, by default
  // the server log (stderr).
  explicit DecisionLog(double sample_rate,
                       std::function<void(const std::string&)> sink = nullptr);

  // MaybeLog() logs (maybe) one decision about `api` (see
  // DecisionObserver::OnDecision()).
  void MaybeLog(absl::string_view api, const v1::AuthorizeRequest& request,
                const v1::AuthorizeResponse& response, absl::Duration latency);

  void OnCacheLookup(bool) override {}
  void OnDecision(absl::string_view api, const v1::AuthorizeRequest& request,
                  const v1::AuthorizeResponse& response,
                  absl::Duration latency) override {
    MaybeLog(api, request, response, latency);
  }

 private:
  const double sample_rate_;
  std::function<void(const std::string&)> sink_;
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_DECISION_DECISION_LOG_H_
