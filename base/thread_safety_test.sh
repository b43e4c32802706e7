#!/usr/bin/env bash
# Checks that clang's thread-safety analysis, as `--config=clang` runs it,
# rejects the lock mistakes in base/testdata/thread_safety_errors.cc and
# accepts the correct forms beside them: clang's -verify fails unless
# exactly the diagnostics marked in the file appear. Guards base/mutex.h and
# base/rw_mutex.h: an annotation lost there would silence the analysis
# everywhere without failing any build.
# Usage: thread_safety_test.sh ERRORS_CC (a runfiles path; headers are found
# from the runfiles root, the current directory).
set -euo pipefail

clang=/usr/bin/clang++
if [[ ! -x "$clang" ]]; then
  echo "thread_safety_test.sh: $clang is missing; run scripts/install_deps.sh" >&2
  exit 1
fi
"$clang" -std=c++17 -fsyntax-only -Wthread-safety -Xclang -verify -I. "$1"
echo "PASS: every expected thread-safety diagnostic, and no other"
