// Checks every Store implementation makes the same way, so the RocksDB store
// and the in-memory fake answer alike (same codes, same messages).
#ifndef SCOPEKEEPER_STORAGE_MUTATION_CHECK_H_
#define SCOPEKEEPER_STORAGE_MUTATION_CHECK_H_

#include <cstddef>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "storage/store.h"

namespace scopekeeper::storage {

// Size of a SecretHash.sha256.
inline constexpr size_t kSha256Size = 32;

// ValidateMutation() makes the checks of `m` that need no stored state:
// audit event revision, non-empty unique key/app/installation ids, no NUL in
// index components, 32-byte secret hashes. INVALID_ARGUMENT naming the field.
absl::Status ValidateMutation(const Mutation& m);

// CheckLimit() is INVALID_ARGUMENT unless `limit` > 0.
absl::Status CheckLimit(int limit);

// HashTakenError() is the ALREADY_EXISTS error for a secret hash that
// another key owns.
absl::Status HashTakenError(absl::string_view sha256, absl::string_view owner);

// IsLater() compares timestamps: a after b.
bool IsLater(const google::protobuf::Timestamp& a,
             const google::protobuf::Timestamp& b);

// MatchesAuditFilter() checks the key and organization parts of `filter`
// (after_revision is the caller's scan start).
bool MatchesAuditFilter(const AuditFilter& filter, const v1::AuditEvent& event);

}  // namespace scopekeeper::storage

#endif  // SCOPEKEEPER_STORAGE_MUTATION_CHECK_H_
