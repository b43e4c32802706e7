// ChangeFeed: the source of Watch streams, event-driven. A stream reads the
// registry's changes a page at a time on the feed's own threads (store
// reads block), hands them to its sink one at a time -- the next only once
// the sink has taken the last, so a client that does not read holds one
// event in memory -- and, once caught up, parks on the serving state until
// the next revision is applied: no thread per stream, no polling, and a
// write wakes only the streams that are waiting for it.
//
// Open streams are capped (RESOURCE_EXHAUSTED beyond), and Sweep() ends
// with RESOURCE_EXHAUSTED a stream whose sink has not taken an event for
// `stall_timeout` (by the injected clock).
#ifndef SCOPEKEEPER_SERVER_REGISTRY_CHANGE_FEED_H_
#define SCOPEKEEPER_SERVER_REGISTRY_CHANGE_FEED_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/blocking_executor.h"
#include "base/clock.h"
#include "base/mutex.h"
#include "proto/scopekeeper/v1/scopekeeper.pb.h"
#include "server/decision/serving_state.h"
#include "server/registry/registry.h"

namespace scopekeeper {

// Thread-safe. Does not own its arguments, which must outlive it.
class ChangeFeed {
 public:
  struct Options {
    // Most streams open at once.
    int max_streams = 1000;
    // A stream whose client has not taken an event for this long is ended.
    absl::Duration stall_timeout = absl::Seconds(30);
    // Changes read from the registry at a time.
    int page_size = 100;
    // Threads reading changes for the streams.
    int threads = 4;
  };

  // Where a stream's events go (the gRPC adapter). Both are called under
  // the stream's lock, never at the same time, and never after End().
  class Sink {
   public:
    virtual ~Sink() = default;
    // Send() hands over one event; the sink reports with Stream::Sent()
    // once it has been taken (never from within Send()).
    virtual void Send(const v1::WatchEvent& event) = 0;
    // End() ends the stream with `status`; called exactly once.
    virtual void End(const absl::Status& status) = 0;
  };

  class Stream;

  ChangeFeed(Registry* registry, ServingState* state, const Clock* clock,
             Options options);
  // Runs what is left to run; streams still open are ended UNAVAILABLE.
  ~ChangeFeed();

  // Open() makes a stream of the changes after `from_revision` into
  // `sink`, which must stay valid until its End(); Stream::Start() starts
  // it. With `end_when_caught_up`, the stream ends OK once every change
  // applied so far has been taken. RESOURCE_EXHAUSTED when max_streams are
  // open.
  absl::StatusOr<std::shared_ptr<Stream>> Open(uint64_t from_revision,
                                               bool end_when_caught_up,
                                               Sink* sink)
      ABSL_LOCKS_EXCLUDED(streams_mu_);

  // Sweep() ends the streams whose sink has held an event for longer than
  // stall_timeout. Call it periodically.
  void Sweep() ABSL_LOCKS_EXCLUDED(streams_mu_);

  int open_streams() const { return open_.load(std::memory_order_acquire); }

 private:
  friend class Stream;

  Registry* const registry_;
  ServingState* const state_;
  const Clock* const clock_;
  const Options options_;
  std::atomic<int> open_{0};
  Mutex streams_mu_;
  std::vector<std::weak_ptr<Stream>> streams_ ABSL_GUARDED_BY(streams_mu_);
  BlockingExecutor executor_;  // last: joined first, before what it uses
};

// One open stream. Thread-safe.
class ChangeFeed::Stream : public std::enable_shared_from_this<Stream> {
 public:
  Stream(ChangeFeed* feed, uint64_t from_revision, bool end_when_caught_up,
         Sink* sink)
      : feed_(feed),
        next_after_(from_revision),
        end_when_caught_up_(end_when_caught_up),
        sink_(sink) {}

  // Start() starts sending (the sink's first Send() may come at once, on
  // another thread).
  void Start();
  // Sent() reports that the sink has taken the event it was sent (`ok`) or
  // could not (the client went away).
  void Sent(bool ok) ABSL_LOCKS_EXCLUDED(mu_);
  // Cancel() ends the stream (CANCELLED): the client cancelled.
  void Cancel() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  friend class ChangeFeed;

  void Fetch() ABSL_LOCKS_EXCLUDED(mu_);  // on the feed's threads
  void Woken(const absl::Status& status) ABSL_LOCKS_EXCLUDED(mu_);
  // Sends the next event, fetches the next page, parks or ends.
  void ContinueLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EndLocked(const absl::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SweepLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  ChangeFeed* const feed_;
  Mutex mu_;
  uint64_t next_after_ ABSL_GUARDED_BY(mu_);  // last revision taken
  const bool end_when_caught_up_;
  Sink* const sink_;
  std::deque<v1::WatchEvent> page_ ABSL_GUARDED_BY(mu_);  // left to send
  bool more_ ABSL_GUARDED_BY(mu_) = false;                // the page was full
  bool sending_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time send_started_ ABSL_GUARDED_BY(mu_);
  ServingState::WaitId parked_ ABSL_GUARDED_BY(mu_) = 0;
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_REGISTRY_CHANGE_FEED_H_
