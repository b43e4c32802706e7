#include "base/version.h"

namespace scopekeeper {

absl::string_view ScopekeeperVersion() { return "0.1.0"; }

}  // namespace scopekeeper
