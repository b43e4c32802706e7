// FaultInjectingStore: a Store decorator for tests of error paths (LevelDB's
// fault-env idea). Every call goes to the wrapped store unless its kind of
// operation is set to fail, in which case it returns UNAVAILABLE without
// touching the wrapped store, as a dead disk or lost connection would.
// Commit() is Write() then Sync(), each checked. A hook run at the start of
// every Sync() lets tests hold a sync to make write grouping deterministic.
#ifndef SCOPEKEEPER_STORAGE_FAULT_INJECTING_STORE_H_
#define SCOPEKEEPER_STORAGE_FAULT_INJECTING_STORE_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "storage/store.h"

namespace scopekeeper::storage {

// Thread-safe if the wrapped store is. Does not own `inner`.
class FaultInjectingStore final : public Store {
 public:
  enum class Op { kWrite, kSync, kRead, kRecordKeyUses, kRecover };

  explicit FaultInjectingStore(Store* inner) : inner_(inner) {}

  // SetFailing() makes every later call of kind `op` fail (or work again).
  void SetFailing(Op op, bool failing) { failing_[Index(op)] = failing; }
  // calls() counts the calls of kind `op`, failed or not.
  int calls(Op op) const { return calls_[Index(op)]; }
  // SetSyncHook() makes every later Sync() call `hook` first (before the
  // fault check), on the syncing thread; it may block. Call before any
  // Sync() can run.
  void SetSyncHook(std::function<void()> hook) { sync_hook_ = std::move(hook); }
  // SetSecretReadHook() makes every later GetKeyBySecretHash() call `hook`
  // after its read and before returning what it read (a reader is then
  // holding a record that may be going stale). Call before any such read.
  void SetSecretReadHook(std::function<void()> hook) {
    secret_read_hook_ = std::move(hook);
  }

  absl::StatusOr<uint64_t> Revision() override;
  absl::Status Write(const Mutation& m) override;
  absl::Status Sync() override;
  // Recover() fails while writes or syncs are set to fail.
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
  static int Index(Op op) { return static_cast<int>(op); }
  // Check() counts a call of kind `op`; UNAVAILABLE if it is to fail.
  absl::Status Check(Op op);

  Store* const inner_;
  static constexpr int kOps = 5;
  std::atomic<bool> failing_[kOps] = {false, false, false, false, false};
  std::atomic<int> calls_[kOps] = {0, 0, 0, 0, 0};
  std::function<void()> sync_hook_;
  std::function<void()> secret_read_hook_;
};

}  // namespace scopekeeper::storage

#endif  // SCOPEKEEPER_STORAGE_FAULT_INJECTING_STORE_H_
