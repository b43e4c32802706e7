#include "base/blocking_executor.h"

#include <atomic>
#include <vector>

#include "base/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

TEST(BlockingExecutorTest, RunsAsManyBlockingTasksAtOnceAsItHasThreads) {
  // Each task blocks until all kThreads have started: this finishes only if
  // kThreads run at the same time (with fewer threads it would hang, and the
  // test time out).
  constexpr int kThreads = 16;
  Mutex mu;
  CondVar cv;
  int started = 0;  // under mu
  std::atomic<int> finished{0};
  {
    BlockingExecutor executor(kThreads);
    for (int i = 0; i < kThreads; ++i) {
      executor.Schedule([&] {
        MutexLock lock(&mu);
        ++started;
        cv.SignalAll();
        cv.Wait(&mu, [&] { return started == kThreads; });
        finished.fetch_add(1);
      });
    }
  }  // the destructor waits for them
  EXPECT_EQ(finished.load(), kThreads);
}

TEST(BlockingExecutorTest, DestructorRunsEverythingScheduled) {
  std::atomic<int> ran{0};
  {
    BlockingExecutor executor(2);
    for (int i = 0; i < 1000; ++i) {
      executor.Schedule([&] { ran.fetch_add(1); });
    }
    // Work scheduled from a task while draining still runs.
    executor.Schedule([&] { executor.Schedule([&] { ran.fetch_add(1); }); });
  }
  EXPECT_EQ(ran.load(), 1001);
}

TEST(BlockingExecutorTest, OneThreadRunsInScheduleOrder) {
  std::vector<int> order;
  {
    BlockingExecutor executor(1);
    for (int i = 0; i < 100; ++i) {
      executor.Schedule([&order, i] { order.push_back(i); });
    }
  }
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
}

}  // namespace
}  // namespace scopekeeper
