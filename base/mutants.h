// Mutants: deliberately wrong variants of the decision path, to prove that
// the differential test of //tests/oracle catches each of them. A hook reads
// `if (SK_MUTANT(kBundlesIgnored)) ...`. Only a build with
// -DSCOPEKEEPER_MUTANTS has the switch (//bazel:mutants.bzl builds a test
// binary that way); everywhere else SK_MUTANT(name) is the constant false,
// so production code holds no switch and no mutant behaviour.
#ifndef SCOPEKEEPER_BASE_MUTANTS_H_
#define SCOPEKEEPER_BASE_MUTANTS_H_

#ifdef SCOPEKEEPER_MUTANTS

#include <atomic>

namespace scopekeeper::mutants {

enum class Mutant {
  kNone,
  kParamBeatsLiteral,         // route_table.cc: {param} tried before literal
  kTrailingSlashSignificant,  // route_table.cc: "/a/" does not match "/a"
  kQueryNotDropped,           // route_table.cc: "?query" kept in the path
  kPrefixNotAtBoundary,       // decision_engine.cc: "/v1/apix" under "/v1/api"
  kAnyOfAsAllOf,              // decision_engine.cc: any_of needs every scope
  kRedactionIgnored,          // decision_engine.cc: no redactions
  kOrganizationNotChecked,    // decision_engine.cc: no ORGANIZATION_MISMATCH
  kGraceNeverEnds,            // decision_engine.cc: rotated secrets stay valid
  kKeyExpiryIgnored,          // decision_engine.cc: expired keys stay valid
  kBundlesIgnored,            // compiled_key.cc: bundles grant nothing
  kGrantExpiryIgnored,        // compiled_key.cc: timed grants never expire
  kApprovedNotRequested,      // compiled_key.cc: approved, not ∩ requested
};

// The active mutant; kNone: the code as written. One at a time.
inline std::atomic<Mutant> active{Mutant::kNone};

inline void SetActive(Mutant m) { active.store(m, std::memory_order_relaxed); }
inline bool Active(Mutant m) {
  return active.load(std::memory_order_relaxed) == m;
}

}  // namespace scopekeeper::mutants

#define SK_MUTANT(name) \
  (::scopekeeper::mutants::Active(::scopekeeper::mutants::Mutant::name))

#else  // !SCOPEKEEPER_MUTANTS

#define SK_MUTANT(name) false

#endif  // SCOPEKEEPER_MUTANTS

#endif  // SCOPEKEEPER_BASE_MUTANTS_H_
