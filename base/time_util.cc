#include "base/time_util.h"

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"

namespace scopekeeper {
namespace {
using ::google::protobuf::util::TimeUtil;
// 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z
constexpr int64_t kMinSeconds = TimeUtil::kTimestampMinSeconds;
constexpr int64_t kMaxSeconds = TimeUtil::kTimestampMaxSeconds;
// Ours, far below protobuf's 10,000 years: grace periods and grants.
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
