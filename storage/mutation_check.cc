#include "storage/mutation_check.h"

#include <set>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "base/redact.h"
#include "base/status_macros.h"

namespace scopekeeper::storage {
namespace {

absl::Status CheckId(absl::string_view field, size_t index,
                     absl::string_view id, std::set<std::string>* seen) {
  if (id.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, "[", index, "]: id must not be empty"));
  }
  if (id.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, "[", index, "]: id must not contain NUL"));
  }
  if (!seen->insert(std::string(id)).second) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, "[", index, "]: ", Quote(id), " is put twice"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateMutation(const Mutation& m) {
  if (m.audit_event.has_value() && m.audit_event->revision() != m.revision) {
    return absl::InvalidArgumentError(
        absl::StrCat("audit_event.revision: is ", m.audit_event->revision(),
                     ", must equal the mutation's revision ", m.revision));
  }
  std::set<std::string> key_ids;
  for (size_t i = 0; i < m.put_keys.size(); ++i) {
    const v1::Key& key = m.put_keys[i].key();
    if (key.key_id().empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("put_keys[", i, "].key.key_id: must not be empty"));
    }
    if (!key_ids.insert(key.key_id()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("put_keys[", i, "].key.key_id: ", Quote(key.key_id()),
                       " is put twice"));
    }
    if (key.organization_id().find('\0') != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "put_keys[", i, "].key.organization_id: must not contain NUL"));
    }
    for (int j = 0; j < m.put_keys[i].secrets_size(); ++j) {
      const std::string& sha256 = m.put_keys[i].secrets(j).sha256();
      if (sha256.size() != kSha256Size) {
        return absl::InvalidArgumentError(
            absl::StrCat("put_keys[", i, "].secrets[", j,
                         "].sha256: must be 32 bytes, is ", sha256.size()));
      }
    }
  }
  std::set<std::string> app_ids;
  for (size_t i = 0; i < m.put_apps.size(); ++i) {
    SK_RETURN_IF_ERROR(
        CheckId("put_apps", i, m.put_apps[i].app_id(), &app_ids));
  }
  std::set<std::string> installation_ids;
  for (size_t i = 0; i < m.put_installations.size(); ++i) {
    SK_RETURN_IF_ERROR(CheckId("put_installations", i,
                               m.put_installations[i].installation_id(),
                               &installation_ids));
  }
  return absl::OkStatus();
}

absl::Status CheckLimit(int limit) {
  if (limit <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("limit: must be positive, is ", limit));
  }
  return absl::OkStatus();
}

absl::Status HashTakenError(absl::string_view sha256, absl::string_view owner) {
  return absl::AlreadyExistsError(
      absl::StrCat("secret hash ", absl::BytesToHexString(sha256),
                   " already belongs to key ", Quote(owner)));
}

bool IsLater(const google::protobuf::Timestamp& a,
             const google::protobuf::Timestamp& b) {
  return a.seconds() != b.seconds() ? a.seconds() > b.seconds()
                                    : a.nanos() > b.nanos();
}

bool MatchesAuditFilter(const AuditFilter& filter,
                        const v1::AuditEvent& event) {
  return (filter.key_id.empty() || event.key_id() == filter.key_id) &&
         (filter.organization_id.empty() ||
          event.organization_id() == filter.organization_id);
}

}  // namespace scopekeeper::storage
