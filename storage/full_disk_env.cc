#include "storage/full_disk_env.h"

#include <string>
#include <utility>

#include "rocksdb/file_system.h"

namespace scopekeeper::storage {
namespace {

using Full = std::shared_ptr<std::atomic<bool>>;
using Reported = std::shared_ptr<std::atomic<int64_t>>;

rocksdb::IOStatus NoSpace() {
  return rocksdb::IOStatus::NoSpace("injected: No space left on device");
}

class FullDiskFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  FullDiskFile(std::unique_ptr<rocksdb::FSWritableFile> file, Full full)
      : FSWritableFileOwnerWrapper(std::move(file)), full_(std::move(full)) {}

  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& options,
                           rocksdb::IODebugContext* dbg) override {
    if (*full_) return NoSpace();
    return FSWritableFileOwnerWrapper::Append(data, options, dbg);
  }
  rocksdb::IOStatus Append(const rocksdb::Slice& data,
                           const rocksdb::IOOptions& options,
                           const rocksdb::DataVerificationInfo& info,
                           rocksdb::IODebugContext* dbg) override {
    if (*full_) return NoSpace();
    return FSWritableFileOwnerWrapper::Append(data, options, info, dbg);
  }
  rocksdb::IOStatus PositionedAppend(const rocksdb::Slice& data,
                                     uint64_t offset,
                                     const rocksdb::IOOptions& options,
                                     rocksdb::IODebugContext* dbg) override {
    if (*full_) return NoSpace();
    return FSWritableFileOwnerWrapper::PositionedAppend(data, offset, options,
                                                        dbg);
  }
  rocksdb::IOStatus Flush(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    if (*full_) return NoSpace();
    return FSWritableFileOwnerWrapper::Flush(options, dbg);
  }
  rocksdb::IOStatus Sync(const rocksdb::IOOptions& options,
                         rocksdb::IODebugContext* dbg) override {
    if (*full_) return NoSpace();
    return FSWritableFileOwnerWrapper::Sync(options, dbg);
  }
  rocksdb::IOStatus Fsync(const rocksdb::IOOptions& options,
                          rocksdb::IODebugContext* dbg) override {
    if (*full_) return NoSpace();
    return FSWritableFileOwnerWrapper::Fsync(options, dbg);
  }

 private:
  const Full full_;
};

class FullDiskFileSystem final : public rocksdb::FileSystemWrapper {
 public:
  FullDiskFileSystem(Full full, Reported reported_free)
      : FileSystemWrapper(rocksdb::FileSystem::Default()),
        full_(std::move(full)),
        reported_free_(std::move(reported_free)) {}

  const char* Name() const override { return "FullDiskFileSystem"; }

  rocksdb::IOStatus GetFreeSpace(const std::string& path,
                                 const rocksdb::IOOptions& options,
                                 uint64_t* free,
                                 rocksdb::IODebugContext* dbg) override {
    if (*full_ || *reported_free_ >= 0) {
      *free = *full_ ? 0 : static_cast<uint64_t>(reported_free_->load());
      return rocksdb::IOStatus::OK();
    }
    return target()->GetFreeSpace(path, options, free, dbg);
  }

  rocksdb::IOStatus NewWritableFile(
      const std::string& name, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override {
    // Creating an empty file works on a full disk (it needs no blocks).
    return Wrap(target()->NewWritableFile(name, options, result, dbg), result);
  }
  rocksdb::IOStatus ReopenWritableFile(
      const std::string& name, const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override {
    return Wrap(target()->ReopenWritableFile(name, options, result, dbg),
                result);
  }
  rocksdb::IOStatus ReuseWritableFile(
      const std::string& name, const std::string& old_name,
      const rocksdb::FileOptions& options,
      std::unique_ptr<rocksdb::FSWritableFile>* result,
      rocksdb::IODebugContext* dbg) override {
    return Wrap(
        target()->ReuseWritableFile(name, old_name, options, result, dbg),
        result);
  }

 private:
  rocksdb::IOStatus Wrap(rocksdb::IOStatus status,
                         std::unique_ptr<rocksdb::FSWritableFile>* file) {
    if (status.ok()) {
      *file = std::make_unique<FullDiskFile>(std::move(*file), full_);
    }
    return status;
  }

  const Full full_;
  const Reported reported_free_;
};

}  // namespace

FullDiskEnv::FullDiskEnv()
    : full_(std::make_shared<std::atomic<bool>>(false)),
      reported_free_(std::make_shared<std::atomic<int64_t>>(-1)),
      env_(rocksdb::NewCompositeEnv(
          std::make_shared<FullDiskFileSystem>(full_, reported_free_))) {}

}  // namespace scopekeeper::storage
