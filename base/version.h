// The Scopekeeper build's version and commit, from one place: the server's
// scopekeeper_build_info metric, its start-up line and `scopectl --version`
// all read them. Stamped by the build (bazel/stamp.bzl from
// scripts/workspace_status.sh): base/VERSION and the git commit.
#ifndef SCOPEKEEPER_BASE_VERSION_H_
#define SCOPEKEEPER_BASE_VERSION_H_

#include "absl/strings/string_view.h"

namespace scopekeeper {

// ScopekeeperVersion() is the release version, e.g. "0.1.0"; "unknown" when
// the build was not stamped (no --workspace_status_command).
absl::string_view ScopekeeperVersion();

// ScopekeeperCommit() is the git commit built (12 hex digits, with "-dirty"
// when the tree had uncommitted changes); "unknown" outside a git checkout
// (a source tarball) or when the build was not stamped.
absl::string_view ScopekeeperCommit();

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_BASE_VERSION_H_
