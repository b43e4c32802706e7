#include "storage/rocksdb_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <system_error>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "base/log.h"
#include "base/redact.h"
#include "base/status_macros.h"
#include "google/protobuf/util/time_util.h"
#include "rocksdb/cache.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/iterator.h"
#include "rocksdb/listener.h"
#include "rocksdb/options.h"
#include "rocksdb/slice.h"
#include "rocksdb/table.h"
#include "rocksdb/utilities/checkpoint.h"
#include "rocksdb/write_batch.h"
#include "storage/mutation_check.h"

namespace scopekeeper::storage {
namespace {

constexpr uint64_t kFormatVersion = 1;

// Free space Recover() wants beyond the memtable it flushes: a new WAL, the
// table file's metadata, a MANIFEST record.
constexpr uint64_t kRecoveryHeadroomBytes = 1 << 20;

constexpr absl::string_view kFormatKey = "meta/format";
constexpr absl::string_view kRevisionKey = "meta/revision";
constexpr absl::string_view kPolicyKey = "policy";
constexpr absl::string_view kKeyPrefix = "key/";
constexpr absl::string_view kHashPrefix = "hash/";
constexpr absl::string_view kOrgPrefix = "org/";
constexpr absl::string_view kAuditPrefix = "audit/";
constexpr absl::string_view kAppPrefix = "app/";
constexpr absl::string_view kInstallationPrefix = "inst/";
constexpr absl::string_view kLastUsePrefix = "used/";

// The acknowledged revision (see the class comment): 20 decimal digits and a
// newline, fixed width, so an update overwrites the whole record in place.
constexpr absl::string_view kAcknowledgedFile = "ACKNOWLEDGED_REVISION";
constexpr size_t kAcknowledgedDigits = 20;

rocksdb::Slice ToSlice(absl::string_view s) {
  return rocksdb::Slice(s.data(), s.size());
}

absl::string_view ToView(const rocksdb::Slice& s) {
  return absl::string_view(s.data(), s.size());
}

// FromRocksDb() is the one place a rocksdb::Status becomes an absl::Status.
absl::Status FromRocksDb(const rocksdb::Status& s,
                         absl::string_view operation) {
  if (s.ok()) return absl::OkStatus();
  if (s.IsNoSpace()) {
    return absl::UnavailableError(
        absl::StrCat(operation,
                     ": no space left on device (free space on the data "
                     "directory's file system) [",
                     s.ToString(), "]"));
  }
  const std::string message = absl::StrCat(operation, ": ", s.ToString());
  switch (s.code()) {
    case rocksdb::Status::kIOError:
    case rocksdb::Status::kBusy:
    case rocksdb::Status::kTimedOut:
    case rocksdb::Status::kTryAgain:
    case rocksdb::Status::kIncomplete:
    case rocksdb::Status::kAborted:
    case rocksdb::Status::kShutdownInProgress:
      return absl::UnavailableError(message);
    case rocksdb::Status::kCorruption:
      return absl::DataLossError(message);
    default:
      return absl::InternalError(message);
  }
}

std::string EncodeUint64(uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) out[i] = static_cast<char>(v & 0xff);
  return out;
}

uint64_t DecodeUint64(absl::string_view in) {  // REQUIRES: in.size() == 8
  uint64_t v = 0;
  for (char c : in) v = (v << 8) | static_cast<unsigned char>(c);
  return v;
}

std::string KeyKey(absl::string_view key_id) {
  return absl::StrCat(kKeyPrefix, key_id);
}
std::string HashKey(absl::string_view sha256) {
  return absl::StrCat(kHashPrefix, sha256);
}
// The organization's index entries: org/<organization_id>\0.
std::string OrgPrefix(absl::string_view organization_id) {
  return absl::StrCat(kOrgPrefix, organization_id, absl::string_view("\0", 1));
}
std::string OrgKey(absl::string_view organization_id,
                   absl::string_view key_id) {
  return absl::StrCat(OrgPrefix(organization_id), key_id);
}
std::string AuditKey(uint64_t revision) {
  return absl::StrCat(kAuditPrefix, EncodeUint64(revision));
}

// Describe() names a stored key for messages: printable, hashes in hex.
std::string Describe(absl::string_view key) {
  absl::string_view rest = key;
  if (absl::ConsumePrefix(&rest, kHashPrefix)) {
    return absl::StrCat(kHashPrefix, absl::BytesToHexString(rest));
  }
  if (absl::ConsumePrefix(&rest, kAuditPrefix) && rest.size() == 8) {
    return absl::StrCat(kAuditPrefix, DecodeUint64(rest));
  }
  return Quote(key);
}

// The smallest key greater than every key starting with `prefix` ("" if
// none: the prefix is all 0xff).
std::string PrefixEnd(absl::string_view prefix) {
  std::string end(prefix);
  while (!end.empty() && static_cast<unsigned char>(end.back()) == 0xff) {
    end.pop_back();
  }
  if (!end.empty()) end.back() = static_cast<char>(end.back() + 1);
  return end;
}

template <typename Message>
absl::Status ParseRecord(const rocksdb::Slice& value, absl::string_view key,
                         Message* out) {
  if (!out->ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(
        absl::StrCat("corrupt record ", Describe(key), ": not a valid ",
                     out->GetTypeName(), " (", value.size(), " bytes)"));
  }
  return absl::OkStatus();
}

// ParseKeyRecord() parses the value of key/<key_id>, which must name itself.
absl::StatusOr<KeyRecord> ParseKeyRecord(absl::string_view key,
                                         const rocksdb::Slice& value) {
  KeyRecord record;
  SK_RETURN_IF_ERROR(ParseRecord(value, key, &record));
  if (absl::StrCat(kKeyPrefix, record.key().key_id()) != key) {
    return absl::DataLossError(absl::StrCat("corrupt record ", Describe(key),
                                            ": holds key_id ",
                                            Quote(record.key().key_id())));
  }
  return record;
}

template <typename Message>
absl::StatusOr<std::string> SerializeRecord(const Message& message,
                                            absl::string_view key) {
  std::string out;
  if (!message.SerializeToString(&out)) {
    return absl::InternalError(absl::StrCat(
        "cannot serialize ", message.GetTypeName(), " for ", Describe(key)));
  }
  return out;
}

// ReadValue() reads `key` into `value`; false if it is absent.
absl::StatusOr<bool> ReadValue(rocksdb::DB* db,
                               const rocksdb::ReadOptions& read,
                               absl::string_view key,
                               rocksdb::PinnableSlice* value) {
  const rocksdb::Status s =
      db->Get(read, db->DefaultColumnFamily(), ToSlice(key), value);
  if (s.IsNotFound()) return false;
  SK_RETURN_IF_ERROR(FromRocksDb(s, absl::StrCat("read ", Describe(key))));
  return true;
}

// ScanPrefix() calls `fn` on each entry whose key starts with `prefix`, from
// the first at or after `start`, in key order, until `fn` returns false or
// an error.
absl::Status ScanPrefix(
    rocksdb::DB* db, rocksdb::ReadOptions read, absl::string_view prefix,
    absl::string_view start,
    const std::function<absl::StatusOr<bool>(
        const rocksdb::Slice& key, const rocksdb::Slice& value)>& fn) {
  const std::string end = PrefixEnd(prefix);
  const rocksdb::Slice upper_bound(end);
  if (!end.empty()) read.iterate_upper_bound = &upper_bound;
  std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(read));
  for (it->Seek(ToSlice(start)); it->Valid(); it->Next()) {
    SK_ASSIGN_OR_RETURN(const bool more, fn(it->key(), it->value()));
    if (!more) return absl::OkStatus();
  }
  return FromRocksDb(it->status(), absl::StrCat("scan ", Describe(prefix)));
}

// A snapshot held for the scope of one read.
class ScopedSnapshot {
 public:
  explicit ScopedSnapshot(rocksdb::DB* db)
      : db_(db), snapshot_(db->GetSnapshot()) {}
  ~ScopedSnapshot() { db_->ReleaseSnapshot(snapshot_); }
  ScopedSnapshot(const ScopedSnapshot&) = delete;
  ScopedSnapshot& operator=(const ScopedSnapshot&) = delete;

  rocksdb::ReadOptions ReadOptions() const {
    rocksdb::ReadOptions read;
    read.snapshot = snapshot_;
    return read;
  }

 private:
  rocksdb::DB* const db_;
  const rocksdb::Snapshot* const snapshot_;
};

// RocksDB's info log, into the server log: warnings and worse only, and
// never a file in the data directory (on a full disk, RocksDB's own LOG
// file is the first write to fail, and it aborted the process).
class ServerLogger final : public rocksdb::Logger {
 public:
  ServerLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override {
    Logv(rocksdb::InfoLogLevel::INFO_LEVEL, format, ap);
  }
  void Logv(const rocksdb::InfoLogLevel level, const char* format,
            va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char line[1024];
    vsnprintf(line, sizeof(line), format, ap);
    Log(level >= rocksdb::InfoLogLevel::ERROR_LEVEL ? LogLevel::kError
                                                    : LogLevel::kWarning,
        absl::StrCat("rocksdb: ", line));
  }
};

// Turns off RocksDB's automatic recovery from "no space" errors: it waits
// for a reserve of free space far larger than small disks have, and while
// it waits DB::Resume() answers Busy. The store recovers on request
// (Store::Recover()).
class ManualRecovery final : public rocksdb::EventListener {
 public:
  void OnErrorRecoveryBegin(rocksdb::BackgroundErrorReason /*reason*/,
                            rocksdb::Status /*bg_error*/,
                            bool* auto_recovery) override {
    *auto_recovery = false;
  }
};

// Directory checks before RocksDB touches `path`: it must be missing, empty,
// or hold a RocksDB database. Returns whether it holds one.
absl::StatusOr<bool> CheckDataDirectory(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (status.type() == fs::file_type::not_found) return false;
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("open ", path, ": cannot stat: ", ec.message()));
  }
  if (!fs::is_directory(status)) {
    return absl::FailedPreconditionError(
        absl::StrCat("open ", path, ": not a directory"));
  }
  const bool has_current = fs::exists(fs::path(path) / "CURRENT", ec);
  if (!ec && has_current) return true;
  const bool empty = !ec && fs::is_empty(path, ec);
  if (ec) {
    return absl::UnavailableError(
        absl::StrCat("open ", path, ": cannot list: ", ec.message()));
  }
  if (!empty) {
    return absl::FailedPreconditionError(absl::StrCat(
        "open ", path,
        ": is not a Scopekeeper data directory (not empty, and no RocksDB "
        "CURRENT file)"));
  }
  return false;
}

// Checks the format marker of an opened database (writing it, with revision
// 0, if the database is empty) and returns the stored revision.
absl::StatusOr<uint64_t> InitializeOrCheck(rocksdb::DB* db, bool sync_writes) {
  const rocksdb::ReadOptions read;
  rocksdb::PinnableSlice format;
  SK_ASSIGN_OR_RETURN(const bool has_format,
                      ReadValue(db, read, kFormatKey, &format));
  if (!has_format) {
    // Ours only if empty: new, or created by an Open() that stopped before
    // writing the marker.
    std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(read));
    it->SeekToFirst();
    if (it->Valid()) {
      return absl::FailedPreconditionError(
          "not a Scopekeeper data directory (a RocksDB database without a "
          "meta/format marker)");
    }
    SK_RETURN_IF_ERROR(FromRocksDb(it->status(), "scan"));
    rocksdb::WriteBatch batch;
    batch.Put(ToSlice(kFormatKey), ToSlice(absl::StrCat(kFormatVersion)));
    batch.Put(ToSlice(kRevisionKey), ToSlice(EncodeUint64(0)));
    rocksdb::WriteOptions write;
    write.sync = sync_writes;
    SK_RETURN_IF_ERROR(FromRocksDb(db->Write(write, &batch), "initialize"));
    return 0;
  }
  uint64_t version = 0;
  if (!absl::SimpleAtoi(ToView(format), &version) || version == 0) {
    return absl::DataLossError(
        absl::StrCat("corrupt meta/format ", Quote(ToView(format))));
  }
  if (version > kFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        "written by a newer version of Scopekeeper (format ", version,
        "; this build reads format ", kFormatVersion, ")"));
  }
  rocksdb::PinnableSlice revision;
  SK_ASSIGN_OR_RETURN(const bool has_revision,
                      ReadValue(db, read, kRevisionKey, &revision));
  if (!has_revision || revision.size() != 8) {
    return absl::DataLossError(absl::StrCat(
        "meta/revision is ", has_revision ? "not 8 bytes" : "missing"));
  }
  return DecodeUint64(ToView(revision));
}

std::string AcknowledgedPath(const std::string& dir) {
  return absl::StrCat(dir, "/", kAcknowledgedFile);
}

std::string FormatAcknowledged(uint64_t revision) {
  const std::string digits = absl::StrCat(revision);
  return absl::StrCat(std::string(kAcknowledgedDigits - digits.size(), '0'),
                      digits, "\n");
}

// ReadAcknowledged() reads ACKNOWLEDGED_REVISION in `dir`: nullopt if there
// is none (a new store, or one written before the record existed).
absl::StatusOr<std::optional<uint64_t>> ReadAcknowledged(
    const std::string& dir) {
  const std::string path = AcknowledgedPath(dir);
  const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    return absl::UnavailableError(
        absl::StrCat("read ", path, ": ", std::strerror(errno)));
  }
  char buffer[kAcknowledgedDigits + 2];
  const ssize_t n = read(fd, buffer, sizeof(buffer));
  const int error = errno;
  close(fd);
  if (n < 0) {
    return absl::UnavailableError(
        absl::StrCat("read ", path, ": ", std::strerror(error)));
  }
  const absl::string_view content(buffer, static_cast<size_t>(n));
  uint64_t revision = 0;
  if (content.size() != kAcknowledgedDigits + 1 || content.back() != '\n' ||
      !std::all_of(content.begin(), content.end() - 1,
                   [](char c) { return c >= '0' && c <= '9'; }) ||
      !absl::SimpleAtoi(content.substr(0, kAcknowledgedDigits), &revision)) {
    return absl::DataLossError(absl::StrCat(
        "corrupt ", path, " (expected ", kAcknowledgedDigits,
        " digits and a newline): the revision acknowledged before the last "
        "stop is unknown, so a loss of acknowledged writes cannot be ruled "
        "out. Restore the database from a backup (docs/OPERATIONS.md, "
        "\"Restore\"), or start once with --accept_data_loss to serve it as "
        "it is"));
  }
  return revision;
}

// WriteAcknowledgedFile() replaces ACKNOWLEDGED_REVISION in `dir` durably
// (written and synced under another name, then renamed, mode 0600).
absl::Status WriteAcknowledgedFile(const std::string& dir, uint64_t revision) {
  const std::string path = AcknowledgedPath(dir);
  const std::string temporary = absl::StrCat(path, ".tmp");
  const auto failed = [&](absl::string_view what) {
    const int error = errno;
    unlink(temporary.c_str());
    return absl::UnavailableError(
        absl::StrCat(what, " ", path, ": ", std::strerror(error)));
  };
  const int fd =
      open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return failed("create");
  const std::string content = FormatAcknowledged(revision);
  const bool written = write(fd, content.data(), content.size()) ==
                           static_cast<ssize_t>(content.size()) &&
                       fsync(fd) == 0;
  if (close(fd) != 0 || !written) return failed("write");
  if (rename(temporary.c_str(), path.c_str()) != 0) return failed("rename");
  const int dir_fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd < 0) return failed("sync the directory of");
  const bool synced = fsync(dir_fd) == 0;
  close(dir_fd);
  if (!synced) return failed("sync the directory of");
  return absl::OkStatus();
}

struct Revisions {
  uint64_t current = 0;       // the store's revision
  uint64_t acknowledged = 0;  // ACKNOWLEDGED_REVISION
};

// AcceptDataLoss() moves the revision of a store that recovered to
// `recovered` past the lost `acknowledged` one, so no revision is ever given
// out twice, and records why in an audit event at the new revision.
absl::StatusOr<uint64_t> AcceptDataLoss(rocksdb::DB* db, uint64_t recovered,
                                        uint64_t acknowledged) {
  const uint64_t revision = acknowledged + 1;
  v1::AuditEvent event;
  event.set_revision(revision);
  *event.mutable_time() = google::protobuf::util::TimeUtil::GetCurrentTime();
  event.set_actor("accept_data_loss");
  event.set_action("AcceptDataLoss");
  event.set_detail(absl::StrCat("{\"recovered_revision\":", recovered,
                                ",\"acknowledged_revision\":", acknowledged,
                                "}"));
  const std::string key = AuditKey(revision);
  SK_ASSIGN_OR_RETURN(const std::string value, SerializeRecord(event, key));
  rocksdb::WriteBatch batch;
  batch.Put(ToSlice(key), ToSlice(value));
  batch.Put(ToSlice(kRevisionKey), ToSlice(EncodeUint64(revision)));
  rocksdb::WriteOptions write;
  write.sync = true;
  SK_RETURN_IF_ERROR(FromRocksDb(db->Write(write, &batch), "accept data loss"));
  return revision;
}

// CheckAcknowledged() compares the revision the store recovered to with
// the acknowledged one (see the class comment).
absl::StatusOr<Revisions> CheckAcknowledged(
    rocksdb::DB* db, const RocksDbStore::Options& options, uint64_t revision) {
  absl::StatusOr<std::optional<uint64_t>> read = ReadAcknowledged(options.path);
  if (absl::IsDataLoss(read.status()) && options.accept_data_loss) {
    LogError(absl::StrCat(
        "ACCEPTED DATA LOSS (--accept_data_loss): ", read.status().message(),
        "; recording revision ", revision, " as acknowledged"));
    read = std::nullopt;
  }
  SK_ASSIGN_OR_RETURN(const std::optional<uint64_t> acknowledged,
                      std::move(read));
  if (!acknowledged.has_value()) {
    SK_RETURN_IF_ERROR(WriteAcknowledgedFile(options.path, revision));
    return Revisions{revision, revision};
  }
  // Above it: writes that were durable but not yet recorded (a crash
  // between the sync and the record, or a power loss that kept an older
  // record). Recorded again at the next sync.
  if (*acknowledged <= revision) return Revisions{revision, *acknowledged};
  const std::string lost =
      *acknowledged == revision + 1
          ? absl::StrCat("revision ", *acknowledged)
          : absl::StrCat("revisions ", revision + 1, " to ", *acknowledged);
  if (!options.accept_data_loss) {
    return absl::DataLossError(absl::StrCat(
        "acknowledged writes are lost: the store recovered to revision ",
        revision, ", but revision ", *acknowledged, " was acknowledged (",
        AcknowledgedPath(options.path), "). The write-ahead log (",
        options.path,
        "/*.log) is damaged or missing, and serving this state would undo ",
        lost,
        " (revoked keys valid again, revisions reused). Restore the database "
        "from a backup and re-apply the changes made since, keeping this "
        "directory for analysis (docs/OPERATIONS.md, \"Restore\"); or, to "
        "serve this state anyway, start once with --accept_data_loss"));
  }
  SK_ASSIGN_OR_RETURN(const uint64_t accepted,
                      AcceptDataLoss(db, revision, *acknowledged));
  SK_RETURN_IF_ERROR(WriteAcknowledgedFile(options.path, accepted));
  LogError(absl::StrCat(
      "ACCEPTED DATA LOSS (--accept_data_loss): ", options.path,
      " recovered to revision ", revision, ", but revision ", *acknowledged,
      " was acknowledged; ", lost,
      *acknowledged == revision + 1 ? " is" : " are",
      " lost (the writes, revocations included, are undone). Serving "
      "from revision ",
      accepted, " (audit event AcceptDataLoss); no revision is reused"));
  return Revisions{accepted, accepted};
}

}  // namespace

absl::StatusOr<std::unique_ptr<RocksDbStore>> RocksDbStore::Open(
    const Options& options) {
  if (options.path.empty()) {
    return absl::InvalidArgumentError("path: must not be empty");
  }
  SK_ASSIGN_OR_RETURN(const bool exists, CheckDataDirectory(options.path));
  // Made here, private, rather than by RocksDB (which logs an error about
  // the missing directory first).
  if (mkdir(options.path.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::FailedPreconditionError(
        absl::StrCat("open ", Quote(options.path, kMaxQuotedPath),
                     ": cannot create it: ", std::strerror(errno)));
  }

  rocksdb::BlockBasedTableOptions table;
  table.block_cache = rocksdb::NewLRUCache(options.block_cache_bytes);
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.whole_key_filtering = true;
  table.data_block_index_type =
      rocksdb::BlockBasedTableOptions::kDataBlockBinaryAndHash;
  rocksdb::Options db_options;
  db_options.create_if_missing = !exists;
  db_options.paranoid_checks = true;
  // Point-in-time recovery (RocksDB's default, stated here on purpose): a
  // crash leaves a torn, unacknowledged tail, which must not stop a start.
  // Measured on RocksDB 7.8 against a flipped byte in the last record, a cut
  // tail and a deleted WAL: kTolerateCorruptedTailRecords catches only the
  // flip, kAbsoluteConsistency the flip and the cut (and would also refuse
  // a torn tail after a real crash), none catches a deleted WAL, and
  // track_and_verify_wals_in_manifest catches none (it tracks closed WALs,
  // and unflushed writes are in the live one). ACKNOWLEDGED_REVISION catches
  // all three, without false alarms.
  db_options.wal_recovery_mode = rocksdb::WALRecoveryMode::kPointInTimeRecovery;
  db_options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  db_options.memtable_whole_key_filtering = true;
  db_options.memtable_prefix_bloom_size_ratio = 0.02;
  db_options.info_log = std::make_shared<ServerLogger>();
  db_options.listeners.push_back(std::make_shared<ManualRecovery>());
  if (options.env != nullptr) db_options.env = options.env.get();

  rocksdb::DB* raw = nullptr;
  SK_RETURN_IF_ERROR(
      FromRocksDb(rocksdb::DB::Open(db_options, options.path, &raw),
                  absl::StrCat("open ", options.path)));
  std::unique_ptr<rocksdb::DB> db(raw);
  absl::StatusOr<Revisions> revisions = [&]() -> absl::StatusOr<Revisions> {
    SK_ASSIGN_OR_RETURN(const uint64_t revision,
                        InitializeOrCheck(db.get(), options.sync_writes));
    return CheckAcknowledged(db.get(), options, revision);
  }();
  int acknowledged_fd = -1;
  if (revisions.ok()) {
    acknowledged_fd =
        open(AcknowledgedPath(options.path).c_str(), O_WRONLY | O_CLOEXEC);
    if (acknowledged_fd < 0) {
      revisions = absl::UnavailableError(
          absl::StrCat("open ", AcknowledgedPath(options.path),
                       " for writing: ", std::strerror(errno)));
    }
  }
  if (!revisions.ok()) {
    db->Close().PermitUncheckedError();
    return absl::Status(revisions.status().code(),
                        absl::StrCat("open ", options.path, ": ",
                                     revisions.status().message()));
  }
  uint64_t free = 0;
  if (db->GetEnv()->GetFreeSpace(options.path, &free).ok() &&
      free < kRecoveryHeadroomBytes) {
    LogWarning(absl::StrCat(
        "the store's file system has only ", free, " bytes free (",
        options.path,
        "): decisions are served, writes will fail until space is freed"));
  }
  return std::unique_ptr<RocksDbStore>(
      new RocksDbStore(std::move(db), options, revisions->current,
                       acknowledged_fd, revisions->acknowledged));
}

RocksDbStore::RocksDbStore(std::unique_ptr<rocksdb::DB> db,
                           const Options& options, uint64_t revision,
                           int acknowledged_fd, uint64_t acknowledged)
    : db_(std::move(db)),
      options_(options),
      revision_(revision),
      acknowledged_fd_(acknowledged_fd),
      acknowledged_(acknowledged) {}

RocksDbStore::~RocksDbStore() {
  // Nothing to report to: the caller synced every write it acknowledged.
  db_->Close().PermitUncheckedError();
  if (fsync(acknowledged_fd_) != 0) {
    LogWarning(absl::StrCat("cannot sync ", AcknowledgedPath(options_.path),
                            ": ", std::strerror(errno)));
  }
  close(acknowledged_fd_);
}

void RocksDbStore::Acknowledged(uint64_t revision) {
  if (!options_.sync_writes || revision <= acknowledged_) return;
  // No fsync: the write path is fsync-bound, and the page cache keeps the
  // record across a process crash. After a power loss it is older, never
  // newer, than the synced WAL.
  const std::string content = FormatAcknowledged(revision);
  if (pwrite(acknowledged_fd_, content.data(), content.size(), 0) ==
      static_cast<ssize_t>(content.size())) {
    acknowledged_ = revision;
    acknowledged_failed_ = false;
    return;
  }
  if (!acknowledged_failed_) {
    acknowledged_failed_ = true;
    LogWarning(absl::StrCat(
        "cannot record acknowledged revision ", revision, " in ",
        AcknowledgedPath(options_.path), ": ", std::strerror(errno),
        " (writes go on; a later loss of the WAL may go unnoticed)"));
  }
}

absl::StatusOr<uint64_t> RocksDbStore::Revision() { return revision_.load(); }

absl::Status RocksDbStore::Commit(const Mutation& m) {
  return WriteMutation(m, options_.sync_writes);
}

absl::Status RocksDbStore::Write(const Mutation& m) {
  return WriteMutation(m, /*sync=*/false);
}

absl::Status RocksDbStore::Sync() {
  if (!options_.sync_writes) return absl::OkStatus();
  MutexLock lock(&io_mu_);
  SK_RETURN_IF_ERROR(Writable());
  // Covers every write that returned before this call; writes are held off
  // by io_mu_, so that is every write up to `revision`.
  const uint64_t revision = revision_.load();
  const absl::Status synced =
      FromRocksDb(db_->FlushWAL(/*sync=*/true), "sync WAL");
  if (!synced.ok()) return Failed(synced);
  Acknowledged(revision);
  return synced;
}

absl::Status RocksDbStore::Recover() {
  MutexLock lock(&io_mu_);
  if (failure_.ok()) return absl::OkStatus();
  // Resuming flushes the memtable and starts a new WAL. Not tried while
  // that cannot fit: a resume that fails for lack of space can leave
  // RocksDB unable to resume at all until restarted.
  uint64_t free = 0;
  uint64_t memtables = 0;
  if (db_->GetEnv()->GetFreeSpace(options_.path, &free).ok() &&
      db_->GetIntProperty(rocksdb::DB::Properties::kCurSizeAllMemTables,
                          &memtables)) {
    const uint64_t needed = memtables + kRecoveryHeadroomBytes;
    if (free < needed) {
      return absl::UnavailableError(absl::StrCat(
          "recover: not enough free space yet (", free, " bytes free in ",
          options_.path, ", ", needed, " needed)"));
    }
  }
  SK_RETURN_IF_ERROR(FromRocksDb(db_->Resume(), "recover"));
  // The memtable holds writes whose WAL sync may have failed: flushed to a
  // table file, they are durable.
  SK_RETURN_IF_ERROR(
      FromRocksDb(db_->Flush(rocksdb::FlushOptions()), "recover: flush"));
  failure_ = absl::OkStatus();
  Acknowledged(revision_.load());
  return absl::OkStatus();
}

absl::Status RocksDbStore::Writable() const {
  if (failure_.ok()) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("store failed earlier: ", failure_.message()));
}

absl::Status RocksDbStore::Failed(const absl::Status& status) {
  if (absl::IsUnavailable(status) || absl::IsDataLoss(status) ||
      absl::IsInternal(status)) {
    failure_ = status;
  }
  return status;
}

absl::Status RocksDbStore::WriteMutation(const Mutation& m, bool sync) {
  MutexLock lock(&io_mu_);
  SK_RETURN_IF_ERROR(Writable());
  const uint64_t current = revision_.load();
  if (m.revision != current + 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("commit: revision ", m.revision,
                     " is not the current revision ", current, " + 1"));
  }
  SK_RETURN_IF_ERROR(ValidateMutation(m));

  // Writes are serialized, so reads of the latest state are stable here.
  const rocksdb::ReadOptions read;
  rocksdb::WriteBatch batch;
  std::map<std::string, std::string> claimed;  // sha256 -> key_id
  for (const KeyRecord& record : m.put_keys) {
    const std::string& key_id = record.key().key_id();
    const std::string& organization_id = record.key().organization_id();
    SK_ASSIGN_OR_RETURN(const std::optional<KeyRecord> old,
                        ReadKey(read, key_id));
    std::set<std::string> old_hashes;
    if (old.has_value()) {
      for (const SecretHash& secret : old->secrets()) {
        old_hashes.insert(secret.sha256());
      }
    }
    std::set<std::string> hashes;
    for (const SecretHash& secret : record.secrets()) {
      const std::string& sha256 = secret.sha256();
      hashes.insert(sha256);
      const auto [it, inserted] = claimed.emplace(sha256, key_id);
      if (!inserted && it->second != key_id) {
        return HashTakenError(sha256, it->second);
      }
      if (old_hashes.count(sha256) == 0) {
        rocksdb::PinnableSlice owner;
        SK_ASSIGN_OR_RETURN(
            const bool taken,
            ReadValue(db_.get(), read, HashKey(sha256), &owner));
        if (taken && ToView(owner) != key_id) {
          return HashTakenError(sha256, ToView(owner));
        }
      }
    }

    for (const std::string& sha256 : old_hashes) {
      if (hashes.count(sha256) == 0) batch.Delete(ToSlice(HashKey(sha256)));
    }
    for (const std::string& sha256 : hashes) {
      batch.Put(ToSlice(HashKey(sha256)), ToSlice(key_id));
    }
    if (old.has_value() && old->key().organization_id() != organization_id) {
      batch.Delete(ToSlice(OrgKey(old->key().organization_id(), key_id)));
    }
    batch.Put(ToSlice(OrgKey(organization_id, key_id)), rocksdb::Slice());
    const std::string key = KeyKey(key_id);
    SK_ASSIGN_OR_RETURN(const std::string value, SerializeRecord(record, key));
    batch.Put(ToSlice(key), ToSlice(value));
  }
  if (m.put_policy.has_value()) {
    SK_ASSIGN_OR_RETURN(const std::string value,
                        SerializeRecord(*m.put_policy, kPolicyKey));
    batch.Put(ToSlice(kPolicyKey), ToSlice(value));
  }
  for (const v1::App& app : m.put_apps) {
    const std::string key = absl::StrCat(kAppPrefix, app.app_id());
    SK_ASSIGN_OR_RETURN(const std::string value, SerializeRecord(app, key));
    batch.Put(ToSlice(key), ToSlice(value));
  }
  for (const v1::Installation& installation : m.put_installations) {
    const std::string key =
        absl::StrCat(kInstallationPrefix, installation.installation_id());
    SK_ASSIGN_OR_RETURN(const std::string value,
                        SerializeRecord(installation, key));
    batch.Put(ToSlice(key), ToSlice(value));
  }
  if (m.audit_event.has_value()) {
    const std::string key = AuditKey(m.revision);
    SK_ASSIGN_OR_RETURN(const std::string value,
                        SerializeRecord(*m.audit_event, key));
    batch.Put(ToSlice(key), ToSlice(value));
  }
  batch.Put(ToSlice(kRevisionKey), ToSlice(EncodeUint64(m.revision)));

  rocksdb::WriteOptions write;
  write.sync = sync;
  const absl::Status written = FromRocksDb(
      db_->Write(write, &batch), absl::StrCat("write revision ", m.revision));
  if (!written.ok()) return Failed(written);
  revision_.store(m.revision);
  if (sync) Acknowledged(m.revision);
  return absl::OkStatus();
}

absl::StatusOr<std::optional<KeyRecord>> RocksDbStore::ReadKey(
    const rocksdb::ReadOptions& read, absl::string_view key_id) {
  const std::string key = KeyKey(key_id);
  rocksdb::PinnableSlice value;
  SK_ASSIGN_OR_RETURN(const bool found,
                      ReadValue(db_.get(), read, key, &value));
  if (!found) return std::nullopt;
  SK_ASSIGN_OR_RETURN(KeyRecord record, ParseKeyRecord(key, value));
  return record;
}

absl::StatusOr<std::optional<KeyRecord>> RocksDbStore::GetKeyById(
    absl::string_view key_id) {
  return ReadKey(rocksdb::ReadOptions(), key_id);
}

absl::StatusOr<std::optional<KeyRecord>> RocksDbStore::GetKeyBySecretHash(
    absl::string_view sha256) {
  if (sha256.size() != kSha256Size) {
    return absl::InvalidArgumentError(
        absl::StrCat("sha256: must be 32 bytes, is ", sha256.size()));
  }
  // Two point reads without a snapshot (the hot path). A Commit between them
  // may have moved the hash off the key: then the record no longer lists it,
  // and "not found" was true at that moment.
  const rocksdb::ReadOptions read;
  const std::string hash_key = HashKey(sha256);
  rocksdb::PinnableSlice key_id;
  SK_ASSIGN_OR_RETURN(const bool found,
                      ReadValue(db_.get(), read, hash_key, &key_id));
  if (!found) return std::nullopt;
  SK_ASSIGN_OR_RETURN(std::optional<KeyRecord> record,
                      ReadKey(read, ToView(key_id)));
  if (!record.has_value()) {
    return absl::DataLossError(
        absl::StrCat("index entry ", Describe(hash_key), " names key ",
                     Quote(ToView(key_id)), ", which does not exist"));
  }
  for (const SecretHash& secret : record->secrets()) {
    if (secret.sha256() == sha256) return record;
  }
  return std::nullopt;
}

absl::StatusOr<std::vector<KeyRecord>> RocksDbStore::ListKeys(
    absl::string_view organization_id, absl::string_view after_key_id,
    int limit) {
  SK_RETURN_IF_ERROR(CheckLimit(limit));
  // Keys after `after_key_id`: its successor is after_key_id + "\0".
  const std::string after_suffix =
      absl::StrCat(after_key_id, absl::string_view("\0", 1));
  const ScopedSnapshot snapshot(db_.get());
  const rocksdb::ReadOptions read = snapshot.ReadOptions();
  std::vector<KeyRecord> out;
  if (organization_id.empty()) {
    SK_RETURN_IF_ERROR(
        ScanPrefix(db_.get(), read, kKeyPrefix, KeyKey(after_suffix),
                   [&](const rocksdb::Slice& key,
                       const rocksdb::Slice& value) -> absl::StatusOr<bool> {
                     SK_ASSIGN_OR_RETURN(KeyRecord record,
                                         ParseKeyRecord(ToView(key), value));
                     out.push_back(std::move(record));
                     return out.size() < static_cast<size_t>(limit);
                   }));
    return out;
  }
  const std::string prefix = OrgPrefix(organization_id);
  SK_RETURN_IF_ERROR(ScanPrefix(
      db_.get(), read, prefix, absl::StrCat(prefix, after_suffix),
      [&](const rocksdb::Slice& key,
          const rocksdb::Slice&) -> absl::StatusOr<bool> {
        const absl::string_view key_id = ToView(key).substr(prefix.size());
        SK_ASSIGN_OR_RETURN(std::optional<KeyRecord> record,
                            ReadKey(read, key_id));
        if (!record.has_value()) {
          return absl::DataLossError(
              absl::StrCat("index entry ", Describe(ToView(key)),
                           " names a key that does not exist"));
        }
        out.push_back(*std::move(record));
        return out.size() < static_cast<size_t>(limit);
      }));
  return out;
}

absl::Status RocksDbStore::ForEachKey(
    const std::function<absl::Status(const KeyRecord&)>& fn) {
  // A full scan (start-up load, recompiles): keep it out of the block cache,
  // which it would fill with blocks no decision needs next (64 MiB of
  // resident memory at 1M keys), and read ahead.
  rocksdb::ReadOptions read;
  read.fill_cache = false;
  read.readahead_size = 2 << 20;
  return ScanPrefix(db_.get(), read, kKeyPrefix, kKeyPrefix,
                    [&](const rocksdb::Slice& key,
                        const rocksdb::Slice& value) -> absl::StatusOr<bool> {
                      SK_ASSIGN_OR_RETURN(const KeyRecord record,
                                          ParseKeyRecord(ToView(key), value));
                      SK_RETURN_IF_ERROR(fn(record));
                      return true;
                    });
}

namespace {

// ForEachRecord() parses every record under `prefix` as a T and calls `fn`.
template <typename T>
absl::Status ForEachRecord(rocksdb::DB* db, absl::string_view prefix,
                           const std::function<absl::Status(const T&)>& fn) {
  return ScanPrefix(
      db, rocksdb::ReadOptions(), prefix, prefix,
      [&](const rocksdb::Slice& key,
          const rocksdb::Slice& value) -> absl::StatusOr<bool> {
        T record;
        SK_RETURN_IF_ERROR(ParseRecord(value, ToView(key), &record));
        SK_RETURN_IF_ERROR(fn(record));
        return true;
      });
}

}  // namespace

absl::Status RocksDbStore::ForEachApp(
    const std::function<absl::Status(const v1::App&)>& fn) {
  return ForEachRecord<v1::App>(db_.get(), kAppPrefix, fn);
}

absl::Status RocksDbStore::ForEachInstallation(
    const std::function<absl::Status(const v1::Installation&)>& fn) {
  return ForEachRecord<v1::Installation>(db_.get(), kInstallationPrefix, fn);
}

absl::Status RocksDbStore::RecordKeyUses(
    const std::vector<std::pair<std::string, google::protobuf::Timestamp>>&
        uses) {
  // Serialized with commits so the read-compare-write below is not raced.
  MutexLock lock(&io_mu_);
  SK_RETURN_IF_ERROR(Writable());
  rocksdb::WriteBatch batch;
  for (const auto& [key_id, time] : uses) {
    SK_ASSIGN_OR_RETURN(const std::optional<google::protobuf::Timestamp> stored,
                        GetKeyLastUse(key_id));
    if (stored.has_value() && !IsLater(time, *stored)) continue;
    const std::string key = absl::StrCat(kLastUsePrefix, key_id);
    SK_ASSIGN_OR_RETURN(const std::string value, SerializeRecord(time, key));
    batch.Put(ToSlice(key), ToSlice(value));
  }
  if (batch.Count() == 0) return absl::OkStatus();
  rocksdb::WriteOptions write;
  write.sync = false;  // telemetry: losing the last few on a crash is fine
  const absl::Status written =
      FromRocksDb(db_->Write(write, &batch), "record key uses");
  return written.ok() ? written : Failed(written);
}

absl::StatusOr<std::optional<google::protobuf::Timestamp>>
RocksDbStore::GetKeyLastUse(absl::string_view key_id) {
  const std::string key = absl::StrCat(kLastUsePrefix, key_id);
  rocksdb::PinnableSlice value;
  SK_ASSIGN_OR_RETURN(
      const bool found,
      ReadValue(db_.get(), rocksdb::ReadOptions(), key, &value));
  if (!found) return std::nullopt;
  google::protobuf::Timestamp time;
  SK_RETURN_IF_ERROR(ParseRecord(value, key, &time));
  return time;
}

absl::StatusOr<uint64_t> RocksDbStore::Checkpoint(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (fs::exists(path, error)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint: ", Quote(path, kMaxQuotedPath), " already exists"));
  }
  // The caller's mistakes are FAILED_PRECONDITION, not a RocksDB I/O error
  // (UNAVAILABLE tells clients to retry).
  const fs::path parent = fs::path(path).parent_path();
  if (!fs::is_directory(parent, error)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint: parent directory ", Quote(parent.string(), kMaxQuotedPath),
        " of ", Quote(path, kMaxQuotedPath), " does not exist"));
  }
  if (access(parent.c_str(), W_OK | X_OK) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint: cannot write to ", Quote(parent.string(), kMaxQuotedPath),
        ": ", std::strerror(errno)));
  }
  rocksdb::Checkpoint* raw = nullptr;
  SK_RETURN_IF_ERROR(
      FromRocksDb(rocksdb::Checkpoint::Create(db_.get(), &raw), "checkpoint"));
  std::unique_ptr<rocksdb::Checkpoint> checkpoint(raw);
  uint64_t revision = 0;
  {
    // Hold commits off so the revision reported is the one the copy holds.
    MutexLock lock(&io_mu_);
    SK_RETURN_IF_ERROR(FromRocksDb(checkpoint->CreateCheckpoint(path),
                                   absl::StrCat("checkpoint to ", path)));
    revision = revision_.load();
  }
  // The copy's own acknowledged revision: a restore opens, and a later loss
  // of its WAL is caught as for the live store.
  SK_RETURN_IF_ERROR(WriteAcknowledgedFile(path, revision));
  // A backup is as private as the data dir: 0700, files 0600 (whatever the
  // umask; hard-linked files share their mode with the live ones).
  fs::permissions(path, fs::perms::owner_all, error);
  for (const fs::directory_entry& entry : fs::directory_iterator(path, error)) {
    fs::permissions(entry.path(),
                    fs::perms::owner_read | fs::perms::owner_write, error);
  }
  return revision;
}

absl::StatusOr<std::optional<v1::Policy>> RocksDbStore::GetPolicy() {
  rocksdb::PinnableSlice value;
  SK_ASSIGN_OR_RETURN(
      const bool found,
      ReadValue(db_.get(), rocksdb::ReadOptions(), kPolicyKey, &value));
  if (!found) return std::nullopt;
  v1::Policy policy;
  SK_RETURN_IF_ERROR(ParseRecord(value, kPolicyKey, &policy));
  return policy;
}

absl::StatusOr<std::vector<v1::AuditEvent>> RocksDbStore::ListAuditEvents(
    const AuditFilter& filter, int limit) {
  SK_RETURN_IF_ERROR(CheckLimit(limit));
  std::vector<v1::AuditEvent> out;
  if (filter.after_revision == UINT64_MAX) return out;
  SK_RETURN_IF_ERROR(
      ScanPrefix(db_.get(), rocksdb::ReadOptions(), kAuditPrefix,
                 AuditKey(filter.after_revision + 1),
                 [&](const rocksdb::Slice& key,
                     const rocksdb::Slice& value) -> absl::StatusOr<bool> {
                   v1::AuditEvent event;
                   SK_RETURN_IF_ERROR(ParseRecord(value, ToView(key), &event));
                   if (MatchesAuditFilter(filter, event))
                     out.push_back(std::move(event));
                   return out.size() < static_cast<size_t>(limit);
                 }));
  return out;
}

}  // namespace scopekeeper::storage
