// RocksDbStore: the embedded, durable Store, one RocksDB database per data
// directory. Layout (default column family, binary-safe prefixes):
//   meta/format                    "1"
//   meta/revision                  8-byte big-endian uint64
//   key/<key_id>                   KeyRecord
//   hash/<32-byte sha256>          key_id
//   org/<organization_id>\0<key_id> ""
//   policy                         v1::Policy
//   audit/<8-byte BE revision>     v1::AuditEvent
// `app/` and `inst/` are reserved.
#ifndef SCOPEKEEPER_STORAGE_ROCKSDB_STORE_H_
#define SCOPEKEEPER_STORAGE_ROCKSDB_STORE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
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
  };

  // Open() opens the store at `options.path`, creating it in a missing or
  // empty directory. FAILED_PRECONDITION if the directory holds something
  // else, or a store of a newer format; UNAVAILABLE if it is in use or
  // unreadable; DATA_LOSS if its metadata is corrupt.
  static absl::StatusOr<std::unique_ptr<RocksDbStore>> Open(
      const Options& options);

  // Closes the database.
  ~RocksDbStore() override;

  RocksDbStore(const RocksDbStore&) = delete;
  RocksDbStore& operator=(const RocksDbStore&) = delete;

  absl::StatusOr<uint64_t> Revision() override;
  absl::Status Commit(const Mutation& m) override;
  absl::Status Write(const Mutation& m) override;
  absl::Status Sync() override;
  // Recover() resumes RocksDB after a write failure (DB::Resume()) and
  // flushes the memtable, so every write it holds is durable.
  absl::Status Recover() override;
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
          uses) override;
  absl::StatusOr<std::optional<google::protobuf::Timestamp>> GetKeyLastUse(
      absl::string_view key_id) override;
  absl::StatusOr<uint64_t> Checkpoint(const std::string& path) override;
  absl::StatusOr<std::optional<v1::Policy>> GetPolicy() override;
  absl::StatusOr<std::vector<v1::AuditEvent>> ListAuditEvents(
      const AuditFilter& filter, int limit) override;

 private:
  RocksDbStore(std::unique_ptr<rocksdb::DB> db, const Options& options,
               uint64_t revision);

  // WriteMutation() is Write(), syncing the WAL first if `sync`.
  absl::Status WriteMutation(const Mutation& m, bool sync);
  // Writable() is OK unless a write, sync or telemetry write failed and the
  // store did not Recover() since. REQUIRES: io_mu_ held.
  absl::Status Writable() const;
  // Failed() records that a RocksDB write failed: after that RocksDB's WAL
  // writer must not be used (DB::Resume() replaces it), so every later
  // write fails here until Recover(). Returns `status`.
  absl::Status Failed(const absl::Status& status);

  // Reads key/<key_id> as of `read` (its snapshot, if any).
  absl::StatusOr<std::optional<KeyRecord>> ReadKey(
      const rocksdb::ReadOptions& read, absl::string_view key_id);

  const std::unique_ptr<rocksdb::DB> db_;
  const Options options_;
  std::atomic<uint64_t> revision_;
  // Serializes every write to RocksDB: mutations, syncs, telemetry,
  // recovery and checkpoints.
  std::mutex io_mu_;
  absl::Status failure_;  // guarded by io_mu_
};

}  // namespace scopekeeper::storage

#endif  // SCOPEKEEPER_STORAGE_ROCKSDB_STORE_H_
