// Mutex, MutexLock and CondVar: the project's lock and condition variable,
// std::mutex and std::condition_variable underneath and clang's
// thread-safety annotations on top, so that `bazel build --config=clang`
// (-Wthread-safety -Werror=thread-safety) rejects a read of an
// ABSL_GUARDED_BY member without its lock, a call to an
// ABSL_EXCLUSIVE_LOCKS_REQUIRED function without it, or a lock leaked at the
// end of a scope.
//
// Why not absl::Mutex: Debian's Abseil is not built with ThreadSanitizer
// annotations, so TSan cannot see the happens-before edges of its lock and
// reports false races under it (BAZEL_NOTES.md, section 5). TSan intercepts
// the pthread calls behind std::mutex. Why not bare std::mutex:
// libstdc++'s is not annotated, so clang rejects ABSL_GUARDED_BY(mu_) on it
// and a missing lock goes unnoticed. See base/rw_mutex.h for the
// reader/writer lock.
//
// Usage:
//   Mutex mu_;
//   CondVar cv_;
//   std::deque<Job> queue_ ABSL_GUARDED_BY(mu_);
//
//   MutexLock lock(&mu_);
//   cv_.Wait(&mu_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
//     return !queue_.empty();
//   });
//
// The analysis checks a lambda's body as a function of its own: a predicate
// reading guarded members must say it holds the lock, as above (the wait
// calls it with the lock held).
#ifndef SCOPEKEEPER_BASE_MUTEX_H_
#define SCOPEKEEPER_BASE_MUTEX_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace scopekeeper {

// An exclusive, non-recursive lock. Prefer MutexLock to Lock()/Unlock().
class ABSL_LOCKABLE Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

  // AssertHeld() tells the analysis that the calling thread holds this
  // lock. Not checked at run time: use it only where the analysis cannot
  // follow (a callback run under the lock), and say why.
  void AssertHeld() const ABSL_ASSERT_EXCLUSIVE_LOCK() {}

  // BasicLockable, for std::unique_lock and std::scoped_lock. The analysis
  // does not see through those: only where MutexLock cannot do.
  void lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { Lock(); }
  void unlock() ABSL_UNLOCK_FUNCTION() { Unlock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

// Holds a Mutex for its scope.
class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
    mu_->Lock();
  }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

// A condition variable used with a Mutex. Every wait may wake spuriously:
// the predicate forms re-check and are the ones to use. A predicate is
// called with the Mutex held; annotate it ABSL_EXCLUSIVE_LOCKS_REQUIRED
// with the caller's name for that Mutex (see the file comment).
class CondVar {
 public:
  CondVar() = default;
  CondVar(const CondVar&) = delete;
  CondVar& operator=(const CondVar&) = delete;

  // Wait() releases *mu, blocks until woken and takes *mu again.
  void Wait(Mutex* mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();  // still held: it is the caller's
  }

  // Wait() returns once pred() is true, waiting while it is false.
  template <typename Predicate>
  void Wait(Mutex* mu, Predicate pred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    while (!Holds(pred)) Wait(mu);
  }

  // WaitWithTimeout() is Wait(mu, pred) for at most `timeout`
  // (InfiniteDuration, or anything over a century: without limit). Returns
  // pred(): false if it timed out with the predicate still false.
  template <typename Predicate>
  bool WaitWithTimeout(Mutex* mu, absl::Duration timeout, Predicate pred)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    // Without limit: std::condition_variable adds the timeout to now(),
    // which overflows for absl's saturated InfiniteDuration.
    if (timeout > absl::Hours(24 * 365 * 100)) {
      Wait(mu, pred);
      return true;
    }
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool held = cv_.wait_for(lock, absl::ToChronoNanoseconds(timeout),
                                   [&pred] { return Holds(pred); });
    lock.release();
    return held;
  }

  // WaitWithDeadline() is Wait(mu, pred) until `deadline` by the system
  // clock (InfiniteFuture: without limit). Returns pred(), as
  // WaitWithTimeout().
  template <typename Predicate>
  bool WaitWithDeadline(Mutex* mu, absl::Time deadline, Predicate pred)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    // The infinite ends saturate std::chrono's time_point: the wait would
    // overflow converting it to its own clock.
    if (deadline == absl::InfiniteFuture()) {
      Wait(mu, pred);
      return true;
    }
    if (deadline == absl::InfinitePast()) return Holds(pred);
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool held = cv_.wait_until(lock, absl::ToChronoTime(deadline),
                                     [&pred] { return Holds(pred); });
    lock.release();
    return held;
  }

  // Signal() wakes one waiter, SignalAll() every one. Holding the Mutex is
  // not required.
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  // Holds() calls the predicate. Every caller holds the Mutex (the waits'
  // ABSL_EXCLUSIVE_LOCKS_REQUIRED), but the predicate names it as its own
  // caller does (mu_), which the analysis cannot match with `mu` here.
  template <typename Predicate>
  static bool Holds(Predicate& pred) ABSL_NO_THREAD_SAFETY_ANALYSIS {
    return pred();
  }

  std::condition_variable cv_;
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_BASE_MUTEX_H_
