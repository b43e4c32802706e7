// Checks of admin requests that several registry operations share. Each
// returns INVALID_ARGUMENT naming the offending field, or OK.
#ifndef SCOPEKEEPER_SERVER_REGISTRY_VALIDATION_H_
#define SCOPEKEEPER_SERVER_REGISTRY_VALIDATION_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/message.h"
#include "google/protobuf/repeated_ptr_field.h"
#include "google/protobuf/timestamp.pb.h"
#include "server/policy/names.h"
#include "server/policy/policy.h"

namespace scopekeeper {

// Limits on admin requests.
inline constexpr int kMaxApisPerKey = 64;
inline constexpr int kMaxBundlesPerKey = 64;
inline constexpr int kDefaultPageSize = 100;
inline constexpr int kMaxPageSize = 1000;

// ValidateBundles() checks bundle names: at most kMaxBundlesPerKey, each
// well-formed and, unless `allow_undeclared`, defined by `policy`.
absl::Status ValidateBundles(
    const PolicySnapshot& policy,
    const google::protobuf::RepeatedPtrField<std::string>& bundles,
    absl::string_view field, bool allow_undeclared);

// ValidateScopeChange() checks a GrantScopes or RevokeScopes request: its
// key_id and the scopes and bundles it names (at least one; `verb` says
// which change it is, for the message).
template <typename Request>
absl::Status ValidateScopeChange(const PolicySnapshot& policy,
                                 const Request& request, absl::string_view verb,
                                 bool allow_undeclared) {
  absl::Status status = ValidateId("key_id", request.key_id());
  if (!status.ok()) return status;
  if (request.scopes_size() == 0 && request.bundles_size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("scopes: name at least one scope or bundle to ", verb));
  }
  status =
      ValidateScopeList(policy, request.scopes(), "scopes", allow_undeclared);
  if (!status.ok()) return status;
  return ValidateBundles(policy, request.bundles(), "bundles",
                         allow_undeclared);
}

// ValidateFutureTime() checks an expiry given in a request: a valid
// timestamp after `now`.
absl::Status ValidateFutureTime(absl::string_view field,
                                const google::protobuf::Timestamp& t,
                                absl::Time now);

// PageSize() is the page size a List request asks for: kDefaultPageSize
// for 0, at most kMaxPageSize; INVALID_ARGUMENT when negative.
absl::StatusOr<int> PageSize(int32_t requested);

// AddUnique() appends `value` unless `list` holds it.
void AddUnique(google::protobuf::RepeatedPtrField<std::string>* list,
               const std::string& value);

// AuditDetail() is the JSON summary of a request for an audit event
// (original field names; "{}" if it cannot be printed). Never pass a
// message holding a secret.
std::string AuditDetail(const google::protobuf::Message& message);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_REGISTRY_VALIDATION_H_
