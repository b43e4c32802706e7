#include "storage/etcd/etcd_status.h"

#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace scopekeeper::storage::etcd {

absl::Status EtcdError(const grpc::Status& status, absl::string_view operation,
                       absl::string_view endpoint) {
  if (status.ok()) return absl::OkStatus();
  // grpc::StatusCode and absl::StatusCode share their values (0..16).
  const int code = static_cast<int>(status.error_code());
  const absl::StatusCode absl_code = code >= 0 && code <= 16
                                         ? static_cast<absl::StatusCode>(code)
                                         : absl::StatusCode::kUnknown;
  std::string message = status.error_message();
  if (message.empty()) message = "(no message)";
  return absl::Status(absl_code, absl::StrCat("etcd ", operation, " at ",
                                              endpoint, ": ", message));
}

bool IsInvalidAuthToken(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::UNAUTHENTICATED &&
         absl::StrContains(status.error_message(), "invalid auth token");
}

}  // namespace scopekeeper::storage::etcd
