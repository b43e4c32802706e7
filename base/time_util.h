// Conversions between absl::Time/Duration and google.protobuf well-known types.
#ifndef SCOPEKEEPER_BASE_TIME_UTIL_H_
#define SCOPEKEEPER_BASE_TIME_UTIL_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/duration.pb.h"
#include "google/protobuf/timestamp.pb.h"

namespace scopekeeper {

inline absl::Time FromProtoTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

// FromProtoTimeOr() returns `unset` for a default (0) timestamp.
inline absl::Time FromProtoTimeOr(const google::protobuf::Timestamp& t,
                                  absl::Time unset) {
  if (t.seconds() == 0 && t.nanos() == 0) return unset;
  return FromProtoTime(t);
}

inline google::protobuf::Timestamp ToProtoTime(absl::Time t) {
  google::protobuf::Timestamp out;
  const int64_t nanos = absl::ToUnixNanos(t);
  int64_t secs = nanos / 1'000'000'000;
  int64_t rem = nanos % 1'000'000'000;
  if (rem < 0) {
    rem += 1'000'000'000;
    --secs;
  }
  out.set_seconds(secs);
  out.set_nanos(static_cast<int32_t>(rem));
  return out;
}

inline absl::Duration FromProtoDuration(const google::protobuf::Duration& d) {
  return absl::Seconds(d.seconds()) + absl::Nanoseconds(d.nanos());
}

// ValidateProtoTime() checks a timestamp is within protobuf's valid range
// (years 1-9999, nanos in [0, 1e9)); INVALID_ARGUMENT naming `field`.
absl::Status ValidateProtoTime(absl::string_view field,
                               const google::protobuf::Timestamp& t);
// ValidateProtoDuration(): 0 <= d <= 10 years, nanos consistent with seconds.
absl::Status ValidateProtoDuration(absl::string_view field,
                                   const google::protobuf::Duration& d);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_BASE_TIME_UTIL_H_
