// RocksDbStore specifics: persistence, on-disk layout, directory and format
// checks, corruption. The Store contract itself is in store_test.cc.
#include "storage/rocksdb_store.h"

#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "storage/full_disk_env.h"

namespace scopekeeper::storage {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::Eq;
using ::testing::HasSubstr;
using ::testing::Optional;
using ::testing::Pair;

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

// StatusIs(code, message_matcher) for absl::Status and absl::StatusOr.
MATCHER_P2(StatusIs, code, message, "") {
  const absl::Status status = [&] {
    if constexpr (std::is_same_v<std::decay_t<decltype(arg)>, absl::Status>) {
      return arg;
    } else {
      return arg.status();
    }
  }();
  *result_listener << "status " << status;
  return status.code() == code &&
         ::testing::Matches(message)(std::string(status.message()));
}

#define ASSERT_OK(expr)                          \
  do {                                           \
    const absl::Status s_ = (expr);              \
    ASSERT_TRUE(s_.ok()) << #expr << ": " << s_; \
  } while (false)

std::string Sha(char fill) { return std::string(32, fill); }

std::string BigEndian(uint64_t v) {
  std::string out;
  for (int shift = 56; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
  return out;
}

KeyRecord Key(const std::string& key_id, const std::string& org,
              const std::vector<std::string>& hashes) {
  KeyRecord record;
  record.mutable_key()->set_key_id(key_id);
  record.mutable_key()->set_organization_id(org);
  for (const std::string& hash : hashes) record.add_secrets()->set_sha256(hash);
  return record;
}

v1::AuditEvent Audit(uint64_t revision, const std::string& key_id) {
  v1::AuditEvent event;
  event.set_revision(revision);
  event.set_action("Test");
  event.set_key_id(key_id);
  return event;
}

bool AllPrintable(absl::string_view s) {
  for (char c : s) {
    if (!std::isprint(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

class RocksDbStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* root = getenv("TEST_TMPDIR");
    std::string dir =
        std::string(root != nullptr ? root : "/tmp") + "/rocks.XXXXXX";
    ASSERT_NE(mkdtemp(dir.data()), nullptr) << dir;
    root_ = dir;
    path_ = root_ + "/db";  // missing: Open creates it
  }

  absl::StatusOr<std::unique_ptr<RocksDbStore>> Open(const std::string& path) {
    RocksDbStore::Options options;
    options.path = path;
    return RocksDbStore::Open(options);
  }

  std::unique_ptr<RocksDbStore> OpenOrDie() {
    absl::StatusOr<std::unique_ptr<RocksDbStore>> store = Open(path_);
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }

  // Opens the database directly, bypassing the store (which must be closed).
  std::unique_ptr<rocksdb::DB> OpenRaw(bool create = false) {
    rocksdb::Options options;
    options.create_if_missing = create;
    rocksdb::DB* db = nullptr;
    const rocksdb::Status s = rocksdb::DB::Open(options, path_, &db);
    EXPECT_TRUE(s.ok()) << s.ToString();
    return std::unique_ptr<rocksdb::DB>(db);
  }

  void RawPut(const std::string& key, const std::string& value) {
    std::unique_ptr<rocksdb::DB> db = OpenRaw();
    ASSERT_NE(db, nullptr);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), key, value).ok());
    ASSERT_TRUE(db->Close().ok());
  }

  // Every entry of the database.
  std::map<std::string, std::string> RawContents() {
    std::map<std::string, std::string> contents;
    std::unique_ptr<rocksdb::DB> db = OpenRaw();
    if (db == nullptr) return contents;
    std::unique_ptr<rocksdb::Iterator> it(
        db->NewIterator(rocksdb::ReadOptions()));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      contents[it->key().ToString()] = it->value().ToString();
    }
    EXPECT_TRUE(it->status().ok()) << it->status().ToString();
    it.reset();
    EXPECT_TRUE(db->Close().ok());
    return contents;
  }

  // A store at revision 2: key k1 of org "a", rotated from hash 'o' to 'n',
  // a policy and two audit events.
  void Populate() {
    std::unique_ptr<RocksDbStore> store = OpenOrDie();
    ASSERT_NE(store, nullptr);
    Mutation first;
    first.revision = 1;
    first.put_keys = {Key("k1", "a", {Sha('o')})};
    first.put_policy.emplace().add_scopes()->set_name("read");
    first.audit_event = Audit(1, "k1");
    ASSERT_OK(store->Commit(first));
    Mutation second;
    second.revision = 2;
    second.put_keys = {Key("k1", "a", {Sha('n')})};
    second.audit_event = Audit(2, "k1");
    ASSERT_OK(store->Commit(second));
  }

  std::string root_;
  std::string path_;
};

TEST_F(RocksDbStoreTest, SyncedWritesSurviveReopen) {
  {
    std::unique_ptr<RocksDbStore> store = OpenOrDie();
    ASSERT_NE(store, nullptr);
    for (uint64_t revision = 1; revision <= 3; ++revision) {
      Mutation m;
      m.revision = revision;
      m.put_keys = {Key(absl::StrCat("k", revision), "a", {})};
      m.audit_event = Audit(revision, absl::StrCat("k", revision));
      ASSERT_OK(store->Write(m));
    }
    ASSERT_OK(store->Sync());
  }
  std::unique_ptr<RocksDbStore> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(store->Revision(), IsOkAndHolds(uint64_t{3}));
  EXPECT_THAT(store->GetKeyById("k3"), IsOkAndHolds(Optional(HasKeyId("k3"))));
}

TEST_F(RocksDbStoreTest, ReopenKeepsEverything) {
  ASSERT_NO_FATAL_FAILURE(Populate());

  std::unique_ptr<RocksDbStore> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(store->Revision(), IsOkAndHolds(uint64_t{2}));
  const KeyRecord k1 = Key("k1", "a", {Sha('n')});
  EXPECT_THAT(store->GetKeyById("k1"), IsOkAndHolds(Optional(EqualsProto(k1))));
  EXPECT_THAT(store->GetKeyBySecretHash(Sha('n')),
              IsOkAndHolds(Optional(EqualsProto(k1))));
  EXPECT_THAT(store->GetKeyBySecretHash(Sha('o')),
              IsOkAndHolds(Eq(std::nullopt)));
  EXPECT_THAT(store->ListKeys("a", "", 10),
              IsOkAndHolds(ElementsAre(EqualsProto(k1))));
  v1::Policy policy;
  policy.add_scopes()->set_name("read");
  EXPECT_THAT(store->GetPolicy(), IsOkAndHolds(Optional(EqualsProto(policy))));
  EXPECT_THAT(store->ListAuditEvents({}, 10),
              IsOkAndHolds(ElementsAre(EqualsProto(Audit(1, "k1")),
                                       EqualsProto(Audit(2, "k1")))));

  // The revision carries on from where it was.
  Mutation stale;
  stale.revision = 2;
  EXPECT_THAT(store->Commit(stale),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("2")));
  Mutation next;
  next.revision = 3;
  ASSERT_OK(store->Commit(next));
  EXPECT_THAT(store->Revision(), IsOkAndHolds(uint64_t{3}));
}

TEST_F(RocksDbStoreTest, WritesTheDocumentedLayout) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  v1::Policy policy;
  policy.add_scopes()->set_name("read");

  EXPECT_THAT(
      RawContents(),
      ElementsAre(
          Pair("audit/" + BigEndian(1), Audit(1, "k1").SerializeAsString()),
          Pair("audit/" + BigEndian(2), Audit(2, "k1").SerializeAsString()),
          Pair("hash/" + Sha('n'), "k1"),  // 'o' was removed
          Pair("key/k1", Key("k1", "a", {Sha('n')}).SerializeAsString()),
          Pair("meta/format", "1"), Pair("meta/revision", BigEndian(2)),
          Pair(std::string("org/a\0k1", 8), ""),
          Pair("policy", policy.SerializeAsString())));
}

TEST_F(RocksDbStoreTest, NewStoreIsMarkedAtRevisionZero) {
  { ASSERT_NE(OpenOrDie(), nullptr); }
  EXPECT_THAT(RawContents(), ElementsAre(Pair("meta/format", "1"),
                                         Pair("meta/revision", BigEndian(0))));
}

TEST_F(RocksDbStoreTest, OpensAnExistingEmptyDirectory) {
  std::unique_ptr<RocksDbStore> store = OpenOrDie();  // creates path_
  store.reset();
  fs::remove_all(path_);
  fs::create_directory(path_);
  absl::StatusOr<std::unique_ptr<RocksDbStore>> reopened = Open(path_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_THAT((*reopened)->Revision(), IsOkAndHolds(uint64_t{0}));
}

TEST_F(RocksDbStoreTest, ClaimsAnEmptyRocksDbWithoutMarker) {
  // What an Open() interrupted between creating the database and writing
  // the marker leaves behind.
  { ASSERT_TRUE(OpenRaw(/*create=*/true)->Close().ok()); }
  std::unique_ptr<RocksDbStore> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(store->Revision(), IsOkAndHolds(uint64_t{0}));
}

TEST_F(RocksDbStoreTest, RejectsDirectoryWithOtherFiles) {
  fs::create_directory(path_);
  std::ofstream(path_ + "/notes.txt") << "not a database";
  EXPECT_THAT(Open(path_),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(path_),
                             HasSubstr("not a Scopekeeper data directory"))));
  // Nothing was created there.
  EXPECT_FALSE(fs::exists(path_ + "/CURRENT"));
}

TEST_F(RocksDbStoreTest, RejectsRegularFile) {
  std::ofstream(path_) << "a file";
  EXPECT_THAT(Open(path_), StatusIs(absl::StatusCode::kFailedPrecondition,
                                    HasSubstr(path_)));
}

TEST_F(RocksDbStoreTest, RejectsRocksDbOfSomethingElse) {
  {
    std::unique_ptr<rocksdb::DB> db = OpenRaw(/*create=*/true);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), "foo", "bar").ok());
    ASSERT_TRUE(db->Close().ok());
  }
  EXPECT_THAT(Open(path_),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(path_),
                             HasSubstr("not a Scopekeeper data directory"))));
  // Left as it was.
  EXPECT_THAT(RawContents(), ElementsAre(Pair("foo", "bar")));
}

TEST_F(RocksDbStoreTest, RejectsNewerFormat) {
  { ASSERT_NE(OpenOrDie(), nullptr); }
  RawPut("meta/format", "2");
  EXPECT_THAT(Open(path_),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr(path_),
                             HasSubstr("written by a newer version"))));
}

TEST_F(RocksDbStoreTest, CorruptMetadataIsDataLoss) {
  { ASSERT_NE(OpenOrDie(), nullptr); }
  RawPut("meta/revision", "short");
  EXPECT_THAT(Open(path_), StatusIs(absl::StatusCode::kDataLoss,
                                    HasSubstr("meta/revision")));
  RawPut("meta/format", "one");
  EXPECT_THAT(Open(path_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("meta/format")));
}

TEST_F(RocksDbStoreTest, SecondOpenOfOpenStoreIsUnavailable) {
  std::unique_ptr<RocksDbStore> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(Open(path_),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr(path_)));
}

TEST_F(RocksDbStoreTest, CorruptKeyRecordIsDataLossFromEveryRead) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  // Field 1, length 5, then only 2 bytes: not a parseable message.
  RawPut("key/k1", std::string("\x0a\x05"
                               "ab",
                               4));

  std::unique_ptr<RocksDbStore> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  const auto data_loss =
      StatusIs(absl::StatusCode::kDataLoss, HasSubstr("key/k1"));
  EXPECT_THAT(store->GetKeyById("k1"), data_loss);
  EXPECT_THAT(store->GetKeyBySecretHash(Sha('n')), data_loss);
  EXPECT_THAT(store->ListKeys("", "", 10), data_loss);
  EXPECT_THAT(store->ListKeys("a", "", 10), data_loss);
  EXPECT_THAT(
      store->ForEachKey([](const KeyRecord&) { return absl::OkStatus(); }),
      data_loss);
  // A commit that must read the old record fails too, and writes nothing.
  Mutation m;
  m.revision = 3;
  m.put_keys = {Key("k1", "a", {})};
  EXPECT_THAT(store->Commit(m), data_loss);
  EXPECT_THAT(store->Revision(), IsOkAndHolds(uint64_t{2}));
}

TEST_F(RocksDbStoreTest, RecordUnderWrongKeyIsDataLoss) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  RawPut("key/k2", Key("k1", "a", {}).SerializeAsString());
  std::unique_ptr<RocksDbStore> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(store->GetKeyById("k2"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("key/k2")));
}

TEST_F(RocksDbStoreTest, CorruptPolicyAndAuditEventAreDataLoss) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  RawPut("policy", "\xff\xff\xff");
  RawPut("audit/" + BigEndian(2), "\xff\xff\xff");
  std::unique_ptr<RocksDbStore> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(store->GetPolicy(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("policy")));
  EXPECT_THAT(store->ListAuditEvents({}, 10),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("audit/2")));
  // Events before the corrupt one are still readable.
  EXPECT_THAT(store->ListAuditEvents({}, 1),
              IsOkAndHolds(ElementsAre(EqualsProto(Audit(1, "k1")))));
}

TEST_F(RocksDbStoreTest, DanglingHashIndexIsDataLossNamingHashInHex) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  std::string hash;
  for (int i = 0; i < 32; ++i) hash.push_back(static_cast<char>(i));
  RawPut("hash/" + hash, "ghost");
  std::unique_ptr<RocksDbStore> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  const absl::StatusOr<std::optional<KeyRecord>> got =
      store->GetKeyBySecretHash(hash);
  EXPECT_THAT(
      got, StatusIs(absl::StatusCode::kDataLoss,
                    AllOf(HasSubstr("hash/000102030405"), HasSubstr("ghost"))));
  EXPECT_TRUE(AllPrintable(got.status().message())) << got.status();
}

TEST_F(RocksDbStoreTest, DanglingOrganizationIndexIsDataLoss) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  RawPut(std::string("org/a\0k0", 8), "");
  std::unique_ptr<RocksDbStore> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(store->ListKeys("a", "", 10),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("k0")));
}

TEST_F(RocksDbStoreTest, CorruptTableFileIsDataLoss) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  {
    // Move everything into table files.
    std::unique_ptr<rocksdb::DB> db = OpenRaw();
    ASSERT_NE(db, nullptr);
    ASSERT_TRUE(db->Flush(rocksdb::FlushOptions()).ok());
    ASSERT_TRUE(db->Close().ok());
  }
  int corrupted = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(path_)) {
    if (entry.path().extension() != ".sst") continue;
    // Inside the first data block, which holds meta/format.
    std::fstream file(entry.path(),
                      std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(12);
    file.write("\xde\xad\xbe\xef", 4);
    ++corrupted;
  }
  ASSERT_GT(corrupted, 0);
  EXPECT_THAT(Open(path_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr(path_)));
}

// Deletes the files in `dir` whose name passes `doomed`; returns how many.
int DeleteFiles(const std::string& dir,
                const std::function<bool(const std::string&)>& doomed) {
  int deleted = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(dir)) {
    if (doomed(entry.path().filename().string())) {
      fs::remove(entry.path());
      ++deleted;
    }
  }
  return deleted;
}

// A lost file must stop the server, never open as a smaller database.
TEST_F(RocksDbStoreTest, MissingTableFileRefusesToOpen) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  {
    std::unique_ptr<rocksdb::DB> db = OpenRaw();
    ASSERT_NE(db, nullptr);
    ASSERT_TRUE(db->Flush(rocksdb::FlushOptions()).ok());
    ASSERT_TRUE(db->Close().ok());
  }
  ASSERT_GT(DeleteFiles(path_,
                        [](const std::string& name) {
                          return absl::EndsWith(name, ".sst");
                        }),
            0);
  const absl::StatusOr<std::unique_ptr<RocksDbStore>> store = Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr(path_));
}

TEST_F(RocksDbStoreTest, MissingManifestRefusesToOpen) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  ASSERT_GT(DeleteFiles(path_,
                        [](const std::string& name) {
                          return absl::StartsWith(name, "MANIFEST-");
                        }),
            0);
  const absl::StatusOr<std::unique_ptr<RocksDbStore>> store = Open(path_);
  ASSERT_FALSE(store.ok());
  EXPECT_THAT(store.status().message(), HasSubstr(path_));
}

TEST_F(RocksDbStoreTest, MissingCurrentRefusesToOpen) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  ASSERT_EQ(
      DeleteFiles(path_,
                  [](const std::string& name) { return name == "CURRENT"; }),
      1);
  EXPECT_THAT(Open(path_),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("not a Scopekeeper data directory")));
}

TEST_F(RocksDbStoreTest, CheckpointIntoAMissingParentIsFailedPrecondition) {
  // Was UNAVAILABLE with RocksDB's text: clients are told to retry those.
  ASSERT_NO_FATAL_FAILURE(Populate());
  std::unique_ptr<RocksDbStore> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  const std::string destination = root_ + "/no/such/parent/backup";
  EXPECT_THAT(store->Checkpoint(destination),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("/no/such/parent\" of")));
  EXPECT_FALSE(fs::exists(root_ + "/no"));
}

TEST_F(RocksDbStoreTest, CheckpointIsPrivateWhateverTheUmask) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  std::unique_ptr<RocksDbStore> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  const mode_t old_umask = umask(022);
  const std::string destination = root_ + "/backup";
  const absl::StatusOr<uint64_t> revision = store->Checkpoint(destination);
  umask(old_umask);
  ASSERT_TRUE(revision.ok()) << revision.status();
  EXPECT_EQ(fs::status(destination).permissions(), fs::perms::owner_all);
  int files = 0;
  for (const fs::directory_entry& entry : fs::directory_iterator(destination)) {
    EXPECT_EQ(entry.status().permissions(),
              fs::perms::owner_read | fs::perms::owner_write)
        << entry.path();
    ++files;
  }
  EXPECT_GT(files, 0);
}

// Lost acknowledged writes (issue #14): after a crash, RocksDB recovered
// silently to an older state when the WAL was damaged or deleted, so a key
// revoked by an acknowledged RevokeKey was active again and the next write
// reused the lost revision. Each damage must stop Open() instead.
enum class WalDamage { kFlipLastByte, kCutTail, kDelete };

class LostWritesTest : public RocksDbStoreTest,
                       public ::testing::WithParamInterface<WalDamage> {
 protected:
  // Revision 2 in table files (a reopen flushes the recovered WAL), then
  // revision 3 acknowledged, in the WAL only; the store is closed without a
  // flush, as a crash would leave it.
  void AcknowledgeRevisionThreeInTheWalOnly() {
    ASSERT_NO_FATAL_FAILURE(Populate());
    std::unique_ptr<RocksDbStore> store = OpenOrDie();
    ASSERT_NE(store, nullptr);
    Mutation revoke;
    revoke.revision = 3;
    revoke.put_keys = {Key("k1", "a", {})};
    revoke.audit_event = Audit(3, "k1");
    ASSERT_OK(store->Write(revoke));
    ASSERT_OK(store->Sync());
  }

  std::vector<fs::path> Wals() {
    std::vector<fs::path> wals;
    for (const fs::directory_entry& entry : fs::directory_iterator(path_)) {
      if (entry.path().extension() == ".log") wals.push_back(entry.path());
    }
    std::sort(wals.begin(), wals.end());
    return wals;
  }

  void Damage(WalDamage damage) {
    const std::vector<fs::path> wals = Wals();
    ASSERT_FALSE(wals.empty());
    const fs::path& newest = wals.back();
    const uintmax_t size = fs::file_size(newest);
    ASSERT_GT(size, 16u) << newest;
    switch (damage) {
      case WalDamage::kFlipLastByte: {
        // The last byte of the file is in the last record (revision 3).
        std::fstream file(newest,
                          std::ios::in | std::ios::out | std::ios::binary);
        file.seekg(size - 1);
        const char c = static_cast<char>(file.get() ^ 0x40);
        file.seekp(size - 1);
        file.put(c);
        break;
      }
      case WalDamage::kCutTail:
        fs::resize_file(newest, size - 8);
        break;
      case WalDamage::kDelete:
        for (const fs::path& wal : wals) fs::remove(wal);
        break;
    }
  }

  std::string Acknowledged(const std::string& dir) {
    std::ifstream in(dir + "/ACKNOWLEDGED_REVISION");
    std::string content((std::istreambuf_iterator<char>(in)),
                        std::istreambuf_iterator<char>());
    return content;
  }
};

TEST_P(LostWritesTest, DamagedWalRefusesToOpenNamingBothRevisions) {
  ASSERT_NO_FATAL_FAILURE(AcknowledgeRevisionThreeInTheWalOnly());
  ASSERT_NO_FATAL_FAILURE(Damage(GetParam()));
  const auto store = Open(path_);
  ASSERT_FALSE(store.ok()) << "opened at revision " << *(*store)->Revision();
  EXPECT_EQ(store.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(store.status().message(),
              HasSubstr("acknowledged writes are lost: the store recovered "
                        "to revision 2, but revision 3 was acknowledged"));
  EXPECT_THAT(store.status().message(), HasSubstr(path_ + "/*.log"));
  EXPECT_THAT(store.status().message(), HasSubstr("from a backup"));
  EXPECT_THAT(store.status().message(), HasSubstr("--accept_data_loss"));
  // Refusing changed nothing: it refuses again.
  EXPECT_EQ(Open(path_).status().code(), absl::StatusCode::kDataLoss);
}

TEST_P(LostWritesTest, AcceptingTheLossNeverReusesARevision) {
  ASSERT_NO_FATAL_FAILURE(AcknowledgeRevisionThreeInTheWalOnly());
  ASSERT_NO_FATAL_FAILURE(Damage(GetParam()));
  RocksDbStore::Options options;
  options.path = path_;
  options.accept_data_loss = true;
  ::testing::internal::CaptureStderr();
  auto opened = RocksDbStore::Open(options);
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_THAT(log, HasSubstr("ACCEPTED DATA LOSS"));
  std::unique_ptr<RocksDbStore> store = *std::move(opened);
  // The revoked key is back (that is the loss accepted), but revision 3 is
  // never given out again: the store continues after it.
  EXPECT_THAT(store->Revision(), IsOkAndHolds(uint64_t{4}));
  const auto events = store->ListAuditEvents({.after_revision = 2}, 10);
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].revision(), 4u);
  EXPECT_EQ((*events)[0].action(), "AcceptDataLoss");
  EXPECT_EQ((*events)[0].detail(),
            "{\"recovered_revision\":2,\"acknowledged_revision\":3}");
  Mutation next;
  next.revision = 5;
  next.put_keys = {Key("k2", "a", {Sha('x')})};
  next.audit_event = Audit(5, "k2");
  ASSERT_OK(store->Commit(next));
  store.reset();
  // Accepted once: later starts need no flag.
  EXPECT_THAT(Open(path_), IsOkAndHolds(::testing::NotNull()));
}

INSTANTIATE_TEST_SUITE_P(Damages, LostWritesTest,
                         ::testing::Values(WalDamage::kFlipLastByte,
                                           WalDamage::kCutTail,
                                           WalDamage::kDelete),
                         [](const ::testing::TestParamInfo<WalDamage>& info) {
                           switch (info.param) {
                             case WalDamage::kFlipLastByte:
                               return "FlipLastByte";
                             case WalDamage::kCutTail:
                               return "CutTail";
                             case WalDamage::kDelete:
                               return "Delete";
                           }
                           return "";
                         });

TEST_F(LostWritesTest, UndamagedWalOpensWithEverything) {
  ASSERT_NO_FATAL_FAILURE(AcknowledgeRevisionThreeInTheWalOnly());
  EXPECT_THAT(Open(path_), IsOkAndHolds(::testing::NotNull()));
  std::unique_ptr<RocksDbStore> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(store->Revision(), IsOkAndHolds(uint64_t{3}));
}

TEST_F(LostWritesTest, RecordFollowsSyncsNotUnsyncedWrites) {
  std::unique_ptr<RocksDbStore> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(Acknowledged(path_), "00000000000000000000\n");
  Mutation first;
  first.revision = 1;
  first.put_keys = {Key("k1", "a", {Sha('a')})};
  first.audit_event = Audit(1, "k1");
  ASSERT_OK(store->Commit(first));
  EXPECT_EQ(Acknowledged(path_), "00000000000000000001\n");
  Mutation second;
  second.revision = 2;
  second.put_keys = {Key("k2", "a", {Sha('b')})};
  second.audit_event = Audit(2, "k2");
  ASSERT_OK(store->Write(second));
  EXPECT_EQ(Acknowledged(path_), "00000000000000000001\n");
  ASSERT_OK(store->Sync());
  EXPECT_EQ(Acknowledged(path_), "00000000000000000002\n");
}

// After a power loss the record may be older than the synced WAL; that is
// never an alarm.
TEST_F(LostWritesTest, OlderRecordOpens) {
  ASSERT_NO_FATAL_FAILURE(AcknowledgeRevisionThreeInTheWalOnly());
  std::ofstream(path_ + "/ACKNOWLEDGED_REVISION") << "00000000000000000001\n";
  std::unique_ptr<RocksDbStore> store = OpenOrDie();
  ASSERT_NE(store, nullptr);
  EXPECT_THAT(store->Revision(), IsOkAndHolds(uint64_t{3}));
}

TEST_F(LostWritesTest, CorruptRecordIsDataLoss) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  std::ofstream(path_ + "/ACKNOWLEDGED_REVISION") << "garbage\n";
  EXPECT_THAT(Open(path_), StatusIs(absl::StatusCode::kDataLoss,
                                    HasSubstr("ACKNOWLEDGED_REVISION")));
  RocksDbStore::Options options;
  options.path = path_;
  options.accept_data_loss = true;
  ::testing::internal::CaptureStderr();
  EXPECT_THAT(RocksDbStore::Open(options), IsOkAndHolds(::testing::NotNull()));
  EXPECT_THAT(::testing::internal::GetCapturedStderr(),
              HasSubstr("ACCEPTED DATA LOSS"));
  EXPECT_EQ(Acknowledged(path_), "00000000000000000002\n");
}

// A restored backup opens at its own revision, below the live store's.
TEST_F(LostWritesTest, CheckpointCarriesItsOwnRecord) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  const std::string backup = root_ + "/backup";
  {
    std::unique_ptr<RocksDbStore> store = OpenOrDie();
    ASSERT_NE(store, nullptr);
    ASSERT_THAT(store->Checkpoint(backup), IsOkAndHolds(uint64_t{2}));
    Mutation third;
    third.revision = 3;
    third.put_keys = {Key("k3", "a", {Sha('c')})};
    third.audit_event = Audit(3, "k3");
    ASSERT_OK(store->Commit(third));
  }
  EXPECT_EQ(Acknowledged(backup), "00000000000000000002\n");
  fs::rename(path_, root_ + "/db.old");
  fs::rename(backup, path_);
  std::unique_ptr<RocksDbStore> restored = OpenOrDie();
  ASSERT_NE(restored, nullptr);
  EXPECT_THAT(restored->Revision(), IsOkAndHolds(uint64_t{2}));
}

// A store written before the record existed gets one.
TEST_F(LostWritesTest, StoreWithoutRecordGetsOne) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  fs::remove(path_ + "/ACKNOWLEDGED_REVISION");
  ASSERT_NE(OpenOrDie(), nullptr);
  EXPECT_EQ(Acknowledged(path_), "00000000000000000002\n");
}

// Out of space (the adversarial run's ENOSPC): RocksDB's first failed write
// used to abort the process (its info log on the full disk, then an
// assertion in its WAL writer). A full disk must fail writes with a clear
// UNAVAILABLE, keep reads working, and let writes resume once space is
// back, with nothing acknowledged lost.
class FullDiskTest : public RocksDbStoreTest {
 protected:
  absl::StatusOr<std::unique_ptr<RocksDbStore>> OpenOnDisk() {
    RocksDbStore::Options options;
    options.path = path_;
    options.env = disk_.env();
    return RocksDbStore::Open(options);
  }
  static Mutation At(uint64_t revision) {
    Mutation m;
    m.revision = revision;
    m.put_keys = {Key(absl::StrCat("k", revision), "a",
                      {Sha(static_cast<char>('a' + revision))})};
    m.audit_event = Audit(revision, absl::StrCat("k", revision));
    return m;
  }

  FullDiskEnv disk_;
};

TEST_F(FullDiskTest, WritesFailUnavailableReadsWorkAndWritesResume) {
  auto opened = OpenOnDisk();
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::unique_ptr<RocksDbStore> store = *std::move(opened);
  ASSERT_OK(store->Commit(At(1)));

  disk_.SetFull(true);
  EXPECT_THAT(store->Write(At(2)),
              StatusIs(absl::StatusCode::kUnavailable,
                       HasSubstr("no space left on device")));
  // Nothing touches RocksDB's failed WAL writer again (that aborted).
  EXPECT_THAT(store->Sync(), StatusIs(absl::StatusCode::kUnavailable,
                                      HasSubstr("no space left on device")));
  EXPECT_THAT(store->Write(At(2)),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("no space")));
  EXPECT_EQ(
      store->RecordKeyUses({{"k1", google::protobuf::Timestamp()}}).code(),
      absl::StatusCode::kUnavailable);
  EXPECT_THAT(store->Revision(), IsOkAndHolds(uint64_t{1}));
  EXPECT_THAT(store->GetKeyById("k1"), IsOkAndHolds(Optional(HasKeyId("k1"))));
  // Still full: recovery fails, and leaves the store refusing writes.
  EXPECT_EQ(store->Recover().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(store->Write(At(2)).code(), absl::StatusCode::kUnavailable);

  disk_.SetFull(false);
  ASSERT_OK(store->Recover());
  ASSERT_OK(store->Commit(At(2)));
  store.reset();
  auto reopened = OpenOnDisk();
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_THAT((*reopened)->Revision(), IsOkAndHolds(uint64_t{2}));
  EXPECT_THAT((*reopened)->GetKeyById("k2"),
              IsOkAndHolds(Optional(HasKeyId("k2"))));
}

TEST_F(FullDiskTest, WritesOfAFailedSyncAreDurableAfterRecover) {
  auto opened = OpenOnDisk();
  ASSERT_TRUE(opened.ok()) << opened.status();
  std::unique_ptr<RocksDbStore> store = *std::move(opened);
  ASSERT_OK(store->Commit(At(1)));
  ASSERT_OK(store->Write(At(2)));  // visible, not yet durable
  disk_.SetFull(true);
  EXPECT_EQ(store->Sync().code(), absl::StatusCode::kUnavailable);
  disk_.SetFull(false);
  ASSERT_OK(store->Recover());
  store.reset();
  auto reopened = OpenOnDisk();
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_THAT((*reopened)->Revision(), IsOkAndHolds(uint64_t{2}));
}

TEST_F(FullDiskTest, OpeningOnANearlyFullDiskSaysWritesWillFail) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  disk_.SetReportedFree(4096);
  ::testing::internal::CaptureStderr();
  auto opened = OpenOnDisk();
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_THAT(log, HasSubstr("has only 4096 bytes free"));
  EXPECT_THAT(log, HasSubstr("writes will fail until space is freed"));
}

TEST_F(FullDiskTest, OpeningOnAFullDiskRefusesNamingTheCause) {
  ASSERT_NO_FATAL_FAILURE(Populate());
  disk_.SetFull(true);
  EXPECT_THAT(OpenOnDisk(), StatusIs(absl::StatusCode::kUnavailable,
                                     HasSubstr("no space left on device")));
}

}  // namespace
}  // namespace scopekeeper::storage
