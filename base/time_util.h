// Conversions between absl::Time/Duration and google.protobuf well-known types.
// Not protobuf's TimeUtil conversions: they go through int64 nanoseconds,
// which end in 2262, while a Timestamp (and absl::Time) reaches year 9999.
// Its range constants are used for validation.
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
  const int64_t seconds = absl::ToUnixSeconds(t);  // rounds down
  out.set_seconds(seconds);
  out.set_nanos(static_cast<int32_t>((t - absl::FromUnixSeconds(seconds)) /
                                     absl::Nanoseconds(1)));
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
