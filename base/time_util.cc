#include "base/time_util.h"

#include "absl/strings/str_cat.h"

namespace scopekeeper {
namespace {
constexpr int64_t kMinSeconds = -62135596800;  // 0001-01-01T00:00:00Z
constexpr int64_t kMaxSeconds = 253402300799;  // 9999-12-31T23:59:59Z
constexpr int64_t kMaxDurationSeconds = 10 * 366 * 86400;
}  // namespace

absl::Status ValidateProtoTime(absl::string_view field,
                               const google::protobuf::Timestamp& t) {
  if (t.seconds() < kMinSeconds || t.seconds() > kMaxSeconds || t.nanos() < 0 ||
      t.nanos() >= 1'000'000'000) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": timestamp out of range"));
  }
  return absl::OkStatus();
}

absl::Status ValidateProtoDuration(absl::string_view field,
                                   const google::protobuf::Duration& d) {
  if (d.seconds() < 0 || d.nanos() < 0 || d.nanos() >= 1'000'000'000 ||
      d.seconds() > kMaxDurationSeconds) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": duration must be between 0 and ", kMaxDurationSeconds, "s"));
  }
  return absl::OkStatus();
}

}  // namespace scopekeeper
