// Generate(): a deterministic random generator of differential-test
// scenarios. A scenario puts a random policy (several APIs with and without
// path_prefix, related routes that differ in one literal or {param} segment,
// trailing slashes, every requirement form, redactions, bundles), creates
// keys through the admin operations (grants with and without expiry,
// bundles, installations of apps), then alternates random admin operations
// (grants, revocations, rotations with grace periods, policy and app
// changes after the keys exist), clock moves (onto expiry and grace
// deadlines, and one second either side) and bursts of requests: matches
// and near misses of every kind (one segment off, trailing slash, query
// strings, dot segments, outside the prefix, wrong method, API or
// organization, unknown and altered keys, rotated-out secrets), explicit
// requirements and invalid requests.
#ifndef SCOPEKEEPER_TESTS_ORACLE_GENERATOR_H_
#define SCOPEKEEPER_TESTS_ORACLE_GENERATOR_H_

#include <cstdint>

#include "tests/oracle/scenario.h"

namespace scopekeeper::oracle {

struct GeneratorOptions {
  // Rounds of (admin operations, clock move, requests) after the setup.
  int min_rounds = 3;
  int max_rounds = 10;
  // Requests per round, at most.
  int max_requests_per_round = 40;
};

// Generate() returns the scenario of `seed`; the same seed (and options)
// always gives the same scenario. Its app ids include the seed, so the
// scenarios of distinct seeds can share one server.
Scenario Generate(uint64_t seed, const GeneratorOptions& options = {});

}  // namespace scopekeeper::oracle

#endif  // SCOPEKEEPER_TESTS_ORACLE_GENERATOR_H_
