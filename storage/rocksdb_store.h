// RocksDbStore: the embedded, durable Store, one RocksDB database per data
// directory. Layout (default column family, binary-safe prefixes):
//   meta/format                    "1"
//   meta/revision                  8-byte big-endian uint64
//   key/<key_id>                   KeyRecord
//   hash/<32-byte sha256>          key_id
//   org/<organization_id>\0<key_id> ""
//   policy                         v1::Policy
//   audit/<8-byte BE revision>     v1::AuditEvent
//   app/<app_id>                   v1::App
//   inst/<installation_id>         v1::Installation
//   used/<key_id>                  google.protobuf.Timestamp (last use;
//                                  written unsynced, outside revisions)
// Outside RocksDB, in the same directory:
//   ACKNOWLEDGED_REVISION          the acknowledged revision (see below)
#ifndef SCOPEKEEPER_STORAGE_ROCKSDB_STORE_H_
#define SCOPEKEEPER_STORAGE_ROCKSDB_STORE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/mutex.h"
#include "rocksdb/db.h"
#include "storage/store.h"

namespace scopekeeper::storage {

// Thread-safe (see Store). Each read sees one consistent state; ForEachKey()
// iterates a snapshot, so `fn` may call the store. ListAuditEvents() scans
// from `after_revision` (key/organization filters have no index).
// Write() is an unsynced RocksDB write (in the memtable and the OS's copy of
// the WAL); Sync() syncs the WAL (FlushWAL(true)), which is sequential, so
// a crash loses at most a suffix of the unsynced writes. Commit() is one
// synced write.
//
// Out of space. A failed write or sync (e.g. ENOSPC) fails with
// UNAVAILABLE naming the cause, and every later write, sync or telemetry
// write fails the same way without touching RocksDB (whose WAL writer must
// not be used after an error) until Recover() succeeds. RocksDB's own
// automatic recovery is off (it waits for 64 MiB free); its info log goes
// to the server log (warnings and errors only), never to the full disk.
//
// Lost acknowledged writes. RocksDB recovers silently to an older state
// when the WAL (*.log) is damaged or missing after a crash: its point-in-time
// recovery stops at the first bad record, and a deleted WAL goes unnoticed
// (on RocksDB 7.8 neither another WAL recovery mode nor
// track_and_verify_wals_in_manifest catches all three of a flipped byte, a
// cut tail and a deleted file; see docs/OPERATIONS.md). Serving that state
// would make revoked keys valid again and reuse revisions. So the store
// keeps the highest revision it made durable in ACKNOWLEDGED_REVISION,
// outside the WAL: overwritten in place (pwrite, no fsync) after each
// successful sync, fsynced on close. A process crash cannot lose it (it is
// in the page cache); after a power loss it can only be older than the
// synced WAL, never newer, so it never raises a false alarm. Open() refuses
// a store whose recovered revision is below it (DATA_LOSS), unless
// Options::accept_data_loss. A checkpoint carries its own, so a restored
// backup opens.
class RocksDbStore final : public Store {
 public:
  struct Options {
    // Data directory; created if missing. Must be empty or hold a store.
    std::string path;
    // Sync the WAL in Commit() and Sync() (false only for tests/benchmarks:
    // then Sync() does nothing).
    bool sync_writes = true;
    // Size of the LRU block cache.
    size_t block_cache_bytes = 64 << 20;
    // The Env RocksDB uses (tests inject faults); null: the default.
    std::shared_ptr<rocksdb::Env> env;
    // Open a store that recovered to a revision below the acknowledged one
    // (lost writes) instead of refusing it: the revision then jumps past the
    // acknowledged one, so no revision is reused, with an audit event
    // ("AcceptDataLoss") at the new revision naming both.
    bool accept_data_loss = false;
  };

  // Open() opens the store at `options.path`, creating it in a missing or
  // empty directory. FAILED_PRECONDITION if the directory holds something
  // else, or a store of a newer format; UNAVAILABLE if it is in use or
  // unreadable; DATA_LOSS if its metadata is corrupt or it recovered to a
  // revision below the acknowledged one (see the class comment).
  static absl::StatusOr<std::unique_ptr<RocksDbStore>> Open(
      const Options& options);

  // Closes the database and syncs ACKNOWLEDGED_REVISION.
  ~RocksDbStore() override;

  RocksDbStore(const RocksDbStore&) = delete;
  RocksDbStore& operator=(const RocksDbStore&) = delete;

  absl::StatusOr<uint64_t> Revision() override;
  absl::Status Commit(const Mutation& m) override;
  absl::Status Write(const Mutation& m) override;
  absl::Status Sync() override ABSL_LOCKS_EXCLUDED(io_mu_);
  // Recover() resumes RocksDB after a write failure (DB::Resume()) and
  // flushes the memtable, so every write it holds is durable.
  absl::Status Recover() override ABSL_LOCKS_EXCLUDED(io_mu_);
  absl::StatusOr<std::optional<KeyRecord>> GetKeyById(
      absl::string_view key_id) override;
  absl::StatusOr<std::optional<KeyRecord>> GetKeyBySecretHash(
      absl::string_view sha256) override;
  absl::StatusOr<std::vector<KeyRecord>> ListKeys(
      absl::string_view organization_id, absl::string_view after_key_id,
      int limit) override;
  absl::Status ForEachKey(
      const std::function<absl::Status(const KeyRecord&)>& fn) override;
  absl::Status ForEachApp(
      const std::function<absl::Status(const v1::App&)>& fn) override;
  absl::Status ForEachInstallation(
      const std::function<absl::Status(const v1::Installation&)>& fn) override;
  absl::Status RecordKeyUses(
      const std::vector<std::pair<std::string, google::protobuf::Timestamp>>&
          uses) override ABSL_LOCKS_EXCLUDED(io_mu_);
  absl::StatusOr<std::optional<google::protobuf::Timestamp>> GetKeyLastUse(
      absl::string_view key_id) override;
  absl::StatusOr<uint64_t> Checkpoint(const std::string& path) override
      ABSL_LOCKS_EXCLUDED(io_mu_);
  absl::StatusOr<std::optional<v1::Policy>> GetPolicy() override;
  absl::StatusOr<std::vector<v1::AuditEvent>> ListAuditEvents(
      const AuditFilter& filter, int limit) override;

 private:
  RocksDbStore(std::unique_ptr<rocksdb::DB> db, const Options& options,
               uint64_t revision, int acknowledged_fd, uint64_t acknowledged);

  // Acknowledged() records that every write up to `revision` is durable
  // (ACKNOWLEDGED_REVISION). A failure is logged, not returned: the record
  // then stays older, which never raises a false alarm.
  void Acknowledged(uint64_t revision) ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_);

  // WriteMutation() is Write(), syncing the WAL first if `sync`.
  absl::Status WriteMutation(const Mutation& m, bool sync)
      ABSL_LOCKS_EXCLUDED(io_mu_);
  // Writable() is OK unless a write, sync or telemetry write failed and the
  // store did not Recover() since.
  absl::Status Writable() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_);
  // Failed() records that a RocksDB write failed: after that RocksDB's WAL
  // writer must not be used (DB::Resume() replaces it), so every later
  // write fails here until Recover(). Returns `status`.
  absl::Status Failed(const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(io_mu_);

  // Reads key/<key_id> as of `read` (its snapshot, if any).
  absl::StatusOr<std::optional<KeyRecord>> ReadKey(
      const rocksdb::ReadOptions& read, absl::string_view key_id);

  const std::unique_ptr<rocksdb::DB> db_;
  const Options options_;
  std::atomic<uint64_t> revision_;
  // Serializes every write to RocksDB: mutations, syncs, telemetry,
  // recovery and checkpoints.
  Mutex io_mu_;
  absl::Status failure_ ABSL_GUARDED_BY(io_mu_);
  // ACKNOWLEDGED_REVISION, open for writing; -1 if it could not be opened.
  const int acknowledged_fd_;
  uint64_t acknowledged_ ABSL_GUARDED_BY(io_mu_);             // last recorded
  bool acknowledged_failed_ ABSL_GUARDED_BY(io_mu_) = false;  // logged once
};

}  // namespace scopekeeper::storage

#endif  // SCOPEKEEPER_STORAGE_ROCKSDB_STORE_H_
