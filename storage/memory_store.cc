#include "storage/memory_store.h"

#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "storage/mutation_check.h"

namespace scopekeeper::storage {
namespace {

// Values() copies the values of `map`, in key order.
template <typename T>
std::vector<T> Values(const std::map<std::string, T>& map) {
  std::vector<T> values;
  values.reserve(map.size());
  for (const auto& [id, value] : map) values.push_back(value);
  return values;
}

// ForEach() calls `fn` on each of `values`, stopping at the first error.
template <typename T>
absl::Status ForEach(const std::vector<T>& values,
                     const std::function<absl::Status(const T&)>& fn) {
  for (const T& value : values) SK_RETURN_IF_ERROR(fn(value));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<uint64_t> MemoryStore::Revision() {
  MutexLock lock(&mu_);
  return revision_;
}

absl::Status MemoryStore::Write(const Mutation& m) {
  MutexLock lock(&mu_);
  if (m.revision != revision_ + 1) {
    return absl::FailedPreconditionError(
        absl::StrCat("commit: revision ", m.revision,
                     " is not the current revision ", revision_, " + 1"));
  }
  SK_RETURN_IF_ERROR(ValidateMutation(m));
  // A hash authenticates as one key only.
  std::map<std::string, std::string> claimed;  // sha256 -> key_id
  for (const KeyRecord& record : m.put_keys) {
    const std::string& key_id = record.key().key_id();
    for (const SecretHash& secret : record.secrets()) {
      const auto [it, inserted] = claimed.emplace(secret.sha256(), key_id);
      if (!inserted && it->second != key_id) {
        return HashTakenError(secret.sha256(), it->second);
      }
      const auto owner = key_id_by_hash_.find(secret.sha256());
      if (owner != key_id_by_hash_.end() && owner->second != key_id) {
        return HashTakenError(secret.sha256(), owner->second);
      }
    }
  }

  // Nothing below fails.
  for (const KeyRecord& record : m.put_keys) {
    const std::string& key_id = record.key().key_id();
    std::set<std::string> hashes;
    for (const SecretHash& secret : record.secrets()) {
      hashes.insert(secret.sha256());
    }
    const auto old = keys_.find(key_id);
    if (old != keys_.end()) {
      for (const SecretHash& secret : old->second.secrets()) {
        if (hashes.count(secret.sha256()) == 0) {
          key_id_by_hash_.erase(secret.sha256());
        }
      }
      const std::string& old_org = old->second.key().organization_id();
      if (old_org != record.key().organization_id()) {
        const auto org = key_ids_by_org_.find(old_org);
        if (org != key_ids_by_org_.end()) {
          org->second.erase(key_id);
          if (org->second.empty()) key_ids_by_org_.erase(org);
        }
      }
    }
    for (const std::string& sha256 : hashes) key_id_by_hash_[sha256] = key_id;
    key_ids_by_org_[record.key().organization_id()].insert(key_id);
    keys_[key_id] = record;
  }
  if (m.put_policy.has_value()) policy_ = *m.put_policy;
  for (const v1::App& app : m.put_apps) apps_[app.app_id()] = app;
  for (const v1::Installation& installation : m.put_installations) {
    installations_[installation.installation_id()] = installation;
  }
  if (m.audit_event.has_value()) audit_[m.revision] = *m.audit_event;
  revision_ = m.revision;
  return absl::OkStatus();
}

absl::StatusOr<std::optional<KeyRecord>> MemoryStore::GetKeyById(
    absl::string_view key_id) {
  MutexLock lock(&mu_);
  const auto it = keys_.find(std::string(key_id));
  if (it == keys_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<std::optional<KeyRecord>> MemoryStore::GetKeyBySecretHash(
    absl::string_view sha256) {
  if (sha256.size() != kSha256Size) {
    return absl::InvalidArgumentError(
        absl::StrCat("sha256: must be 32 bytes, is ", sha256.size()));
  }
  MutexLock lock(&mu_);
  const auto hash = key_id_by_hash_.find(std::string(sha256));
  if (hash == key_id_by_hash_.end()) return std::nullopt;
  return keys_.at(hash->second);
}

absl::StatusOr<std::vector<KeyRecord>> MemoryStore::ListKeys(
    absl::string_view organization_id, absl::string_view after_key_id,
    int limit) {
  SK_RETURN_IF_ERROR(CheckLimit(limit));
  const std::string after(after_key_id);
  std::vector<KeyRecord> out;
  MutexLock lock(&mu_);
  if (organization_id.empty()) {
    for (auto it = keys_.upper_bound(after);
         it != keys_.end() && out.size() < static_cast<size_t>(limit); ++it) {
      out.push_back(it->second);
    }
    return out;
  }
  const auto org = key_ids_by_org_.find(std::string(organization_id));
  if (org == key_ids_by_org_.end()) return out;
  for (auto it = org->second.upper_bound(after);
       it != org->second.end() && out.size() < static_cast<size_t>(limit);
       ++it) {
    out.push_back(keys_.at(*it));
  }
  return out;
}

absl::Status MemoryStore::ForEachKey(
    const std::function<absl::Status(const KeyRecord&)>& fn) {
  std::vector<KeyRecord> values;
  {
    MutexLock lock(&mu_);
    values = Values(keys_);
  }
  return ForEach(values, fn);
}

absl::Status MemoryStore::ForEachApp(
    const std::function<absl::Status(const v1::App&)>& fn) {
  std::vector<v1::App> values;
  {
    MutexLock lock(&mu_);
    values = Values(apps_);
  }
  return ForEach(values, fn);
}

absl::Status MemoryStore::ForEachInstallation(
    const std::function<absl::Status(const v1::Installation&)>& fn) {
  std::vector<v1::Installation> values;
  {
    MutexLock lock(&mu_);
    values = Values(installations_);
  }
  return ForEach(values, fn);
}

absl::Status MemoryStore::RecordKeyUses(
    const std::vector<std::pair<std::string, google::protobuf::Timestamp>>&
        uses) {
  MutexLock lock(&mu_);
  for (const auto& [key_id, time] : uses) {
    google::protobuf::Timestamp& stored = last_uses_[key_id];
    if (IsLater(time, stored)) stored = time;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::optional<google::protobuf::Timestamp>>
MemoryStore::GetKeyLastUse(absl::string_view key_id) {
  MutexLock lock(&mu_);
  const auto it = last_uses_.find(std::string(key_id));
  if (it == last_uses_.end()) return std::nullopt;
  return it->second;
}

absl::StatusOr<uint64_t> MemoryStore::Checkpoint(const std::string&) {
  return absl::UnimplementedError("the in-memory store has no checkpoints");
}

absl::StatusOr<std::optional<v1::Policy>> MemoryStore::GetPolicy() {
  MutexLock lock(&mu_);
  return policy_;
}

absl::StatusOr<std::vector<v1::AuditEvent>> MemoryStore::ListAuditEvents(
    const AuditFilter& filter, int limit) {
  SK_RETURN_IF_ERROR(CheckLimit(limit));
  std::vector<v1::AuditEvent> out;
  MutexLock lock(&mu_);
  for (auto it = audit_.upper_bound(filter.after_revision);
       it != audit_.end() && out.size() < static_cast<size_t>(limit); ++it) {
    if (MatchesAuditFilter(filter, it->second)) out.push_back(it->second);
  }
  return out;
}

}  // namespace scopekeeper::storage
