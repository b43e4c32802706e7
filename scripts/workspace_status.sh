#!/usr/bin/env bash
# Bazel's --workspace_status_command (.bazelrc): the build stamp that
# scopekeeper_build_info and `scopectl --version` report (see bazel/stamp.bzl).
#   STABLE_SCOPEKEEPER_VERSION  the release version, from base/VERSION
#   STABLE_GIT_COMMIT           the commit (12 hex digits), "-dirty" when
#                               tracked files differ from it; "unknown"
#                               outside a git checkout (e.g. a source tarball)
# STABLE_ keys: a change rebuilds what uses them; an unchanged tree stays
# cached. Must not fail: a failing status command fails the build.
cd "$(dirname "$0")/.." || exit 0
version=$(head -n 1 base/VERSION 2>/dev/null | tr -d '[:space:]')
echo "STABLE_SCOPEKEEPER_VERSION ${version:-unknown}"
commit=unknown
# Only this workspace's own checkout: a tarball unpacked inside some other
# repository must not report that repository's commit.
if [[ "$(git rev-parse --show-toplevel 2>/dev/null)" == "$(pwd -P)" ]] &&
  head=$(git rev-parse --short=12 HEAD 2>/dev/null); then
  commit=$head
  if [[ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]]; then
    commit="$commit-dirty"
  fi
fi
echo "STABLE_GIT_COMMIT $commit"
