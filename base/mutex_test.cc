#include "base/mutex.h"

#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/rw_mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

// A counter and a flag under one Mutex, as production classes hold them.
class Guarded {
 public:
  void Add() ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    ++count_;
  }
  int count() const ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    return count_;
  }
  void Set() ABSL_LOCKS_EXCLUDED(mu_) {
    {
      MutexLock lock(&mu_);
      set_ = true;
    }
    cv_.SignalAll();
  }
  void AwaitSet() ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    cv_.Wait(&mu_,
             [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return set_; });
  }
  bool AwaitSetFor(absl::Duration timeout) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    waiting_ = true;
    return cv_.WaitWithTimeout(
        &mu_, timeout,
        [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return set_; });
  }
  bool AwaitSetUntil(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    waiting_ = true;
    return cv_.WaitWithDeadline(
        &mu_, deadline,
        [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return set_; });
  }

  // Whether an AwaitSetFor()/AwaitSetUntil() has begun: it set this under
  // mu_ and holds mu_ until its wait releases it, so once this is true the
  // waiter is waiting (or has returned).
  bool waiting() const ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    return waiting_;
  }

  mutable Mutex mu_;

 private:
  CondVar cv_;
  int count_ ABSL_GUARDED_BY(mu_) = 0;
  bool set_ ABSL_GUARDED_BY(mu_) = false;
  bool waiting_ ABSL_GUARDED_BY(mu_) = false;
};

// SetWhenWaiting() sets `g` from another thread once a timed wait on it has
// begun, so the wait really waits (and a wait that returns at once with the
// predicate false is caught every time).
std::thread SetWhenWaiting(Guarded& g) {
  return std::thread([&g] {
    while (!g.waiting()) std::this_thread::yield();
    g.Set();
  });
}

TEST(MutexTest, MutexLockExcludesOtherThreads) {
  Guarded g;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&g] {
      for (int i = 0; i < 10000; ++i) g.Add();
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(g.count(), 40000);
}

TEST(MutexTest, WorksWithStdUniqueLock) {
  Guarded g;
  {
    std::unique_lock<Mutex> lock(g.mu_);
    lock.unlock();
    lock.lock();
  }
  g.Add();  // would deadlock if the unique_lock had not released it
  EXPECT_EQ(g.count(), 1);
}

TEST(CondVarTest, WaitReturnsOnceThePredicateHolds) {
  Guarded g;
  std::thread waiter([&g] { g.AwaitSet(); });
  g.Set();
  waiter.join();  // hangs (test timeout) if the wakeup were lost
  EXPECT_TRUE(g.AwaitSetFor(absl::ZeroDuration()));
}

TEST(CondVarTest, WaitWithTimeoutIsFalseWhenItTimesOut) {
  Guarded g;
  const absl::Time start = absl::Now();
  EXPECT_FALSE(g.AwaitSetFor(absl::Milliseconds(30)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(30));
  EXPECT_FALSE(g.AwaitSetFor(absl::ZeroDuration()));
  EXPECT_FALSE(g.AwaitSetFor(-absl::Seconds(1)));
}

TEST(CondVarTest, WaitWithTimeoutIsTrueWhenThePredicateHolds) {
  Guarded g;
  std::thread setter([&g] { g.Set(); });
  EXPECT_TRUE(g.AwaitSetFor(absl::Seconds(60)));
  setter.join();
}

TEST(CondVarTest, InfiniteTimeoutsWaitWithoutLimit) {
  // std::condition_variable would overflow converting these and return at
  // once with the predicate false.
  for (const absl::Duration timeout :
       {absl::InfiniteDuration(), absl::Hours(24 * 365 * 200)}) {
    Guarded g;
    std::thread setter = SetWhenWaiting(g);
    EXPECT_TRUE(g.AwaitSetFor(timeout));
    setter.join();
  }
  Guarded g;
  std::thread setter = SetWhenWaiting(g);
  EXPECT_TRUE(g.AwaitSetUntil(absl::InfiniteFuture()));
  setter.join();
}

TEST(CondVarTest, WaitWithDeadline) {
  Guarded g;
  EXPECT_FALSE(g.AwaitSetUntil(absl::InfinitePast()));
  EXPECT_FALSE(g.AwaitSetUntil(absl::Now() - absl::Seconds(1)));
  const absl::Time deadline = absl::Now() + absl::Milliseconds(30);
  EXPECT_FALSE(g.AwaitSetUntil(deadline));
  EXPECT_GE(absl::Now(), deadline);
  g.Set();
  EXPECT_TRUE(g.AwaitSetUntil(absl::InfinitePast()));
  EXPECT_TRUE(g.AwaitSetUntil(absl::Now() + absl::Seconds(60)));
}

TEST(WriterPreferringMutexTest, ScopedLocksExcludeWritersFromReaders) {
  WriterPreferringMutex mu;
  int value = 0;  // under mu
  std::vector<std::thread> threads;
  for (int t = 0; t < 2; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        WriterMutexLock lock(&mu);
        ++value;
      }
    });
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        ReaderMutexLock lock(&mu);
        EXPECT_GE(value, 0);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  ReaderMutexLock lock(&mu);
  EXPECT_EQ(value, 20000);
}

}  // namespace
}  // namespace scopekeeper
