#include "server/decision/decision_observer.h"

namespace scopekeeper {
namespace {

class Ignore final : public DecisionObserver {
 public:
  void OnCacheLookup(bool) override {}
  void OnDecision(absl::string_view, const v1::AuthorizeRequest&,
                  const v1::AuthorizeResponse&, absl::Duration) override {}
};

}  // namespace

DecisionObserver* NoDecisionObserver() {
  static Ignore* const observer = new Ignore;
  return observer;
}

}  // namespace scopekeeper
