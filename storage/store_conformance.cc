// The Store contract (see store_conformance.h), run against every
// implementation.
#include "storage/store_conformance.h"

#include <stdlib.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/mutex.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"

namespace scopekeeper::storage {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::Eq;
using ::testing::IsEmpty;
using ::testing::Optional;

MATCHER_P(EqualsProto, expected, expected.DebugString()) {
  return google::protobuf::util::MessageDifferencer::Equals(arg, expected);
}

MATCHER_P(IsOkAndHolds, matcher, "") {
  if (!arg.ok()) {
    *result_listener << "status " << arg.status();
    return false;
  }
  return ::testing::ExplainMatchResult(matcher, *arg, result_listener);
}

MATCHER_P(HasKeyId, key_id, "") { return arg.key().key_id() == key_id; }

MATCHER_P(HasRevision, revision, "") { return arg.revision() == revision; }

absl::Status StatusOf(const absl::Status& s) { return s; }
template <typename T>
absl::Status StatusOf(const absl::StatusOr<T>& s) {
  return s.status();
}

#define ASSERT_OK(expr)                          \
  do {                                           \
    const absl::Status s_ = StatusOf(expr);      \
    ASSERT_TRUE(s_.ok()) << #expr << ": " << s_; \
  } while (false)

#define EXPECT_CODE(expr, expected) EXPECT_EQ(StatusOf(expr).code(), expected)

std::string Sha(char fill) { return std::string(32, fill); }

KeyRecord Key(const std::string& key_id, const std::string& org,
              const std::vector<std::string>& hashes = {}) {
  KeyRecord record;
  record.mutable_key()->set_key_id(key_id);
  record.mutable_key()->set_organization_id(org);
  record.mutable_key()->set_name("name of " + key_id);
  for (const std::string& hash : hashes) {
    record.add_secrets()->set_sha256(hash);
  }
  return record;
}

v1::AuditEvent Audit(uint64_t revision, const std::string& key_id,
                     const std::string& org) {
  v1::AuditEvent event;
  event.set_revision(revision);
  event.set_action("Test");
  event.set_key_id(key_id);
  event.set_organization_id(org);
  return event;
}

v1::Policy PolicyWithScope(const std::string& scope) {
  v1::Policy policy;
  policy.add_scopes()->set_name(scope);
  return policy;
}

Mutation PutKeys(uint64_t revision, std::vector<KeyRecord> keys) {
  Mutation m;
  m.revision = revision;
  m.put_keys = std::move(keys);
  return m;
}

std::string NewTempDir() {
  const char* root = getenv("TEST_TMPDIR");
  std::string dir = std::string(root != nullptr ? root : "/tmp") + "/st.XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) {
    ADD_FAILURE() << "mkdtemp " << dir;
  }
  return dir;
}

}  // namespace

void PrintTo(const StoreFactory& factory, std::ostream* os) {
  *os << factory.name;
}

void StoreTest::SetUp() {
  absl::StatusOr<std::unique_ptr<Store>> store = GetParam().open(NewTempDir());
  ASSERT_TRUE(store.ok()) << store.status();
  store_ = *std::move(store);
}

absl::Status StoreTest::Commit(Mutation m) {
  const uint64_t n = m.revision;
  uint64_t revision = n;
  if (assigns_revisions()) {
    absl::StatusOr<uint64_t> written = store_->WriteGuarded(m);
    if (!written.ok()) return written.status();
    revision = *written;
  } else {
    absl::Status status = store_->Commit(m);
    if (!status.ok()) return status;
  }
  MutexLock lock(&mu_);
  revisions_[n] = revision;
  return absl::OkStatus();
}

uint64_t StoreTest::Rev(uint64_t n) {
  if (n == 0 || !assigns_revisions()) return n;
  MutexLock lock(&mu_);
  const auto it = revisions_.find(n);
  if (it == revisions_.end()) {
    ADD_FAILURE() << "mutation " << n << " was not committed";
    return 0;
  }
  return it->second;
}

std::vector<uint64_t> StoreTest::Revs(std::initializer_list<uint64_t> ns) {
  std::vector<uint64_t> out;
  for (uint64_t n : ns) out.push_back(Rev(n));
  return out;
}

KeyRecord StoreTest::Stamped(KeyRecord record, uint64_t n) {
  if (assigns_revisions()) record.mutable_key()->set_revision(Rev(n));
  return record;
}

v1::AuditEvent StoreTest::Stamped(v1::AuditEvent event) {
  event.set_revision(Rev(event.revision()));
  return event;
}

std::vector<std::string> StoreTest::ListedIds(const std::string& org,
                                              const std::string& after,
                                              int limit) {
  std::vector<std::string> ids;
  absl::StatusOr<std::vector<KeyRecord>> keys =
      store_->ListKeys(org, after, limit);
  EXPECT_TRUE(keys.ok()) << keys.status();
  if (keys.ok()) {
    for (const KeyRecord& r : *keys) ids.push_back(r.key().key_id());
  }
  return ids;
}

std::vector<uint64_t> StoreTest::AuditRevisions(const AuditFilter& filter,
                                                int limit) {
  std::vector<uint64_t> revisions;
  absl::StatusOr<std::vector<v1::AuditEvent>> events =
      store_->ListAuditEvents(filter, limit);
  EXPECT_TRUE(events.ok()) << events.status();
  if (events.ok()) {
    for (const v1::AuditEvent& e : *events) revisions.push_back(e.revision());
  }
  return revisions;
}

namespace {

TEST_P(StoreTest, EmptyStoreHasRevisionZeroAndNoRecords) {
  EXPECT_THAT(store_->Revision(), IsOkAndHolds(Rev(0)));
  EXPECT_THAT(store_->GetPolicy(), IsOkAndHolds(Eq(std::nullopt)));
  EXPECT_THAT(store_->GetKeyById("k1"), IsOkAndHolds(Eq(std::nullopt)));
  EXPECT_THAT(store_->GetKeyBySecretHash(Sha('a')),
              IsOkAndHolds(Eq(std::nullopt)));
  EXPECT_THAT(ListedIds("", "", 10), IsEmpty());
  EXPECT_THAT(ListedIds("org", "", 10), IsEmpty());
  EXPECT_THAT(AuditRevisions({}, 10), IsEmpty());
  int calls = 0;
  ASSERT_OK(store_->ForEachKey([&](const KeyRecord&) {
    ++calls;
    return absl::OkStatus();
  }));
  EXPECT_EQ(calls, 0);
}

TEST_P(StoreTest, CommitRoundTripsKeysPolicyAndAudit) {
  const KeyRecord k1 = Key("k1", "org", {Sha('1')});
  const KeyRecord k2 = Key("k2", "org", {Sha('2')});
  const v1::Policy policy = PolicyWithScope("read");
  const v1::AuditEvent event = Audit(1, "k1", "org");
  Mutation m = PutKeys(1, {k1, k2});
  m.put_policy = policy;
  m.audit_event = event;
  ASSERT_OK(Commit(m));

  EXPECT_THAT(store_->Revision(), IsOkAndHolds(Rev(1)));
  EXPECT_THAT(store_->GetKeyById("k1"),
              IsOkAndHolds(Optional(EqualsProto(Stamped(k1, 1)))));
  EXPECT_THAT(store_->GetKeyById("k2"),
              IsOkAndHolds(Optional(EqualsProto(Stamped(k2, 1)))));
  EXPECT_THAT(store_->GetPolicy(), IsOkAndHolds(Optional(EqualsProto(policy))));
  EXPECT_THAT(store_->ListAuditEvents({}, 10),
              IsOkAndHolds(ElementsAre(EqualsProto(Stamped(event)))));
}

TEST_P(StoreTest, LaterCommitReplacesRecordsAndPolicy) {
  Mutation first = PutKeys(1, {Key("k1", "org"), Key("k2", "org")});
  first.put_policy = PolicyWithScope("read");
  ASSERT_OK(Commit(first));

  KeyRecord k1 = Key("k1", "org");
  k1.mutable_key()->set_name("renamed");
  Mutation second = PutKeys(2, {k1});
  second.put_policy = PolicyWithScope("write");
  ASSERT_OK(Commit(second));
  // A mutation without a policy keeps it.
  ASSERT_OK(Commit(PutKeys(3, {})));

  EXPECT_THAT(store_->Revision(), IsOkAndHolds(Rev(3)));
  EXPECT_THAT(store_->GetKeyById("k1"),
              IsOkAndHolds(Optional(EqualsProto(Stamped(k1, 2)))));
  EXPECT_THAT(
      store_->GetKeyById("k2"),
      IsOkAndHolds(Optional(EqualsProto(Stamped(Key("k2", "org"), 1)))));
  EXPECT_THAT(store_->GetPolicy(),
              IsOkAndHolds(Optional(EqualsProto(PolicyWithScope("write")))));
  EXPECT_THAT(ListedIds("org", "", 10), ElementsAre("k1", "k2"));
}

TEST_P(StoreTest, WriteIsVisibleAtOnceAndSyncKeepsIt) {
  if (assigns_revisions()) {
    GTEST_SKIP() << "Write() with a caller-chosen revision: not part of the "
                    "contract of a store that assigns "
                    "revisions";
  }
  ASSERT_OK(store_->Write(PutKeys(1, {Key("k1", "org")})));
  // Visible before any Sync(): the next write builds on it.
  EXPECT_THAT(store_->Revision(), IsOkAndHolds(Rev(1)));
  EXPECT_THAT(store_->GetKeyById("k1"),
              IsOkAndHolds(Optional(EqualsProto(Key("k1", "org")))));
  EXPECT_CODE(store_->Write(PutKeys(1, {Key("k9", "org")})),
              absl::StatusCode::kFailedPrecondition);
  ASSERT_OK(store_->Write(PutKeys(2, {Key("k2", "org")})));
  ASSERT_OK(store_->Sync());
  ASSERT_OK(store_->Sync());  // nothing new: still fine
  EXPECT_THAT(store_->Revision(), IsOkAndHolds(Rev(2)));
  EXPECT_THAT(ListedIds("org", "", 10), ElementsAre("k1", "k2"));
}

TEST_P(StoreTest, RevisionMustBeCurrentPlusOne) {
  if (assigns_revisions()) {
    GTEST_SKIP() << "caller-chosen revisions: not part of the contract of a "
                    "store that assigns "
                    "revisions";
  }
  EXPECT_CODE(Commit(PutKeys(0, {Key("k0", "org")})),
              absl::StatusCode::kFailedPrecondition);
  EXPECT_CODE(Commit(PutKeys(2, {Key("k2", "org")})),
              absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(store_->Revision(), IsOkAndHolds(Rev(0)));
  EXPECT_THAT(store_->GetKeyById("k0"), IsOkAndHolds(Eq(std::nullopt)));
  EXPECT_THAT(store_->GetKeyById("k2"), IsOkAndHolds(Eq(std::nullopt)));

  ASSERT_OK(Commit(PutKeys(1, {Key("k1", "org")})));
  KeyRecord replay = Key("k1", "other-org");
  Mutation again = PutKeys(1, {replay, Key("k3", "org")});
  again.put_policy = PolicyWithScope("read");
  again.audit_event = Audit(1, "k3", "org");
  EXPECT_CODE(Commit(again), absl::StatusCode::kFailedPrecondition);
  EXPECT_CODE(Commit(PutKeys(3, {Key("k3", "org")})),
              absl::StatusCode::kFailedPrecondition);

  EXPECT_THAT(store_->Revision(), IsOkAndHolds(Rev(1)));
  EXPECT_THAT(store_->GetKeyById("k1"),
              IsOkAndHolds(Optional(EqualsProto(Key("k1", "org")))));
  EXPECT_THAT(store_->GetKeyById("k3"), IsOkAndHolds(Eq(std::nullopt)));
  EXPECT_THAT(store_->GetPolicy(), IsOkAndHolds(Eq(std::nullopt)));
  EXPECT_THAT(AuditRevisions({}, 10), IsEmpty());
  EXPECT_THAT(ListedIds("other-org", "", 10), IsEmpty());
  ASSERT_OK(Commit(PutKeys(2, {})));
  EXPECT_THAT(store_->Revision(), IsOkAndHolds(Rev(2)));
}

TEST_P(StoreTest, AuditEventRevisionMustMatchMutation) {
  if (assigns_revisions()) {
    GTEST_SKIP() << "caller-chosen revisions: not part of the contract of a "
                    "store that assigns "
                    "revisions";
  }
  Mutation m = PutKeys(1, {Key("k1", "org")});
  m.audit_event = Audit(2, "k1", "org");
  EXPECT_CODE(Commit(m), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(store_->Revision(), IsOkAndHolds(Rev(0)));
  EXPECT_THAT(store_->GetKeyById("k1"), IsOkAndHolds(Eq(std::nullopt)));
  EXPECT_THAT(AuditRevisions({}, 10), IsEmpty());
}

TEST_P(StoreTest, MalformedRecordsAreRejected) {
  EXPECT_CODE(Commit(PutKeys(1, {Key("", "org")})),
              absl::StatusCode::kInvalidArgument);
  EXPECT_CODE(Commit(PutKeys(1, {Key("k1", "org"), Key("k1", "org")})),
              absl::StatusCode::kInvalidArgument);
  EXPECT_CODE(Commit(PutKeys(1, {Key("k1", std::string("a\0b", 3))})),
              absl::StatusCode::kInvalidArgument);
  EXPECT_CODE(Commit(PutKeys(1, {Key("k1", "org", {"short"})})),
              absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(store_->Revision(), IsOkAndHolds(Rev(0)));
  EXPECT_THAT(store_->GetKeyById("k1"), IsOkAndHolds(Eq(std::nullopt)));
}

TEST_P(StoreTest, RejectedCommitLeavesNothing) {
  Mutation first = PutKeys(1, {Key("owner", "org", {Sha('o')})});
  first.put_policy = PolicyWithScope("read");
  first.audit_event = Audit(1, "owner", "org");
  ASSERT_OK(Commit(first));

  // "a" alone is valid; "b" claims a hash of "owner", found only after "a"
  // has been prepared.
  Mutation bad = PutKeys(
      2, {Key("a", "new-org", {Sha('a')}), Key("b", "new-org", {Sha('o')})});
  bad.put_policy = PolicyWithScope("write");
  bad.audit_event = Audit(2, "a", "new-org");
  EXPECT_CODE(Commit(bad), absl::StatusCode::kAlreadyExists);

  EXPECT_THAT(store_->Revision(), IsOkAndHolds(Rev(1)));
  EXPECT_THAT(store_->GetKeyById("a"), IsOkAndHolds(Eq(std::nullopt)));
  EXPECT_THAT(store_->GetKeyById("b"), IsOkAndHolds(Eq(std::nullopt)));
  EXPECT_THAT(store_->GetKeyBySecretHash(Sha('a')),
              IsOkAndHolds(Eq(std::nullopt)));
  EXPECT_THAT(store_->GetKeyBySecretHash(Sha('o')),
              IsOkAndHolds(Optional(HasKeyId("owner"))));
  EXPECT_THAT(ListedIds("new-org", "", 10), IsEmpty());
  EXPECT_THAT(ListedIds("", "", 10), ElementsAre("owner"));
  EXPECT_THAT(store_->GetPolicy(),
              IsOkAndHolds(Optional(EqualsProto(PolicyWithScope("read")))));
  EXPECT_THAT(AuditRevisions({}, 10), ElementsAreArray(Revs({1})));

  // The revision was not used up.
  ASSERT_OK(Commit(PutKeys(2, {Key("a", "new-org", {Sha('a')})})));
  EXPECT_THAT(ListedIds("new-org", "", 10), ElementsAre("a"));
}

// Ids of every record ForEachApp() / ForEachInstallation() visit, in order.
std::vector<std::string> AppIds(Store& store) {
  std::vector<std::string> ids;
  EXPECT_TRUE(store
                  .ForEachApp([&](const v1::App& app) {
                    ids.push_back(app.app_id());
                    return absl::OkStatus();
                  })
                  .ok());
  return ids;
}

TEST_P(StoreTest, AppsAndInstallationsRoundTripAndReplace) {
  v1::App b;
  b.set_app_id("app_b");
  b.add_requested_scopes("read:patients");
  v1::App a;
  a.set_app_id("app_a");
  v1::Installation inst;
  inst.set_installation_id("inst_1");
  inst.set_app_id("app_a");
  inst.set_organization_id("org");
  inst.add_approved_scopes("read:patients");
  Mutation m;
  m.revision = 1;
  m.put_apps = {b, a};
  m.put_installations = {inst};
  ASSERT_OK(Commit(m));
  EXPECT_THAT(AppIds(*store_), ElementsAre("app_a", "app_b"));

  b.add_requested_scopes("write:patients");
  inst.clear_approved_scopes();
  Mutation replace;
  replace.revision = 2;
  replace.put_apps = {b};
  replace.put_installations = {inst};
  ASSERT_OK(Commit(replace));
  std::vector<v1::App> apps;
  ASSERT_OK(store_->ForEachApp([&](const v1::App& app) {
    apps.push_back(app);
    return absl::OkStatus();
  }));
  EXPECT_THAT(apps, ElementsAre(EqualsProto(a), EqualsProto(b)));
  std::vector<v1::Installation> installations;
  ASSERT_OK(store_->ForEachInstallation([&](const v1::Installation& i) {
    installations.push_back(i);
    return absl::OkStatus();
  }));
  EXPECT_THAT(installations, ElementsAre(EqualsProto(inst)));
}

TEST_P(StoreTest, KeyUsesKeepTheLatestAndTakeNoRevision) {
  google::protobuf::Timestamp early;
  early.set_seconds(100);
  google::protobuf::Timestamp late;
  late.set_seconds(200);
  ASSERT_OK(store_->RecordKeyUses({{"k1", late}, {"k2", early}}));
  ASSERT_OK(store_->RecordKeyUses({{"k1", early}}));  // older: ignored
  EXPECT_THAT(store_->GetKeyLastUse("k1"),
              IsOkAndHolds(Optional(EqualsProto(late))));
  EXPECT_THAT(store_->GetKeyLastUse("k2"),
              IsOkAndHolds(Optional(EqualsProto(early))));
  EXPECT_THAT(store_->GetKeyLastUse("k3"), IsOkAndHolds(Eq(std::nullopt)));
  EXPECT_THAT(store_->Revision(), IsOkAndHolds(Rev(0)));
}

TEST_P(StoreTest, MalformedAppAndInstallationIdsAreRejected) {
  Mutation empty_app;
  empty_app.revision = 1;
  empty_app.put_apps.emplace_back();
  EXPECT_CODE(Commit(empty_app), absl::StatusCode::kInvalidArgument);
  Mutation twice;
  twice.revision = 1;
  twice.put_installations.resize(2);
  twice.put_installations[0].set_installation_id("i");
  twice.put_installations[1].set_installation_id("i");
  EXPECT_CODE(Commit(twice), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(store_->Revision(), IsOkAndHolds(Rev(0)));
  EXPECT_THAT(AppIds(*store_), IsEmpty());
}

TEST_P(StoreTest, GetKeyBySecretHashFindsEachSecret) {
  // Binary-safe: hashes of all-zero and all-0xff bytes.
  const std::string zero = Sha('\0');
  const std::string ones = Sha('\xff');
  ASSERT_OK(Commit(PutKeys(
      1, {Key("k1", "org", {zero, ones}), Key("k2", "org", {Sha('2')})})));

  for (const std::string& hash : {zero, ones}) {
    EXPECT_THAT(store_->GetKeyBySecretHash(hash),
                IsOkAndHolds(Optional(
                    EqualsProto(Stamped(Key("k1", "org", {zero, ones}), 1)))));
  }
  EXPECT_THAT(store_->GetKeyBySecretHash(Sha('2')),
              IsOkAndHolds(Optional(HasKeyId("k2"))));
  EXPECT_THAT(store_->GetKeyBySecretHash(Sha('3')),
              IsOkAndHolds(Eq(std::nullopt)));
  EXPECT_CODE(store_->GetKeyBySecretHash("short"),
              absl::StatusCode::kInvalidArgument);
}

TEST_P(StoreTest, RotationRemovesDroppedHashesFromIndex) {
  ASSERT_OK(Commit(PutKeys(1, {Key("k1", "org", {Sha('o')})})));
  // Grace period: old and new secret both work.
  ASSERT_OK(Commit(PutKeys(2, {Key("k1", "org", {Sha('o'), Sha('n')})})));
  for (char c : {'o', 'n'}) {
    EXPECT_THAT(store_->GetKeyBySecretHash(Sha(c)),
                IsOkAndHolds(Optional(HasKeyId("k1"))))
        << c;
  }
  // The old secret is dropped.
  KeyRecord rotated = Key("k1", "org", {Sha('n')});
  rotated.mutable_key()->set_revision(3);
  ASSERT_OK(Commit(PutKeys(3, {rotated})));

  EXPECT_THAT(store_->GetKeyBySecretHash(Sha('o')),
              IsOkAndHolds(Eq(std::nullopt)));
  EXPECT_THAT(store_->GetKeyBySecretHash(Sha('n')),
              IsOkAndHolds(Optional(EqualsProto(Stamped(rotated, 3)))));
  // The dropped hash is free for another key.
  ASSERT_OK(Commit(PutKeys(4, {Key("k2", "org", {Sha('o')})})));
  EXPECT_THAT(store_->GetKeyBySecretHash(Sha('o')),
              IsOkAndHolds(Optional(HasKeyId("k2"))));
}

TEST_P(StoreTest, HashOfAnotherKeyIsRejected) {
  ASSERT_OK(Commit(PutKeys(1, {Key("k1", "org", {Sha('1')})})));
  // Re-putting a key with its own hash is fine.
  ASSERT_OK(Commit(PutKeys(2, {Key("k1", "org", {Sha('1')})})));

  EXPECT_CODE(Commit(PutKeys(3, {Key("k2", "org", {Sha('1')})})),
              absl::StatusCode::kAlreadyExists);
  EXPECT_CODE(Commit(PutKeys(3, {Key("k2", "org", {Sha('x')}),
                                 Key("k3", "org", {Sha('x')})})),
              absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(store_->Revision(), IsOkAndHolds(Rev(2)));
  EXPECT_THAT(store_->GetKeyBySecretHash(Sha('1')),
              IsOkAndHolds(Optional(HasKeyId("k1"))));
  EXPECT_THAT(store_->GetKeyBySecretHash(Sha('x')),
              IsOkAndHolds(Eq(std::nullopt)));
}

TEST_P(StoreTest, ListKeysByOrganizationWithPaging) {
  // "k10" sorts between "k1" and "k2"; org "ab" extends org "a".
  ASSERT_OK(
      Commit(PutKeys(1, {Key("k5", "a"), Key("k1", "a"), Key("k2", "ab"),
                         Key("k3", "a"), Key("k4", "b"), Key("k10", "a")})));

  EXPECT_THAT(ListedIds("a", "", 10), ElementsAre("k1", "k10", "k3", "k5"));
  EXPECT_THAT(ListedIds("ab", "", 10), ElementsAre("k2"));
  EXPECT_THAT(ListedIds("b", "", 10), ElementsAre("k4"));
  EXPECT_THAT(ListedIds("c", "", 10), IsEmpty());
  EXPECT_THAT(ListedIds("", "", 10),
              ElementsAre("k1", "k10", "k2", "k3", "k4", "k5"));

  // Pages: strictly after after_key_id, at most limit.
  EXPECT_THAT(ListedIds("a", "", 2), ElementsAre("k1", "k10"));
  EXPECT_THAT(ListedIds("a", "k10", 2), ElementsAre("k3", "k5"));
  EXPECT_THAT(ListedIds("a", "k5", 2), IsEmpty());
  EXPECT_THAT(ListedIds("a", "k1", 10), ElementsAre("k10", "k3", "k5"));
  // after_key_id need not be a key of the organization.
  EXPECT_THAT(ListedIds("a", "k2", 10), ElementsAre("k3", "k5"));
  EXPECT_THAT(ListedIds("", "k2", 2), ElementsAre("k3", "k4"));
  EXPECT_THAT(ListedIds("", "k5", 2), IsEmpty());

  EXPECT_THAT(
      store_->ListKeys("b", "", 1),
      IsOkAndHolds(ElementsAre(EqualsProto(Stamped(Key("k4", "b"), 1)))));
}

TEST_P(StoreTest, OrganizationChangeMovesIndexEntry) {
  ASSERT_OK(Commit(PutKeys(1, {Key("k1", "a"), Key("k2", "a")})));
  ASSERT_OK(Commit(PutKeys(2, {Key("k1", "b")})));
  EXPECT_THAT(ListedIds("a", "", 10), ElementsAre("k2"));
  EXPECT_THAT(ListedIds("b", "", 10), ElementsAre("k1"));
}

TEST_P(StoreTest, LimitMustBePositive) {
  EXPECT_CODE(store_->ListKeys("", "", 0), absl::StatusCode::kInvalidArgument);
  EXPECT_CODE(store_->ListKeys("a", "", -1),
              absl::StatusCode::kInvalidArgument);
  EXPECT_CODE(store_->ListAuditEvents({}, 0),
              absl::StatusCode::kInvalidArgument);
}

TEST_P(StoreTest, ForEachKeyVisitsInKeyIdOrderAndStopsAtFirstError) {
  ASSERT_OK(Commit(PutKeys(1, {Key("c", "o2"), Key("a", "o1")})));
  ASSERT_OK(Commit(PutKeys(2, {Key("b", "o3"), Key("d", "o1")})));

  std::vector<std::string> seen;
  ASSERT_OK(store_->ForEachKey([&](const KeyRecord& r) {
    seen.push_back(r.key().key_id());
    return absl::OkStatus();
  }));
  EXPECT_THAT(seen, ElementsAre("a", "b", "c", "d"));

  seen.clear();
  const absl::Status stop = absl::CancelledError("enough");
  const absl::Status result = store_->ForEachKey([&](const KeyRecord& r) {
    seen.push_back(r.key().key_id());
    return r.key().key_id() == "b" ? stop : absl::OkStatus();
  });
  EXPECT_EQ(result, stop);
  EXPECT_THAT(seen, ElementsAre("a", "b"));
}

TEST_P(StoreTest, ForEachKeyCallbackMayReadTheStore) {
  ASSERT_OK(Commit(PutKeys(1, {Key("a", "o", {Sha('a')})})));
  int found = 0;
  ASSERT_OK(store_->ForEachKey([&](const KeyRecord& r) -> absl::Status {
    absl::StatusOr<std::optional<KeyRecord>> again =
        store_->GetKeyBySecretHash(r.secrets(0).sha256());
    if (!again.ok()) return again.status();
    found += again->has_value();
    return absl::OkStatus();
  }));
  EXPECT_EQ(found, 1);
}

TEST_P(StoreTest, ListAuditEventsFilters) {
  const std::vector<v1::AuditEvent> events = {
      Audit(1, "k1", "a"), Audit(2, "k2", "a"), Audit(3, "", ""),
      Audit(4, "k1", "a"), Audit(5, "k3", "b"), Audit(6, "k2", "a")};
  for (const v1::AuditEvent& event : events) {
    Mutation m = PutKeys(event.revision(), {});
    m.audit_event = event;
    ASSERT_OK(Commit(m));
  }
  ASSERT_OK(Commit(PutKeys(7, {})));  // no event

  EXPECT_THAT(AuditRevisions({}, 100),
              ElementsAreArray(Revs({1, 2, 3, 4, 5, 6})));
  EXPECT_THAT(AuditRevisions({}, 2), ElementsAreArray(Revs({1, 2})));
  EXPECT_THAT(AuditRevisions({"k1", "", 0}, 100),
              ElementsAreArray(Revs({1, 4})));
  EXPECT_THAT(AuditRevisions({"", "a", 0}, 100),
              ElementsAreArray(Revs({1, 2, 4, 6})));
  EXPECT_THAT(AuditRevisions({"", "", Rev(2)}, 100),
              ElementsAreArray(Revs({3, 4, 5, 6})));
  EXPECT_THAT(AuditRevisions({"", "a", Rev(2)}, 100),
              ElementsAreArray(Revs({4, 6})));
  EXPECT_THAT(AuditRevisions({"", "a", Rev(1)}, 2),
              ElementsAreArray(Revs({2, 4})));
  EXPECT_THAT(AuditRevisions({"k2", "a", 0}, 100),
              ElementsAreArray(Revs({2, 6})));
  EXPECT_THAT(AuditRevisions({"k1", "b", 0}, 100), IsEmpty());
  EXPECT_THAT(AuditRevisions({"", "", Rev(6)}, 100), IsEmpty());
  EXPECT_THAT(AuditRevisions({"", "", UINT64_MAX}, 100), IsEmpty());

  EXPECT_THAT(store_->ListAuditEvents({"k3", "", 0}, 10),
              IsOkAndHolds(ElementsAre(EqualsProto(Stamped(events[4])))));
}

TEST_P(StoreTest, ReadersSeeWholeCommitsWhileOneWriterCommits) {
  constexpr uint64_t kCommits = 60;
  const std::string stable = Sha('s');
  // Mutation n: the stable secret stays, a second one and the name change.
  auto record_at = [&](uint64_t n) {
    KeyRecord r = Key("k", "org", {stable, Sha(static_cast<char>(n))});
    r.mutable_key()->set_name(std::to_string(n));
    r.mutable_key()->set_revision(n);  // the caller's stamp (single writer)
    return r;
  };
  ASSERT_OK(Commit(PutKeys(1, {record_at(1)})));

  constexpr int kReaders = 2;
  Mutex observed_mu;
  // (n, revision); under observed_mu until the readers are joined.
  std::vector<std::pair<uint64_t, uint64_t>> observed;
  std::atomic<int> started{0};
  std::atomic<bool> done{false};
  std::vector<std::thread> readers;
  for (int t = 0; t < kReaders; ++t) {
    readers.emplace_back([&] {
      uint64_t last_seen = 0;
      for (bool first = true; !done.load(); first = false) {
        if (first) ++started;
        absl::StatusOr<uint64_t> revision = store_->Revision();
        ASSERT_TRUE(revision.ok()) << revision.status();
        absl::StatusOr<std::optional<KeyRecord>> got =
            store_->GetKeyBySecretHash(stable);
        ASSERT_TRUE(got.ok()) << got.status();
        ASSERT_TRUE(got->has_value()) << "stable secret lost";
        const uint64_t seen = (*got)->key().revision();
        // Never older than an earlier read, nor than the Revision() read
        // before it.
        EXPECT_GE(seen, last_seen);
        EXPECT_GE(seen, *revision);
        last_seen = seen;
        // One whole mutation: its name, second secret and revision agree.
        const uint64_t n = std::stoull((*got)->key().name());
        ASSERT_EQ((*got)->secrets_size(), 2);
        EXPECT_EQ((*got)->secrets(1).sha256(), Sha(static_cast<char>(n)));
        MutexLock lock(&observed_mu);
        observed.emplace_back(n, seen);
      }
    });
  }
  while (started.load() < kReaders) std::this_thread::yield();
  for (uint64_t n = 2; n <= kCommits; ++n) {
    const absl::Status committed = Commit(PutKeys(n, {record_at(n)}));
    EXPECT_TRUE(committed.ok()) << committed;
    if (!committed.ok()) break;
  }
  done.store(true);
  for (std::thread& t : readers) t.join();
  EXPECT_THAT(store_->Revision(), IsOkAndHolds(Rev(kCommits)));
  // Each record read carried the revision of the mutation that wrote it.
  for (const auto& [n, seen] : observed) EXPECT_EQ(seen, Rev(n)) << n;
}
}  // namespace
}  // namespace scopekeeper::storage
