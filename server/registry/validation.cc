#include "server/registry/validation.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/redact.h"
#include "base/status_macros.h"
#include "base/time_util.h"
#include "google/protobuf/util/json_util.h"

namespace scopekeeper {

absl::Status ValidateBundles(
    const PolicySnapshot& policy,
    const google::protobuf::RepeatedPtrField<std::string>& bundles,
    absl::string_view field, bool allow_undeclared) {
  if (bundles.size() > kMaxBundlesPerKey) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": more than ", kMaxBundlesPerKey, " bundles"));
  }
  for (int i = 0; i < bundles.size(); ++i) {
    const std::string item = absl::StrCat(field, "[", i, "]");
    SK_RETURN_IF_ERROR(ValidateScopeName(item, bundles[i]));
    if (!allow_undeclared && policy.FindBundle(bundles[i]) == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(item, ": unknown bundle ", Quote(bundles[i])));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateFutureTime(absl::string_view field,
                                const google::protobuf::Timestamp& t,
                                absl::Time now) {
  SK_RETURN_IF_ERROR(ValidateProtoTime(field, t));
  if (FromProtoTime(t) <= now) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": in the past"));
  }
  return absl::OkStatus();
}

absl::StatusOr<int> PageSize(int32_t requested) {
  if (requested < 0) {
    return absl::InvalidArgumentError("page_size: must not be negative");
  }
  return requested == 0 ? kDefaultPageSize
                        : std::min<int>(requested, kMaxPageSize);
}

void AddUnique(google::protobuf::RepeatedPtrField<std::string>* list,
               const std::string& value) {
  if (std::find(list->begin(), list->end(), value) == list->end()) {
    *list->Add() = value;
  }
}

std::string AuditDetail(const google::protobuf::Message& message) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  if (!google::protobuf::util::MessageToJsonString(message, &out, options)
           .ok()) {
    return "{}";
  }
  return out;
}

}  // namespace scopekeeper
