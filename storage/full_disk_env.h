// FullDiskEnv: a RocksDB Env over the real file system whose writes can be
// made to fail as on a full disk (IOStatus::NoSpace, as ENOSPC), for tests
// of the store's behaviour when storage runs out. Test-only.
#ifndef SCOPEKEEPER_STORAGE_FULL_DISK_ENV_H_
#define SCOPEKEEPER_STORAGE_FULL_DISK_ENV_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "rocksdb/env.h"

namespace scopekeeper::storage {

class FullDiskEnv {
 public:
  FullDiskEnv();

  // SetFull() makes every later append, flush and sync of a file opened for
  // writing fail with "no space left" (or work again).
  void SetFull(bool full) { full_->store(full); }
  // SetReportedFree() makes GetFreeSpace() report `bytes` (or, with -1, the
  // truth); a full disk reports 0 either way.
  void SetReportedFree(int64_t bytes) { reported_free_->store(bytes); }

  // env() is the Env to give RocksDB (RocksDbStore::Options::env).
  std::shared_ptr<rocksdb::Env> env() const { return env_; }

 private:
  std::shared_ptr<std::atomic<bool>> full_;
  std::shared_ptr<std::atomic<int64_t>> reported_free_;
  std::shared_ptr<rocksdb::Env> env_;
};

}  // namespace scopekeeper::storage

#endif  // SCOPEKEEPER_STORAGE_FULL_DISK_ENV_H_
