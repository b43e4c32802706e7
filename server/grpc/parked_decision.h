// ParkedDecision: a decision's call parked until the revision it needs is
// applied, holding no thread (ServingState::WhenApplied). Used by the
// Authorizer's handlers and Envoy ext_authz Check.
#ifndef SCOPEKEEPER_SERVER_GRPC_PARKED_DECISION_H_
#define SCOPEKEEPER_SERVER_GRPC_PARKED_DECISION_H_

#include <grpcpp/grpcpp.h>
#include <grpcpp/support/byte_buffer.h>

#include <cstdint>
#include <functional>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "base/mutex.h"
#include "server/decision/decision_engine.h"
#include "server/decision/serving_state.h"
#include "server/grpc/call_tracker.h"
#include "server/grpc/grpc_status.h"
#include "server/metrics/rpc_metrics.h"

namespace scopekeeper {

// Owns copies of the request and the response, asks the engine again
// (`attempt`, a DecisionEngine Try*() call) when woken, and finishes the
// call with `respond` (which puts the answer to the decision into the raw
// response, or returns the error to end the call with) -- or, if the call is
// cancelled (by the client or its deadline) first, drops the wait. Deletes
// itself when the call is done.
template <typename Request, typename Response>
class ParkedDecision final : public grpc::ServerUnaryReactor {
 public:
  using Attempt =
      std::function<DecisionEngine::Outcome(const Request&, Response*)>;
  // `decided`: the engine's status for a decision made.
  using Respond = std::function<absl::Status(const absl::Status& decided,
                                             const Request&, const Response&,
                                             grpc::ByteBuffer* raw_response)>;

  ParkedDecision(ServingState* state, CallTracker::Call call,
                 RpcMetrics::Call counted, Request request,
                 grpc::ByteBuffer* raw_response, Attempt attempt,
                 Respond respond)
      : state_(state),
        call_(std::move(call)),
        counted_(std::move(counted)),
        request_(std::move(request)),
        raw_response_(raw_response),
        attempt_(std::move(attempt)),
        respond_(std::move(respond)) {}

  // Park() waits for `revision`; the call may finish at once, on this thread.
  void Park(uint64_t revision) {
    const ServingState::WaitId id = state_->WhenApplied(
        revision, [this](absl::Status status) { Applied(std::move(status)); });
    if (id == 0) return;  // Applied() ran already
    bool cancelled;
    {
      MutexLock lock(&mu_);
      parked_ = id;
      cancelled = cancelled_;
    }
    if (cancelled && state_->CancelWait(id)) {
      Done(absl::CancelledError("call cancelled while waiting"));
    }
  }

  void OnCancel() override {
    ServingState::WaitId id;
    {
      MutexLock lock(&mu_);
      cancelled_ = true;
      id = parked_;
    }
    if (id != 0 && state_->CancelWait(id)) {
      Done(absl::CancelledError("call cancelled while waiting"));
    }
  }

  void OnDone() override { delete this; }

 private:
  void Applied(absl::Status status) {
    {
      MutexLock lock(&mu_);
      parked_ = 0;
    }
    if (!status.ok()) return Done(status);
    response_.Clear();
    const DecisionEngine::Outcome outcome = attempt_(request_, &response_);
    if (!outcome.ready()) {
      if (++awaits_ > DecisionEngine::kMaxAwaits) {
        return Done(DecisionEngine::TooManyAwaits());
      }
      return Park(outcome.await_revision);
    }
    Done(respond_(outcome.status, request_, response_, raw_response_));
  }

  void Done(const absl::Status& status) {
    const grpc::Status grpc_status = ToGrpcStatus(status);
    counted_.Done(grpc_status.error_code());
    Finish(grpc_status);
  }

  ServingState* const state_;
  const CallTracker::Call call_;  // in flight until the call is done
  RpcMetrics::Call counted_;      // Done() once, by the one Finish()
  const Request request_;
  Response response_;
  grpc::ByteBuffer* const raw_response_;
  const Attempt attempt_;
  const Respond respond_;
  int awaits_ = 0;  // touched only by Applied(), one call at a time
  Mutex mu_;
  ServingState::WaitId parked_ ABSL_GUARDED_BY(mu_) = 0;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_GRPC_PARKED_DECISION_H_
