// EtcdStore against one real etcd member (shared by the tests of this file;
// each test has a prefix of its own).
#include "storage/etcd/etcd_store.h"

#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <iostream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/notification.h"
#include "base/mutex.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "storage/etcd/testing/etcd_cluster.h"

namespace scopekeeper::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

MATCHER_P(EqualsProto, expected, expected.DebugString()) {
  return google::protobuf::util::MessageDifferencer::Equals(arg, expected);
}

#define ASSERT_OK(expr)                                   \
  do {                                                    \
    const auto& s_ = (expr);                              \
    ASSERT_TRUE(s_.ok()) << #expr << ": " << s_.status(); \
  } while (false)

std::string Sha(char fill) { return std::string(32, fill); }

KeyRecord Key(const std::string& key_id, const std::string& org,
              const std::vector<std::string>& hashes = {}) {
  KeyRecord record;
  record.mutable_key()->set_key_id(key_id);
  record.mutable_key()->set_organization_id(org);
  record.mutable_key()->set_name("name of " + key_id);
  for (const std::string& hash : hashes) record.add_secrets()->set_sha256(hash);
  return record;
}

KeyRecord At(KeyRecord record, uint64_t revision) {
  record.mutable_key()->set_revision(revision);
  return record;
}

Mutation PutKeys(std::vector<KeyRecord> keys) {
  Mutation m;
  m.put_keys = std::move(keys);
  return m;
}

Guard KeyGuard(const std::string& id, uint64_t revision) {
  return Guard{Guard::Kind::kKey, id, revision};
}

class EtcdStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    absl::StatusOr<std::unique_ptr<etcd::testing::EtcdCluster>> cluster =
        etcd::testing::EtcdCluster::Start({});
    ASSERT_TRUE(cluster.ok()) << cluster.status();
    cluster_ = cluster->release();
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(cluster_, nullptr);
    absl::StatusOr<std::unique_ptr<etcd::EtcdClient>> client =
        cluster_->Client();
    ASSERT_TRUE(client.ok()) << client.status();
    client_ = std::shared_ptr<etcd::EtcdClient>(std::move(*client));
    options_.prefix =
        std::string("/") +
        ::testing::UnitTest::GetInstance()->current_test_info()->name() + "/";
    store_ = Open(options_);
    ASSERT_NE(store_, nullptr);
  }

  std::unique_ptr<EtcdStore> Open(const EtcdStore::Options& options) {
    absl::StatusOr<std::unique_ptr<EtcdStore>> store =
        EtcdStore::Open(client_, options);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  uint64_t WriteOrDie(const Mutation& m) {
    absl::StatusOr<uint64_t> revision = store_->WriteGuarded(m);
    EXPECT_TRUE(revision.ok()) << revision.status();
    return revision.ok() ? *revision : 0;
  }

  static etcd::testing::EtcdCluster* cluster_;
  std::shared_ptr<etcd::EtcdClient> client_;
  EtcdStore::Options options_;
  std::unique_ptr<EtcdStore> store_;
};

etcd::testing::EtcdCluster* EtcdStoreTest::cluster_ = nullptr;

TEST_F(EtcdStoreTest, RevisionsAreTheTransactionsAndRecordsCarryThem) {
  EXPECT_EQ(*store_->Revision(), 0u);
  Mutation first = PutKeys({Key("k1", "org", {Sha('1')})});
  v1::AuditEvent audit;
  audit.set_action("CreateKey");
  audit.set_key_id("k1");
  first.audit_event = audit;
  const uint64_t r1 = WriteOrDie(first);
  // Another writer outside the prefix takes revisions too.
  ASSERT_OK(client_->Put("/elsewhere", "x"));
  const uint64_t r2 = WriteOrDie(PutKeys({Key("k2", "org")}));
  EXPECT_GT(r2, r1 + 1);
  EXPECT_EQ(*store_->Revision(), r2);

  EXPECT_THAT(
      *store_->GetKeyById("k1"),
      ::testing::Optional(EqualsProto(At(Key("k1", "org", {Sha('1')}), r1))));
  EXPECT_THAT(
      *store_->GetKeyBySecretHash(Sha('1')),
      ::testing::Optional(EqualsProto(At(Key("k1", "org", {Sha('1')}), r1))));
  audit.set_revision(r1);
  EXPECT_THAT(*store_->ListAuditEvents({}, 10),
              ElementsAre(EqualsProto(audit)));
  EXPECT_THAT(*store_->ListAuditEvents({"", "", r1}, 10), IsEmpty());
  // Write()/Commit() with caller-chosen revisions are refused, clearly.
  const absl::Status refused = store_->Commit(PutKeys({Key("k3", "org")}));
  EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.message(), HasSubstr("WriteGuarded"));
  EXPECT_TRUE(store_->Sync().ok());
}

TEST_F(EtcdStoreTest, GuardOnAStaleRevisionIsAbortedAndWritesNothing) {
  const uint64_t r1 = WriteOrDie(PutKeys({Key("k1", "org", {Sha('a')})}));
  const uint64_t r2 = WriteOrDie(PutKeys({Key("k1", "org", {Sha('b')})}));

  Mutation stale = PutKeys({Key("k1", "other-org", {Sha('c')})});
  stale.guards = {KeyGuard("k1", r1)};
  v1::Policy policy;
  policy.add_scopes()->set_name("read");
  stale.put_policy = policy;
  const absl::Status status = store_->WriteGuarded(stale).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kAborted) << status;
  EXPECT_THAT(status.message(), HasSubstr("key \"k1\""));
  EXPECT_EQ(*store_->Revision(), r2);
  EXPECT_EQ((*store_->GetKeyById("k1"))->key().organization_id(), "org");
  EXPECT_EQ(*store_->GetPolicy(), std::nullopt);
  EXPECT_EQ(*store_->GetKeyBySecretHash(Sha('c')), std::nullopt);

  // Guards on the policy, apps and installations compare their revision
  // too; 0 means "must not exist".
  Mutation create = PutKeys({});
  create.put_policy = policy;
  create.guards = {Guard{Guard::Kind::kPolicy, "", 0},
                   Guard{Guard::Kind::kApp, "app1", 0}};
  const uint64_t r3 = WriteOrDie(create);
  absl::StatusOr<EtcdStore::Reader> reader = store_->ReadAt(0);
  ASSERT_OK(reader);
  EXPECT_EQ((*reader->GetPolicy())->revision, r3);
  const absl::Status again = store_->WriteGuarded(create).status();
  EXPECT_EQ(again.code(), absl::StatusCode::kAborted) << again;
  EXPECT_THAT(again.message(),
              HasSubstr("policy was last changed at revision"));
  create.guards = {Guard{Guard::Kind::kPolicy, "", r3}};
  EXPECT_GT(WriteOrDie(create), r3);
}

TEST_F(EtcdStoreTest, ConcurrentGuardedWritersNeverLoseAnUpdate) {
  // Each writer adds one grant to the same key, read-modify-write with a
  // guard, retrying on ABORTED. Every grant must survive.
  WriteOrDie(PutKeys({Key("k", "org")}));
  constexpr int kWriters = 2;
  constexpr int kGrantsEach = 15;
  std::atomic<int> aborted{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kGrantsEach; ++i) {
        while (true) {
          absl::StatusOr<std::optional<KeyRecord>> current =
              store_->GetKeyById("k");
          ASSERT_TRUE(current.ok()) << current.status();
          KeyRecord next = **current;
          next.mutable_key()->add_grants()->set_scope("s" + std::to_string(w) +
                                                      "_" + std::to_string(i));
          Mutation m = PutKeys({next});
          m.guards = {KeyGuard("k", next.key().revision())};
          absl::StatusOr<uint64_t> written = store_->WriteGuarded(m);
          if (written.ok()) break;
          ASSERT_EQ(written.status().code(), absl::StatusCode::kAborted)
              << written.status();
          ++aborted;
        }
      }
    });
  }
  for (std::thread& t : writers) t.join();
  EXPECT_EQ((*store_->GetKeyById("k"))->key().grants_size(),
            kWriters * kGrantsEach);
  // Not a proof of a race, but the usual outcome with two writers.
  std::cout << "aborted attempts: " << aborted.load() << "\n";
}

TEST_F(EtcdStoreTest, ConcurrentUnguardedWritersKeepTheIndexConsistent) {
  // Each write replaces the key's only secret. Without a guard the store
  // itself pins the old record its index update was computed from, so the
  // index ends up naming exactly the secret the record holds.
  constexpr int kWriters = 2;
  constexpr int kWritesEach = 12;
  std::vector<std::thread> writers;
  for (int w = 0; w < kWriters; ++w) {
    writers.emplace_back([&, w] {
      for (int i = 0; i < kWritesEach; ++i) {
        const char c = static_cast<char>('A' + w * kWritesEach + i);
        absl::StatusOr<uint64_t> written =
            store_->WriteGuarded(PutKeys({Key("k", "org", {Sha(c)})}));
        EXPECT_TRUE(written.ok() || absl::IsAborted(written.status()))
            << written.status();
      }
    });
  }
  for (std::thread& t : writers) t.join();
  const std::string final_hash =
      (*store_->GetKeyById("k"))->secrets(0).sha256();
  etcd::RangeRequest index;
  index.key = options_.prefix + "s/hash/";
  index.range_end = etcd::PrefixEnd(index.key);
  index.count_only = true;
  EXPECT_EQ(client_->Range(index)->count, 1);
  for (int c = 'A'; c < 'A' + kWriters * kWritesEach; ++c) {
    absl::StatusOr<std::optional<KeyRecord>> found =
        store_->GetKeyBySecretHash(Sha(static_cast<char>(c)));
    ASSERT_TRUE(found.ok()) << found.status();
    EXPECT_EQ(found->has_value(), Sha(static_cast<char>(c)) == final_hash);
  }
}

TEST_F(EtcdStoreTest, SecretHashOfAnotherKeyIsAlreadyExists) {
  WriteOrDie(PutKeys({Key("k1", "org", {Sha('1')})}));
  const absl::Status taken =
      store_->WriteGuarded(PutKeys({Key("k2", "org", {Sha('1')})})).status();
  EXPECT_EQ(taken.code(), absl::StatusCode::kAlreadyExists) << taken;
  EXPECT_EQ(*store_->GetKeyById("k2"), std::nullopt);
  // Rotation: the dropped hash leaves the index and is free again.
  WriteOrDie(PutKeys({Key("k1", "org", {Sha('2')})}));
  EXPECT_EQ(*store_->GetKeyBySecretHash(Sha('1')), std::nullopt);
  WriteOrDie(PutKeys({Key("k2", "org", {Sha('1')})}));
  EXPECT_EQ((*store_->GetKeyBySecretHash(Sha('1')))->key().key_id(), "k2");
}

TEST_F(EtcdStoreTest, OrganizationIndexFollowsMovesAndPages) {
  WriteOrDie(PutKeys({Key("k1", "a"), Key("k2", "a"), Key("k3", "ab")}));
  WriteOrDie(PutKeys({Key("k1", "b")}));
  auto ids = [&](const std::string& org, const std::string& after, int limit) {
    std::vector<std::string> out;
    const absl::StatusOr<std::vector<KeyRecord>> keys =
        store_->ListKeys(org, after, limit);
    EXPECT_TRUE(keys.ok()) << keys.status();
    if (keys.ok()) {
      for (const KeyRecord& r : *keys) out.push_back(r.key().key_id());
    }
    return out;
  };
  EXPECT_THAT(ids("a", "", 10), ElementsAre("k2"));
  EXPECT_THAT(ids("b", "", 10), ElementsAre("k1"));
  EXPECT_THAT(ids("ab", "", 10), ElementsAre("k3"));
  EXPECT_THAT(ids("", "", 2), ElementsAre("k1", "k2"));
  EXPECT_THAT(ids("", "k2", 2), ElementsAre("k3"));
}

TEST_F(EtcdStoreTest, TooManyOperationsIsInvalidArgumentAndWritesNothing) {
  std::vector<KeyRecord> keys;
  // 3 ops per new key (record, hash, org) + head: 50 keys > 128 ops.
  for (int i = 0; i < 50; ++i) {
    keys.push_back(
        Key("k" + std::to_string(i), "org", {Sha(static_cast<char>('A' + i))}));
  }
  const absl::Status status = store_->WriteGuarded(PutKeys(keys)).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(), HasSubstr("max_txn_ops 128"));
  EXPECT_EQ(*store_->Revision(), 0u);
  EXPECT_THAT(*store_->ListKeys("", "", 100), IsEmpty());
  // The same with a limit etcd would also enforce (checked here first).
  keys.resize(40);  // 121 ops: fits.
  EXPECT_GT(WriteOrDie(PutKeys(keys)), 0u);
}

TEST_F(EtcdStoreTest, TooManyBytesIsInvalidArgumentAndWritesNothing) {
  KeyRecord big = Key("big", "org");
  big.mutable_key()->set_name(std::string(2 << 20, 'x'));  // 2 MiB
  const absl::Status status = store_->WriteGuarded(PutKeys({big})).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
  EXPECT_THAT(status.message(), HasSubstr("max_request_bytes"));
  EXPECT_EQ(*store_->GetKeyById("big"), std::nullopt);
}

TEST_F(EtcdStoreTest, ReadAtSeesOneRevision) {
  const uint64_t r1 = WriteOrDie(PutKeys({Key("k1", "org")}));
  absl::StatusOr<EtcdStore::Reader> at_r1 = store_->ReadAt(0);
  ASSERT_OK(at_r1);
  EXPECT_GE(at_r1->revision(), r1);
  WriteOrDie(PutKeys({Key("k2", "org")}));
  KeyRecord renamed = Key("k1", "org");
  renamed.mutable_key()->set_name("renamed");
  WriteOrDie(PutKeys({renamed}));
  std::vector<std::string> seen;
  ASSERT_TRUE(at_r1
                  ->ForEachKey([&](const KeyRecord& r) {
                    seen.push_back(r.key().key_id() + ":" + r.key().name());
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_THAT(seen, ElementsAre("k1:name of k1"));
  EXPECT_EQ(store_->ListKeys("", "", 10)->size(), 2u);
}

TEST_F(EtcdStoreTest, ForEachKeyPagesThroughOneSnapshot) {
  options_.page_size = 3;
  store_ = Open(options_);
  std::vector<KeyRecord> keys;
  for (int i = 0; i < 10; ++i)
    keys.push_back(Key("k" + std::to_string(i), "o"));
  WriteOrDie(PutKeys(keys));
  int visited = 0;
  ASSERT_TRUE(store_
                  ->ForEachKey([&](const KeyRecord& r) {
                    // A write in the middle of the scan is not seen by it.
                    if (++visited == 4) {
                      WriteOrDie(PutKeys({Key("k99", "o")}));
                    }
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(visited, 10);
}

TEST_F(EtcdStoreTest, ForEachKeySplitsLargeRangesAndKeepsKeyOrder) {
  // page_size 1: ranges of more than 4 keys are split by their next byte
  // (etcd 3.4 ranges cost their whole size per page).
  options_.page_size = 1;
  store_ = Open(options_);
  std::vector<std::string> ids = {"k",   "k1",  "k10", "k100", "k11",
                                  "k2",  "ka",  "kb1", "kb2",  "z",
                                  "k1a", "k1b", "k1c", "k1d",  "k1e"};
  std::vector<KeyRecord> keys;
  for (const std::string& id : ids) keys.push_back(Key(id, "o"));
  const uint64_t at = WriteOrDie(PutKeys(keys));
  WriteOrDie(PutKeys({Key("k12", "o")}));  // after the reader's revision
  std::vector<std::string> visited;
  absl::StatusOr<EtcdStore::Reader> reader = store_->ReadAt(at);
  ASSERT_OK(reader);
  ASSERT_TRUE(reader
                  ->ForEachKey([&](const KeyRecord& r) {
                    visited.push_back(r.key().key_id());
                    return absl::OkStatus();
                  })
                  .ok());
  std::sort(ids.begin(), ids.end());
  EXPECT_EQ(visited, ids);
}

TEST_F(EtcdStoreTest, KeyUsesKeepTheLaterTimeAndAreNotState) {
  google::protobuf::Timestamp early, late;
  early.set_seconds(100);
  late.set_seconds(200);
  ASSERT_TRUE(store_->RecordKeyUses({{"k1", late}, {"k2", early}}).ok());
  ASSERT_TRUE(store_->RecordKeyUses({{"k1", early}, {"k2", late}}).ok());
  EXPECT_EQ((*store_->GetKeyLastUse("k1"))->seconds(), 200);
  EXPECT_EQ((*store_->GetKeyLastUse("k2"))->seconds(), 200);
  EXPECT_EQ(*store_->GetKeyLastUse("k3"), std::nullopt);
  EXPECT_EQ(*store_->Revision(), 0u);
}

TEST_F(EtcdStoreTest, OpenRefusesANewerFormat) {
  ASSERT_OK(client_->Put(options_.prefix + "s/meta/format", "2"));
  absl::StatusOr<std::unique_ptr<EtcdStore>> store =
      EtcdStore::Open(client_, options_);
  EXPECT_EQ(store.status().code(), absl::StatusCode::kFailedPrecondition);
}

// Collects a change feed's calls.
struct FeedLog {
  Mutex mu;
  std::vector<Change> changes ABSL_GUARDED_BY(mu);
  std::vector<uint64_t> progress ABSL_GUARDED_BY(mu);
  // Changes delivered before each progress call, by revision.
  std::vector<std::vector<uint64_t>> delivered_at_progress ABSL_GUARDED_BY(mu);
  absl::Status end ABSL_GUARDED_BY(mu);
  CondVar changed;  // signalled after every callback
  absl::Notification ended;

  FollowCallbacks Callbacks() {
    FollowCallbacks callbacks;
    callbacks.on_change = [this](Change change) {
      MutexLock lock(&mu);
      changes.push_back(std::move(change));
      changed.SignalAll();
    };
    callbacks.on_progress = [this](uint64_t revision) {
      MutexLock lock(&mu);
      progress.push_back(revision);
      std::vector<uint64_t> delivered;
      for (const Change& c : changes) delivered.push_back(c.revision);
      delivered_at_progress.push_back(std::move(delivered));
      changed.SignalAll();
    };
    callbacks.on_end = [this](const absl::Status& status) {
      {
        MutexLock lock(&mu);
        end = status;
        changed.SignalAll();
      }
      ended.Notify();
    };
    return callbacks;
  }

  // WaitFor() waits until `done` (checked under mu after each callback) is
  // true, or 10 s passed.
  bool WaitFor(const std::function<bool()>& done) {
    MutexLock lock(&mu);
    return changed.WaitWithTimeout(&mu, absl::Seconds(10), done);
  }
};

TEST_F(EtcdStoreTest, FollowDeliversEachTransactionDecodedAndInOrder) {
  const uint64_t before = WriteOrDie(PutKeys({Key("k0", "org")}));
  Mutation first = PutKeys({Key("k1", "org", {Sha('1')})});
  v1::Policy policy;
  policy.add_scopes()->set_name("read");
  first.put_policy = policy;
  v1::AuditEvent audit;
  audit.set_action("PutPolicy");
  first.audit_event = audit;
  const uint64_t r1 = WriteOrDie(first);
  ASSERT_TRUE(
      store_->RecordKeyUses({{"k1", google::protobuf::Timestamp()}}).ok());
  Mutation second;
  v1::App app;
  app.set_app_id("app1");
  second.put_apps = {app};
  v1::Installation installation;
  installation.set_installation_id("i1");
  second.put_installations = {installation};
  const uint64_t r2 = WriteOrDie(second);
  const uint64_t r3 = WriteOrDie(Mutation());  // empty: still a revision

  FeedLog log;
  absl::StatusOr<std::unique_ptr<ChangeFeed>> feed =
      store_->Follow(before, log.Callbacks());
  ASSERT_OK(feed);
  ASSERT_TRUE((*feed)->RequestProgress().ok());
  ASSERT_TRUE(log.WaitFor([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(log.mu) {
    return !log.progress.empty();
  }));
  const uint64_t r4 = WriteOrDie(PutKeys({Key("k1", "org2", {Sha('1')})}));
  ASSERT_TRUE(log.WaitFor([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(log.mu) {
    return log.changes.size() == 4;
  }));
  feed->reset();
  ASSERT_TRUE(log.ended.HasBeenNotified());

  MutexLock lock(&log.mu);
  EXPECT_EQ(log.end.code(), absl::StatusCode::kCancelled);
  ASSERT_EQ(log.changes.size(), 4u);
  // Progress confirmed only after every change up to it was delivered.
  EXPECT_GE(log.progress[0], r3);
  EXPECT_THAT(log.delivered_at_progress[0], ElementsAre(r1, r2, r3));
  const Change& c1 = log.changes[0];
  EXPECT_EQ(c1.revision, r1);
  EXPECT_THAT(c1.keys,
              ElementsAre(EqualsProto(At(Key("k1", "org", {Sha('1')}), r1))));
  ASSERT_TRUE(c1.policy.has_value());
  EXPECT_THAT(*c1.policy, EqualsProto(policy));
  ASSERT_TRUE(c1.audit_event.has_value());
  audit.set_revision(r1);
  EXPECT_THAT(*c1.audit_event, EqualsProto(audit));
  const Change& c2 = log.changes[1];
  EXPECT_EQ(c2.revision, r2);
  EXPECT_THAT(c2.apps, ElementsAre(EqualsProto(app)));
  EXPECT_THAT(c2.installations, ElementsAre(EqualsProto(installation)));
  EXPECT_THAT(c2.keys, IsEmpty());
  EXPECT_FALSE(c2.policy.has_value());
  EXPECT_EQ(log.changes[2].revision, r3);  // telemetry is not in the feed
  EXPECT_EQ(log.changes[3].revision, r4);
  EXPECT_EQ(log.changes[3].keys[0].key().organization_id(), "org2");
  // Each key's record before the change comes with it.
  ASSERT_THAT(c1.previous_keys, ::testing::SizeIs(1));
  EXPECT_FALSE(c1.previous_keys[0].has_value());  // new
  ASSERT_THAT(log.changes[3].previous_keys, ::testing::SizeIs(1));
  ASSERT_TRUE(log.changes[3].previous_keys[0].has_value());
  EXPECT_THAT(*log.changes[3].previous_keys[0],
              EqualsProto(At(Key("k1", "org", {Sha('1')}), r1)));
  EXPECT_THAT(log.changes[3].removed_hashes, IsEmpty());  // same secret
}

TEST_F(EtcdStoreTest, FollowNamesTheSecretsAChangeTookAway) {
  const uint64_t r1 =
      WriteOrDie(PutKeys({Key("k1", "org", {Sha('1'), Sha('2')})}));
  const uint64_t r2 =
      WriteOrDie(PutKeys({Key("k1", "org", {Sha('2'), Sha('3')})}));
  FeedLog log;
  absl::StatusOr<std::unique_ptr<ChangeFeed>> feed =
      store_->Follow(r1, log.Callbacks());
  ASSERT_OK(feed);
  ASSERT_TRUE(log.WaitFor([&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(log.mu) {
    return log.changes.size() == 1;
  }));
  MutexLock lock(&log.mu);
  EXPECT_EQ(log.changes[0].revision, r2);
  EXPECT_THAT(log.changes[0].removed_hashes, ElementsAre(Sha('1')));
  ASSERT_TRUE(log.changes[0].previous_keys[0].has_value());
  EXPECT_EQ(log.changes[0].previous_keys[0]->secrets_size(), 2);
}

TEST_F(EtcdStoreTest, ReadHeadIsTheLastStateWriteAndTheClusterRevision) {
  const uint64_t r1 = WriteOrDie(PutKeys({Key("k1", "org")}));
  // Telemetry takes a revision but is no state write.
  ASSERT_TRUE(
      store_->RecordKeyUses({{"k1", google::protobuf::Timestamp()}}).ok());
  absl::StatusOr<EtcdStore::Head> head = store_->ReadHead();
  ASSERT_OK(head);
  EXPECT_EQ(head->last_write, r1);
  EXPECT_GT(head->revision, r1);
}

TEST_F(EtcdStoreTest, PruneAuditEventsDeletesOnlyOlderEvents) {
  auto event_at = [](int64_t seconds) {
    Mutation m;
    v1::AuditEvent event;
    event.set_action("CreateKey");
    event.mutable_time()->set_seconds(seconds);
    m.audit_event = event;
    return m;
  };
  WriteOrDie(event_at(100));
  WriteOrDie(event_at(200));
  const uint64_t r3 = WriteOrDie(event_at(300));
  absl::StatusOr<int> pruned =
      store_->PruneAuditEvents(absl::FromUnixSeconds(250), 1000);
  ASSERT_OK(pruned);
  EXPECT_EQ(*pruned, 2);
  absl::StatusOr<std::vector<v1::AuditEvent>> left =
      store_->ListAuditEvents({}, 100);
  ASSERT_OK(left);
  ASSERT_THAT(*left, ::testing::SizeIs(1));
  EXPECT_EQ((*left)[0].revision(), r3);
  pruned = store_->PruneAuditEvents(absl::FromUnixSeconds(250), 1000);
  ASSERT_OK(pruned);
  EXPECT_EQ(*pruned, 0);
}

TEST_F(EtcdStoreTest, FollowFromACompactedRevisionIsOutOfRange) {
  const uint64_t r1 = WriteOrDie(PutKeys({Key("k1", "org")}));
  const uint64_t r2 = WriteOrDie(PutKeys({Key("k2", "org")}));
  ASSERT_TRUE(client_->Compact(static_cast<int64_t>(r2), true).ok());
  FeedLog log;
  absl::StatusOr<std::unique_ptr<ChangeFeed>> feed =
      store_->Follow(r1 - 1, log.Callbacks());
  ASSERT_OK(feed);
  ASSERT_TRUE(log.ended.WaitForNotificationWithTimeout(absl::Seconds(10)));
  {
    MutexLock lock(&log.mu);
    EXPECT_EQ(log.end.code(), absl::StatusCode::kOutOfRange) << log.end;
    EXPECT_THAT(log.changes, IsEmpty());
  }
  // Reads of the compacted revision fail the same way.
  EXPECT_EQ(store_->ReadAt(r1)
                ->ForEachKey([](const KeyRecord&) { return absl::OkStatus(); })
                .code(),
            absl::StatusCode::kOutOfRange);
}

TEST_F(EtcdStoreTest, CheckpointRestoresIntoAnEmptyPrefix) {
  Mutation m = PutKeys({Key("k1", "a", {Sha('1')}), Key("k2", "b")});
  v1::Policy policy;
  policy.add_scopes()->set_name("read");
  m.put_policy = policy;
  v1::App app;
  app.set_app_id("app1");
  m.put_apps = {app};
  v1::AuditEvent audit;
  audit.set_action("First");
  m.audit_event = audit;
  WriteOrDie(m);
  Mutation later;
  audit.set_action("Second");
  later.audit_event = audit;
  const uint64_t exported_at = WriteOrDie(later);

  const std::string dir = std::string(getenv("TEST_TMPDIR")) + "/checkpoint";
  absl::StatusOr<uint64_t> revision = store_->Checkpoint(dir);
  ASSERT_OK(revision);
  EXPECT_GE(*revision, exported_at);
  EXPECT_EQ(store_->Checkpoint(dir).status().code(),
            absl::StatusCode::kFailedPrecondition);

  EtcdStore::Options other = options_;
  other.prefix = options_.prefix + "restored/";
  std::unique_ptr<EtcdStore> restored = Open(other);
  ASSERT_NE(restored, nullptr);
  ASSERT_OK(ImportCheckpoint(dir, *restored));
  EXPECT_EQ(ImportCheckpoint(dir, *restored).status().code(),
            absl::StatusCode::kFailedPrecondition);

  EXPECT_EQ((*restored->GetKeyBySecretHash(Sha('1')))->key().key_id(), "k1");
  std::vector<std::string> ids;
  const absl::StatusOr<std::vector<KeyRecord>> keys =
      restored->ListKeys("b", "", 10);
  ASSERT_OK(keys);
  for (const KeyRecord& r : *keys) ids.push_back(r.key().key_id());
  EXPECT_THAT(ids, ElementsAre("k2"));
  EXPECT_THAT(**restored->GetPolicy(), EqualsProto(policy));
  int apps = 0;
  ASSERT_TRUE(restored
                  ->ForEachApp([&](const v1::App& a) {
                    apps += a.app_id() == "app1";
                    return absl::OkStatus();
                  })
                  .ok());
  EXPECT_EQ(apps, 1);
  std::vector<std::string> actions;
  std::vector<uint64_t> revisions;
  const absl::StatusOr<std::vector<v1::AuditEvent>> events =
      restored->ListAuditEvents({}, 10);
  ASSERT_OK(events);
  for (const v1::AuditEvent& e : *events) {
    actions.push_back(e.action());
    revisions.push_back(e.revision());
  }
  EXPECT_THAT(actions, ElementsAre("First", "Second"));
  ASSERT_EQ(revisions.size(), 2u);
  EXPECT_LT(revisions[0], revisions[1]);
}

}  // namespace
}  // namespace scopekeeper::storage
