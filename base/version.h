// The Scopekeeper release version, from one place: the server's
// scopekeeper_build_info metric and `scopectl --version` both read it.
#ifndef SCOPEKEEPER_BASE_VERSION_H_
#define SCOPEKEEPER_BASE_VERSION_H_

#include "absl/strings/string_view.h"

namespace scopekeeper {

// ScopekeeperVersion() is the release version, e.g. "0.1.0". Defined in
// version.cc only, so that a build stamp can replace it in one place.
absl::string_view ScopekeeperVersion();

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_BASE_VERSION_H_
