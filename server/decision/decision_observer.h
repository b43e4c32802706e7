// DecisionObserver: what the decision path reports about itself (for
// metrics and sampled decision logs), behind an interface so the engine
// depends on no metrics library. NoDecisionObserver() does nothing.
#ifndef SCOPEKEEPER_SERVER_DECISION_DECISION_OBSERVER_H_
#define SCOPEKEEPER_SERVER_DECISION_DECISION_OBSERVER_H_

#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/scopekeeper/v1/scopekeeper.pb.h"

namespace scopekeeper {

// Implementations must be thread-safe and cheap: they run on every decision.
class DecisionObserver {
 public:
  virtual ~DecisionObserver() = default;
  // OnCacheLookup() reports a key-cache lookup: a hit, or a miss (the store
  // is read).
  virtual void OnCacheLookup(bool hit) = 0;
  // OnDecision() reports a decision made: the API it was for (named in the
  // request or selected by host and path; "" for an explicit requirement),
  // the request, its answer and how long deciding took.
  virtual void OnDecision(absl::string_view api,
                          const v1::AuthorizeRequest& request,
                          const v1::AuthorizeResponse& response,
                          absl::Duration latency) = 0;
};

// DecisionObservers reports to each observer it was given, in order. Does
// not own them.
class DecisionObservers final : public DecisionObserver {
 public:
  explicit DecisionObservers(std::vector<DecisionObserver*> observers)
      : observers_(std::move(observers)) {}
  void OnCacheLookup(bool hit) override {
    for (DecisionObserver* o : observers_) o->OnCacheLookup(hit);
  }
  void OnDecision(absl::string_view api, const v1::AuthorizeRequest& request,
                  const v1::AuthorizeResponse& response,
                  absl::Duration latency) override {
    for (DecisionObserver* o : observers_) {
      o->OnDecision(api, request, response, latency);
    }
  }

 private:
  const std::vector<DecisionObserver*> observers_;
};

// NoDecisionObserver() is a process-wide observer that ignores everything.
DecisionObserver* NoDecisionObserver();

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_DECISION_DECISION_OBSERVER_H_
