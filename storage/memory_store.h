// MemoryStore: an in-memory Store for unit tests, with the same semantics and
// error codes as RocksDbStore (nothing is durable).
#ifndef SCOPEKEEPER_STORAGE_MEMORY_STORE_H_
#define SCOPEKEEPER_STORAGE_MEMORY_STORE_H_

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/mutex.h"
#include "storage/store.h"

namespace scopekeeper::storage {

// Thread-safe: every method takes one Mutex. ForEach*() call `fn` on a copy
// taken under the lock, so `fn` may call the store.
class MemoryStore final : public Store {
 public:
  MemoryStore() = default;
  MemoryStore(const MemoryStore&) = delete;
  MemoryStore& operator=(const MemoryStore&) = delete;

  absl::StatusOr<uint64_t> Revision() override ABSL_LOCKS_EXCLUDED(mu_);
  // Write() is Commit() without the sync: nothing here is durable.
  absl::Status Write(const Mutation& m) override ABSL_LOCKS_EXCLUDED(mu_);
  // Sync() does nothing.
  absl::Status Sync() override { return absl::OkStatus(); }
  absl::StatusOr<std::optional<KeyRecord>> GetKeyById(
      absl::string_view key_id) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::optional<KeyRecord>> GetKeyBySecretHash(
      absl::string_view sha256) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::vector<KeyRecord>> ListKeys(
      absl::string_view organization_id, absl::string_view after_key_id,
      int limit) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status ForEachKey(
      const std::function<absl::Status(const KeyRecord&)>& fn) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status ForEachApp(const std::function<absl::Status(const v1::App&)>& fn)
      override ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status ForEachInstallation(
      const std::function<absl::Status(const v1::Installation&)>& fn) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status RecordKeyUses(
      const std::vector<std::pair<std::string, google::protobuf::Timestamp>>&
          uses) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::optional<google::protobuf::Timestamp>> GetKeyLastUse(
      absl::string_view key_id) override ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<uint64_t> Checkpoint(const std::string& path) override;
  absl::StatusOr<std::optional<v1::Policy>> GetPolicy() override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::vector<v1::AuditEvent>> ListAuditEvents(
      const AuditFilter& filter, int limit) override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  Mutex mu_;
  uint64_t revision_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, KeyRecord> keys_ ABSL_GUARDED_BY(mu_);
  // SHA-256 (raw) -> key_id.
  std::map<std::string, std::string> key_id_by_hash_ ABSL_GUARDED_BY(mu_);
  // organization_id -> its key_ids.
  std::map<std::string, std::set<std::string>> key_ids_by_org_
      ABSL_GUARDED_BY(mu_);
  std::optional<v1::Policy> policy_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::App> apps_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, google::protobuf::Timestamp> last_uses_
      ABSL_GUARDED_BY(mu_);
  std::map<std::string, v1::Installation> installations_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, v1::AuditEvent> audit_ ABSL_GUARDED_BY(mu_);
};

}  // namespace scopekeeper::storage

#endif  // SCOPEKEEPER_STORAGE_MEMORY_STORE_H_
