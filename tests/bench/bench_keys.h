// Benchmark fixtures shared by the start-up and uncached-decision
// benchmarks: a RocksDB data directory holding the RxScale policy and N keys
// shaped like those Admin.CreateKey makes.
#ifndef SCOPEKEEPER_TESTS_BENCH_BENCH_KEYS_H_
#define SCOPEKEEPER_TESTS_BENCH_BENCH_KEYS_H_

#include <string>

#include "proto/scopekeeper/v1/scopekeeper.pb.h"

namespace scopekeeper::bench {

inline constexpr char kPolicyFile[] = "examples/policies/rxscale.json";

// BenchSecret() is the secret of key `i` of a BenchDataDir().
std::string BenchSecret(int i);

// BenchRequest() is an Authorize of `GET .../pharmacy_orders/ord_123` on the
// External Pharmacy API (needs orders_read, which every bench key has), with
// a fixed trace id and no key.
v1::AuthorizeRequest BenchRequest();

// BenchDataDir() is a data directory holding the RxScale policy and `n`
// keys: a 28-character id, an organization (one of 1000), the External
// Pharmacy API, 4 scope grants, one secret hash (of BenchSecret(i)), a
// display prefix and a create time. Written with unsynced batches (set-up,
// not measured) under $SK_BENCH_DATA if set, where a complete directory is
// reused by later runs (10M keys take minutes to write), else under
// $TEST_TMPDIR or /tmp, once per process. Aborts on failure.
const std::string& BenchDataDir(int n);

}  // namespace scopekeeper::bench

#endif  // SCOPEKEEPER_TESTS_BENCH_BENCH_KEYS_H_
