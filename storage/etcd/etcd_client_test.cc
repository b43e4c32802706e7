// EtcdClient against one real etcd member (shared by the tests of this file;
// each test works under its own key prefix).
#include "storage/etcd/etcd_client.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/notification.h"
#include "base/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "storage/etcd/testing/etcd_cluster.h"

namespace scopekeeper::storage::etcd {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

#define ASSERT_OK(expr)                                   \
  do {                                                    \
    const auto& s_ = (expr);                              \
    ASSERT_TRUE(s_.ok()) << #expr << ": " << s_.status(); \
  } while (false)

std::vector<std::string> Keys(const RangeResponse& response) {
  std::vector<std::string> keys;
  for (const KeyValue& kv : response.kvs) keys.push_back(kv.key);
  return keys;
}

class EtcdClientTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<testing::EtcdCluster>> cluster =
        testing::EtcdCluster::Start(
            {.flags = {"--experimental-watch-progress-notify-interval=100ms"}});
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = cluster->release();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    absl::StatusOr<std::unique_ptr<EtcdClient>> client = cluster_->Client();
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = *std::move(client);
    prefix_ = std::string("/") +
              ::testing::UnitTest::GetInstance()->current_test_info()->name() +
              "/";
  }

  std::string K(const std::string& name) { return prefix_ + name; }

  int64_t PutOrDie(const std::string& key, const std::string& value) {
    absl::StatusOr<int64_t> revision = client_->Put(key, value);
    EXPECT_TRUE(revision.ok()) << revision.status();
    return revision.ok() ? *revision : 0;
  }

  static testing::EtcdCluster* cluster_;
  std::unique_ptr<EtcdClient> client_;
  std::string prefix_;
};

testing::EtcdCluster* EtcdClientTest::cluster_ = nullptr;

TEST(EtcdClientOptionsTest, RejectsBadOptions) {
  EtcdClient::Options options;
  EXPECT_EQ(EtcdClient::Create(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.endpoints = {"no-port"};
  EXPECT_EQ(EtcdClient::Create(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.endpoints = {"127.0.0.1:2379"};
  options.cert_pem = "cert";
  EXPECT_EQ(EtcdClient::Create(options).status().code(),
            absl::StatusCode::kInvalidArgument);
  options.cert_pem.clear();
  options.password = "secret";
  const absl::Status status = EtcdClient::Create(options).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), ::testing::Not(HasSubstr("secret")));
}

TEST(PrefixEndTest, IncrementsTheLastByteBelow0xff) {
  EXPECT_EQ(PrefixEnd("a/"), "a0");
  EXPECT_EQ(PrefixEnd(std::string("a\xff\xff", 3)), "b");
  EXPECT_EQ(PrefixEnd(""), std::string(1, '\0'));
}

TEST_F(EtcdClientTest, PutThenRangeSeesValueAndRevisions) {
  const int64_t first = PutOrDie(K("a"), "1");
  const int64_t second = PutOrDie(K("a"), "2");
  EXPECT_GT(second, first);

  absl::StatusOr<RangeResponse> got = client_->Range({K("a")});
  ASSERT_OK(got);
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].value, "2");
  EXPECT_EQ(got->kvs[0].create_revision, first);
  EXPECT_EQ(got->kvs[0].mod_revision, second);
  EXPECT_EQ(got->kvs[0].version, 2);
  EXPECT_GE(got->revision, second);

  // The old value at the old revision.
  RangeRequest old{K("a")};
  old.revision = first;
  got = client_->Range(old);
  ASSERT_OK(got);
  ASSERT_EQ(got->kvs.size(), 1u);
  EXPECT_EQ(got->kvs[0].value, "1");
}

TEST_F(EtcdClientTest, RangeOptions) {
  const int64_t r1 = PutOrDie(K("c"), "x");
  PutOrDie(K("a"), "y");
  PutOrDie(K("b"), "z");
  PutOrDie(K("c"), "xx");

  RangeRequest all{K("")};
  all.range_end = PrefixEnd(K(""));
  absl::StatusOr<RangeResponse> got = client_->Range(all);
  ASSERT_OK(got);
  EXPECT_THAT(Keys(*got), ElementsAre(K("a"), K("b"), K("c")));
  EXPECT_FALSE(got->more);

  RangeRequest limited = all;
  limited.limit = 2;
  got = client_->Range(limited);
  ASSERT_OK(got);
  EXPECT_THAT(Keys(*got), ElementsAre(K("a"), K("b")));
  EXPECT_TRUE(got->more);
  EXPECT_EQ(got->count, 3);

  RangeRequest keys_only = all;
  keys_only.keys_only = true;
  got = client_->Range(keys_only);
  ASSERT_OK(got);
  ASSERT_EQ(got->kvs.size(), 3u);
  EXPECT_EQ(got->kvs[0].value, "");

  RangeRequest count_only = all;
  count_only.count_only = true;
  got = client_->Range(count_only);
  ASSERT_OK(got);
  EXPECT_THAT(got->kvs, IsEmpty());
  EXPECT_EQ(got->count, 3);

  // By creation, newest first; only keys created after c.
  RangeRequest sorted = all;
  sorted.sort_order = RangeRequest::SortOrder::kDescend;
  sorted.sort_target = RangeRequest::SortTarget::kCreate;
  sorted.min_create_revision = r1 + 1;
  got = client_->Range(sorted);
  ASSERT_OK(got);
  EXPECT_THAT(Keys(*got), ElementsAre(K("b"), K("a")));

  RangeRequest serializable = all;
  serializable.serializable = true;
  got = client_->Range(serializable);
  ASSERT_OK(got);
  EXPECT_EQ(got->kvs.size(), 3u);
}

TEST_F(EtcdClientTest, TxnRunsSuccessOrFailureBranchAtomically) {
  const int64_t created = PutOrDie(K("guard"), "v1");

  TxnRequest txn;
  txn.compare.push_back(
      Compare::ModRevision(K("guard"), Compare::Result::kEqual, created));
  txn.compare.push_back(
      Compare::CreateRevision(K("new"), Compare::Result::kEqual, 0));
  txn.success = {Op::Put(K("guard"), "v2"), Op::Put(K("new"), "n"),
                 Op::Get({K("guard")})};
  txn.failure = {Op::Get({K("guard")})};
  absl::StatusOr<TxnResponse> done = client_->Txn(txn);
  ASSERT_OK(done);
  EXPECT_TRUE(done->succeeded);
  EXPECT_GT(done->revision, created);
  ASSERT_EQ(done->responses.size(), 3u);
  ASSERT_EQ(done->responses[2].range.kvs.size(), 1u);
  EXPECT_EQ(done->responses[2].range.kvs[0].value, "v2");
  EXPECT_EQ(done->responses[2].range.kvs[0].mod_revision, done->revision);

  // Same txn again: the guard no longer holds, nothing is written.
  absl::StatusOr<TxnResponse> again = client_->Txn(txn);
  ASSERT_OK(again);
  EXPECT_FALSE(again->succeeded);
  EXPECT_EQ(again->revision, done->revision);
  ASSERT_EQ(again->responses.size(), 1u);
  ASSERT_EQ(again->responses[0].range.kvs.size(), 1u);
  EXPECT_EQ(again->responses[0].range.kvs[0].mod_revision, done->revision);

  TxnRequest value_compare;
  value_compare.compare.push_back(
      Compare::Value(K("guard"), Compare::Result::kEqual, "v2"));
  value_compare.success = {Op::Delete(K(""), PrefixEnd(K("")))};
  absl::StatusOr<TxnResponse> deleted = client_->Txn(value_compare);
  ASSERT_OK(deleted);
  EXPECT_TRUE(deleted->succeeded);
  EXPECT_EQ(deleted->responses[0].deleted, 2);
}

TEST_F(EtcdClientTest, InvalidTxnIsInvalidArgumentNamingTheOperation) {
  TxnRequest txn;
  txn.success = {Op::Put(K("dup"), "1"), Op::Put(K("dup"), "2")};
  const absl::Status status = client_->Txn(txn).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("etcd Txn"));
  EXPECT_THAT(status.message(), HasSubstr(cluster_->endpoint(0)));
  EXPECT_THAT(status.message(), HasSubstr("duplicate key"));
}

TEST_F(EtcdClientTest, CompactedRevisionIsOutOfRange) {
  const int64_t old = PutOrDie(K("k"), "1");
  const int64_t now = PutOrDie(K("k"), "2");
  ASSERT_TRUE(client_->Compact(now, /*physical=*/true).ok());
  RangeRequest request{K("k")};
  request.revision = old;
  EXPECT_EQ(client_->Range(request).status().code(),
            absl::StatusCode::kOutOfRange);
}

// Collects what a watch delivers.
struct WatchLog {
  Mutex mu;
  std::vector<std::pair<int64_t, std::vector<WatchEvent>>> revisions
      ABSL_GUARDED_BY(mu);
  std::vector<int64_t> progress ABSL_GUARDED_BY(mu);
  std::vector<int64_t> answers ABSL_GUARDED_BY(mu);
  // on_revision (+revision) and on_progress (-revision) in call order.
  std::vector<int64_t> order ABSL_GUARDED_BY(mu);
  absl::Status end ABSL_GUARDED_BY(mu);
  int64_t compact_revision ABSL_GUARDED_BY(mu) = -1;
  CondVar changed;  // signalled after every callback
  absl::Notification ended;

  WatchCallbacks Callbacks() {
    WatchCallbacks callbacks;
    callbacks.on_revision = [this](int64_t revision,
                                   std::vector<WatchEvent> events) {
      MutexLock lock(&mu);
      revisions.emplace_back(revision, std::move(events));
      order.push_back(revision);
      changed.SignalAll();
    };
    callbacks.on_progress = [this](int64_t revision) {
      MutexLock lock(&mu);
      progress.push_back(revision);
      order.push_back(-revision);
      changed.SignalAll();
    };
    callbacks.on_progress_answer = [this](int64_t revision) {
      MutexLock lock(&mu);
      answers.push_back(revision);
      changed.SignalAll();
    };
    callbacks.on_end = [this](const absl::Status& status, int64_t compact) {
      {
        MutexLock lock(&mu);
        end = status;
        compact_revision = compact;
        changed.SignalAll();
      }
      ended.Notify();
    };
    return callbacks;
  }
};

// WaitFor() waits until `done` (checked under log.mu after each callback)
// is true, or 10 s passed.
bool WaitFor(WatchLog& log, const std::function<bool()>& done) {
  MutexLock lock(&log.mu);
  return log.changed.WaitWithTimeout(&log.mu, absl::Seconds(10), done);
}

TEST_F(EtcdClientTest, WatchGroupsEventsByRevisionAndReportsProgress) {
  const int64_t start = PutOrDie(K("before"), "x");
  TxnRequest txn;
  txn.success = {Op::Put(K("t1"), "a"), Op::Put(K("t2"), "b")};
  absl::StatusOr<TxnResponse> two = client_->Txn(txn);
  ASSERT_OK(two);
  const int64_t deleted = *client_->DeleteRange(K("t1"), "");

  WatchLog log;
  WatchRequest request{K(""), PrefixEnd(K(""))};
  request.start_revision = start + 1;  // history: both later revisions
  request.progress_notify = true;      // every 100 ms (cluster flag)
  absl::StatusOr<std::unique_ptr<EtcdWatch>> watch =
      client_->Watch(request, log.Callbacks());
  ASSERT_OK(watch);
  ASSERT_TRUE((*watch)->RequestProgress().ok());

  // A progress notification comes after every event up to its revision.
  ASSERT_TRUE(WaitFor(log, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(log.mu) {
    return !log.progress.empty() && log.progress.back() >= deleted &&
           !log.answers.empty();
  }));
  (*watch)->Cancel();
  log.ended.WaitForNotification();
  MutexLock lock(&log.mu);
  ASSERT_GE(log.order.size(), 3u);
  EXPECT_EQ(log.order[0], two->revision);
  EXPECT_EQ(log.order[1], deleted);
  EXPECT_LE(log.order[2], -deleted);  // a progress at or after `deleted`
  // The answer to RequestProgress: etcd's revision then (unordered).
  EXPECT_GE(log.answers[0], deleted);

  ASSERT_EQ(log.revisions.size(), 2u);
  ASSERT_EQ(log.revisions[0].second.size(), 2u);
  EXPECT_EQ(log.revisions[0].second[0].kv.key, K("t1"));
  EXPECT_EQ(log.revisions[0].second[1].kv.key, K("t2"));
  EXPECT_EQ(log.revisions[0].second[1].kv.value, "b");
  EXPECT_EQ(log.revisions[0].second[1].kv.mod_revision, two->revision);
  ASSERT_EQ(log.revisions[1].second.size(), 1u);
  EXPECT_EQ(log.revisions[1].second[0].type, WatchEvent::Type::kDelete);
  EXPECT_EQ(log.revisions[1].second[0].kv.key, K("t1"));
  EXPECT_EQ(log.end.code(), absl::StatusCode::kCancelled);
}

TEST_F(EtcdClientTest, WatchSeesLaterWrites) {
  WatchLog log;
  absl::StatusOr<std::unique_ptr<EtcdWatch>> watch =
      client_->Watch({K(""), PrefixEnd(K(""))}, log.Callbacks());
  ASSERT_OK(watch);
  const int64_t revision = PutOrDie(K("live"), "1");
  ASSERT_TRUE(WaitFor(log, [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(log.mu) {
    return !log.revisions.empty();
  }));
  watch->reset();  // cancels and waits for on_end
  EXPECT_TRUE(log.ended.HasBeenNotified());
  MutexLock lock(&log.mu);
  EXPECT_EQ(log.revisions[0].first, revision);
}

TEST_F(EtcdClientTest, WatchFromCompactedRevisionReportsCompaction) {
  const int64_t old = PutOrDie(K("k"), "1");
  const int64_t now = PutOrDie(K("k"), "2");
  ASSERT_TRUE(client_->Compact(now, /*physical=*/true).ok());
  WatchLog log;
  WatchRequest request{K(""), PrefixEnd(K(""))};
  request.start_revision = old;
  absl::StatusOr<std::unique_ptr<EtcdWatch>> watch =
      client_->Watch(request, log.Callbacks());
  ASSERT_OK(watch);
  ASSERT_TRUE(log.ended.WaitForNotificationWithTimeout(absl::Seconds(10)));
  MutexLock lock(&log.mu);
  EXPECT_EQ(log.end.code(), absl::StatusCode::kOutOfRange) << log.end;
  EXPECT_EQ(log.compact_revision, now);
  EXPECT_THAT(log.revisions, IsEmpty());
}

TEST_F(EtcdClientTest, StatusAndSnapshot) {
  absl::StatusOr<MemberStatus> status = client_->Status("");
  ASSERT_OK(status);
  EXPECT_EQ(status->version, "3.4.23");
  EXPECT_NE(status->leader, 0u);
  EXPECT_EQ(status->leader, status->member_id);
  EXPECT_EQ(status->endpoint, cluster_->endpoint(0));
  EXPECT_EQ(client_->Status("127.0.0.1:1").status().code(),
            absl::StatusCode::kInvalidArgument);

  const std::string path = std::string(getenv("TEST_TMPDIR")) + "/snap.db";
  absl::StatusOr<int64_t> size = client_->Snapshot(path, absl::Seconds(30));
  ASSERT_OK(size);
  std::ifstream file(path, std::ios::binary | std::ios::ate);
  EXPECT_EQ(static_cast<int64_t>(file.tellg()), *size);
  // A bbolt file plus etcd's appended SHA-256.
  EXPECT_EQ(*size % 512, 32);
  EXPECT_EQ(client_->Snapshot(path, absl::Seconds(30)).status().code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(EtcdClientDeadlineTest, SilentEndpointFailsAtTheDeadline) {
  // A socket that accepts TCP but never speaks HTTP/2.
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)),
            0);
  ASSERT_EQ(listen(fd, 16), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length), 0);
  EtcdClient::Options options;
  options.endpoints = {"127.0.0.1:" + std::to_string(ntohs(address.sin_port))};
  options.call_timeout = absl::Milliseconds(300);
  absl::StatusOr<std::unique_ptr<EtcdClient>> client =
      EtcdClient::Create(options);
  ASSERT_OK(client);
  const absl::Time start = absl::Now();
  const absl::Status status = (*client)->Range({"k"}).status();
  const absl::Duration took = absl::Now() - start;
  close(fd);
  EXPECT_EQ(status.code(), absl::StatusCode::kDeadlineExceeded) << status;
  EXPECT_THAT(status.message(), HasSubstr(options.endpoints[0]));
  EXPECT_GE(took, absl::Milliseconds(250));
  EXPECT_LT(took, absl::Seconds(3));
}

}  // namespace
}  // namespace scopekeeper::storage::etcd
