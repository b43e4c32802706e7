// BlockingExecutor: threads of our own for calls that block -- admin calls
// wait for a durable (synced) commit -- so gRPC's callback threads, which the
// data plane shares, never wait on the disk. With callbacks run inline, a few
// GrantScopes in flight held every callback thread and Authorize throughput
// fell from 22.9k/s to 0.5k/s (docs/BENCHMARKS.md, "Load runs").
//
// Enough threads let many writes wait together, so they share one sync
// (Registry's group commit); a thread waiting on a condition variable costs
// only its stack.
#ifndef SCOPEKEEPER_BASE_BLOCKING_EXECUTOR_H_
#define SCOPEKEEPER_BASE_BLOCKING_EXECUTOR_H_

#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "base/mutex.h"

namespace scopekeeper {

// Thread-safe.
class BlockingExecutor {
 public:
  // Starts `threads` (>= 1) threads.
  explicit BlockingExecutor(int threads);
  // Runs everything already scheduled, then joins the threads.
  ~BlockingExecutor();

  BlockingExecutor(const BlockingExecutor&) = delete;
  BlockingExecutor& operator=(const BlockingExecutor&) = delete;

  // Schedule() runs `fn` on one of the threads; tasks start in the order
  // they were scheduled and up to `threads` run at once. Work scheduled by a
  // task while the destructor drains still runs.
  void Schedule(std::function<void()> fn) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Work() ABSL_LOCKS_EXCLUDED(mu_);

  Mutex mu_;
  CondVar work_cv_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_BASE_BLOCKING_EXECUTOR_H_
