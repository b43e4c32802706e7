// CallTracker: counts the Scopekeeper calls in flight, so that shutdown
// waits for them -- and only for them: gRPC's own Shutdown(deadline) also
// waits for every open connection, so one idle client (or a TCP connection
// that never sent a byte) held SIGTERM for the whole grace period. While
// draining, new calls are refused with UNAVAILABLE (clients retry another
// replica).
#ifndef SCOPEKEEPER_SERVER_GRPC_CALL_TRACKER_H_
#define SCOPEKEEPER_SERVER_GRPC_CALL_TRACKER_H_

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/mutex.h"

namespace scopekeeper {

// Thread-safe.
class CallTracker {
 public:
  // One call in flight, until destroyed. Movable.
  class Call {
   public:
    Call() = default;
    Call(Call&& other) noexcept : tracker_(other.tracker_) {
      other.tracker_ = nullptr;
    }
    Call& operator=(Call&& other) noexcept {
      if (this != &other) {
        Release();
        tracker_ = other.tracker_;
        other.tracker_ = nullptr;
      }
      return *this;
    }
    ~Call() { Release(); }

   private:
    friend class CallTracker;
    explicit Call(CallTracker* tracker) : tracker_(tracker) {}
    void Release() {
      if (tracker_ != nullptr) tracker_->Leave();
      tracker_ = nullptr;
    }
    CallTracker* tracker_ = nullptr;
  };

  // Enter() counts a new call; UNAVAILABLE once Drain() began.
  absl::StatusOr<Call> Enter() ABSL_LOCKS_EXCLUDED(mu_);

  // Drain() refuses every later call and waits until no call is in flight
  // or `timeout` passes; true if none is left.
  bool Drain(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_);

  int in_flight() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Leave() ABSL_LOCKS_EXCLUDED(mu_);

  mutable Mutex mu_;
  CondVar idle_cv_;
  int in_flight_ ABSL_GUARDED_BY(mu_) = 0;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_GRPC_CALL_TRACKER_H_
