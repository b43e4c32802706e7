// ChangeFeed: one event in flight per stream, paging, parking between
// changes without a thread, the stream cap, the stall sweep, cancellation.
#include "server/registry/change_feed.h"

#include <deque>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "base/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/testing/core_test_env.h"

namespace scopekeeper {
namespace {

using ::testing::HasSubstr;

// A sink that records what it is sent and whether it ended, and lets the
// test take events (Sent()) when it chooses.
class RecordingSink final : public ChangeFeed::Sink {
 public:
  void Send(const v1::WatchEvent& event) override {
    MutexLock lock(&mu_);
    in_flight_.push_back(event.revision());
    cv_.SignalAll();
  }
  void End(const absl::Status& status) override {
    MutexLock lock(&mu_);
    ended_ = true;
    status_ = status;
    cv_.SignalAll();
  }

  // AwaitSend() waits for the next event sent (or the end) and returns its
  // revision (0 if the stream ended instead).
  uint64_t AwaitSend() {
    MutexLock lock(&mu_);
    cv_.Wait(&mu_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !in_flight_.empty() || ended_;
    });
    if (in_flight_.empty()) return 0;
    const uint64_t revision = in_flight_.front();
    in_flight_.pop_front();
    return revision;
  }
  absl::Status AwaitEnd() {
    MutexLock lock(&mu_);
    cv_.Wait(&mu_,
             [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return ended_; });
    return status_;
  }
  bool ended() {
    MutexLock lock(&mu_);
    return ended_;
  }
  size_t in_flight() {
    MutexLock lock(&mu_);
    return in_flight_.size();
  }

 private:
  Mutex mu_;
  CondVar cv_;
  std::deque<uint64_t> in_flight_ ABSL_GUARDED_BY(mu_);
  bool ended_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status status_ ABSL_GUARDED_BY(mu_);
};

class ChangeFeedTest : public ::testing::Test {
 protected:
  void SetUp() override { env_.PutPolicyJson(kTestPolicyJson); }

  ChangeFeed::Options Options() {
    ChangeFeed::Options options;
    options.page_size = 3;
    options.max_streams = 2;
    options.stall_timeout = absl::Seconds(30);
    options.threads = 2;
    return options;
  }

  CoreTestEnv env_;
};

TEST_F(ChangeFeedTest, SendsOneEventAtATimeAcrossPagesThenWaitsForTheNext) {
  for (int i = 0; i < 7; ++i) env_.CreateKey({"pharmacy"}, {"orders_read"});
  const uint64_t head = env_.state.revision();  // policy + 7 keys
  ChangeFeed feed(&env_.registry, &env_.state, &env_.clock, Options());
  RecordingSink sink;
  auto stream = feed.Open(0, /*end_when_caught_up=*/false, &sink);
  ASSERT_TRUE(stream.ok()) << stream.status();
  (*stream)->Start();
  for (uint64_t revision = 1; revision <= head; ++revision) {
    EXPECT_EQ(sink.AwaitSend(), revision);
    // Nothing more is sent until this one is taken.
    EXPECT_EQ(sink.in_flight(), 0u);
    (*stream)->Sent(true);
  }
  // Caught up: parked on the serving state, no thread of its own.
  while (env_.state.parked_waits() == 0) std::this_thread::yield();
  EXPECT_EQ(env_.state.parked_waits(), 1u);
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  EXPECT_EQ(sink.AwaitSend(), key.revision());
  (*stream)->Sent(true);
  (*stream)->Cancel();
  EXPECT_EQ(sink.AwaitEnd().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(env_.state.parked_waits(), 0u);  // the cancel dropped the wait
  EXPECT_EQ(feed.open_streams(), 0);
}

TEST_F(ChangeFeedTest, EndsWhenCaughtUpWhenAsked) {
  env_.CreateKey({"pharmacy"}, {"orders_read"});
  ChangeFeed feed(&env_.registry, &env_.state, &env_.clock, Options());
  RecordingSink sink;
  auto stream = feed.Open(0, /*end_when_caught_up=*/true, &sink);
  ASSERT_TRUE(stream.ok());
  (*stream)->Start();
  EXPECT_EQ(sink.AwaitSend(), 1u);
  (*stream)->Sent(true);
  EXPECT_EQ(sink.AwaitSend(), 2u);
  (*stream)->Sent(true);
  EXPECT_TRUE(sink.AwaitEnd().ok());
}

TEST_F(ChangeFeedTest, CapsOpenStreams) {
  ChangeFeed feed(&env_.registry, &env_.state, &env_.clock, Options());
  RecordingSink a, b, c;
  auto first = feed.Open(0, false, &a);
  auto second = feed.Open(0, false, &b);
  ASSERT_TRUE(first.ok() && second.ok());
  auto third = feed.Open(0, false, &c);
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(third.status().message(), HasSubstr("too many watch streams"));
  (*first)->Cancel();
  EXPECT_TRUE(feed.Open(0, false, &c).ok());  // room again
  (*second)->Cancel();
}

TEST_F(ChangeFeedTest, AClientThatStopsReadingIsEndedAfterTheStallTimeout) {
  ChangeFeed feed(&env_.registry, &env_.state, &env_.clock, Options());
  RecordingSink sink;
  auto stream = feed.Open(0, false, &sink);
  ASSERT_TRUE(stream.ok());
  (*stream)->Start();
  EXPECT_EQ(sink.AwaitSend(), 1u);  // never taken
  env_.clock.Advance(absl::Seconds(29));
  feed.Sweep();
  EXPECT_FALSE(sink.ended());
  env_.clock.Advance(absl::Seconds(1));
  feed.Sweep();
  const absl::Status ended = sink.AwaitEnd();
  EXPECT_EQ(ended.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(ended.message(), HasSubstr("took no event for 30s"));
  EXPECT_EQ(feed.open_streams(), 0);
  (*stream)->Sent(false);  // the write's late completion changes nothing
}

TEST_F(ChangeFeedTest, ServerShutdownEndsParkedStreams) {
  ChangeFeed feed(&env_.registry, &env_.state, &env_.clock, Options());
  RecordingSink sink;
  auto stream = feed.Open(env_.state.revision(), false, &sink);
  ASSERT_TRUE(stream.ok());
  (*stream)->Start();
  while (env_.state.parked_waits() == 0) std::this_thread::yield();
  env_.state.Close();
  EXPECT_EQ(sink.AwaitEnd().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace scopekeeper
