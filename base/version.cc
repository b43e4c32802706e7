#include "base/version.h"

namespace scopekeeper {
namespace build_stamp {
// Defined in the generated version_stamp.cc (//base:version_stamp).
extern const char kStampedVersion[];
extern const char kStampedCommit[];
}  // namespace build_stamp

namespace {

absl::string_view OrUnknown(const char* stamped) {
  return stamped[0] != '\0' ? absl::string_view(stamped) : "unknown";
}

}  // namespace

absl::string_view ScopekeeperVersion() {
  return OrUnknown(build_stamp::kStampedVersion);
}

absl::string_view ScopekeeperCommit() {
  return OrUnknown(build_stamp::kStampedCommit);
}

}  // namespace scopekeeper
