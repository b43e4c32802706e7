// Uncached decisions (issue #7: p99 < 1 ms at 10M keys): every Authorize
// misses the key cache (a bounded cache of one entry, as with
// --key_cache_capacity=1) and reads the key from RocksDB opened as the server
// opens it (bloom filters, 64 MiB block cache), then compiles it and offers it
// back to the cache. Keys are picked uniformly at random. Reports the mean
// (Google Benchmark's time) and p50/p99/p99.9/max of each call. Run with:
//   SK_BENCH_DATA=/var/tmp/sk-bench bazel run --config=opt \
//       //tests/bench:uncached_bench
// (SK_BENCH_DATA keeps the written key sets for later runs; see
// bench_keys.h). For a cold OS page cache as well, drop it first:
//   sync; echo 3 > /proc/sys/vm/drop_caches
#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "base/clock.h"
#include "benchmark/benchmark.h"
#include "server/decision/decision_engine.h"
#include "server/decision/serving_state.h"
#include "server/metrics/metrics.h"
#include "server/policy/policy.h"
#include "storage/rocksdb_store.h"
#include "tests/bench/bench_keys.h"

namespace scopekeeper {
namespace {

std::unique_ptr<storage::RocksDbStore> OpenOrDie(int n) {
  auto opened = storage::RocksDbStore::Open({.path = bench::BenchDataDir(n)});
  if (!opened.ok()) abort();
  return *std::move(opened);
}

struct Fixture {
  explicit Fixture(int n) : keys(n), store(OpenOrDie(n)) {
    auto policy = ReadPolicyFile(bench::kPolicyFile);
    if (!policy.ok()) abort();
    auto revision = store->Revision();
    if (!revision.ok()) abort();
    auto snapshot = PolicySnapshot::Compile(*policy, *revision);
    if (!snapshot.ok()) abort();
    serving.set_policy(*snapshot);
    serving.PublishRevision(*revision);
  }

  const int keys;
  std::unique_ptr<storage::RocksDbStore> store;
  ServingState serving{/*key_cache_capacity=*/1};
  FakeClock clock;
  Metrics metrics;  // recorded on every decision, as in the server
  UsageTracker usage{store.get()};
  DecisionEngine engine{&serving, store.get(), &clock, &usage, &metrics};
};

void ReportPercentiles(std::vector<int64_t>* nanos, benchmark::State& state) {
  if (nanos->empty()) return;
  std::sort(nanos->begin(), nanos->end());
  const auto at = [&](double q) {
    const size_t i =
        std::min(nanos->size() - 1, static_cast<size_t>(q * nanos->size()));
    return static_cast<double>((*nanos)[i]) / 1000.0;
  };
  state.counters["p50_us"] = at(0.50);
  state.counters["p99_us"] = at(0.99);
  state.counters["p999_us"] = at(0.999);
  state.counters["max_us"] = static_cast<double>(nanos->back()) / 1000.0;
}

// `known`: present keys (allowed) or absent ones (KEY_INVALID, answered by
// the bloom filters).
void RunUncached(benchmark::State& state, bool known) {
  Fixture f(static_cast<int>(state.range(0)));
  v1::AuthorizeRequest request = bench::BenchRequest();
  v1::AuthorizeResponse response;
  absl::BitGen gen;
  std::vector<int64_t> nanos;
  nanos.reserve(1 << 20);
  int64_t expected = 0;
  for (auto _ : state) {
    const int i = absl::Uniform(gen, 0, f.keys);
    request.set_api_key(known ? bench::BenchSecret(i)
                              : bench::BenchSecret(i) + "_absent");
    response.Clear();
    const auto start = std::chrono::steady_clock::now();
    const absl::Status status =
        f.engine.Authorize(request, &response);
    nanos.push_back(std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now() - start)
                        .count());
    if (!status.ok()) {
      state.SkipWithError("Authorize failed");
      break;
    }
    expected +=
        known ? response.allowed() : response.reason() == v1::KEY_INVALID;
  }
  if (expected != static_cast<int64_t>(state.iterations())) {
    state.SkipWithError("a decision differs from the key set");
  }
  if (f.serving.cache().size() > 1) {
    state.SkipWithError("the cache grew past its capacity");
  }
  ReportPercentiles(&nanos, state);
  state.SetItemsProcessed(state.iterations());
}

void BM_AuthorizeUncached(benchmark::State& state) { RunUncached(state, true); }
void BM_AuthorizeUncachedUnknownKey(benchmark::State& state) {
  RunUncached(state, false);
}
BENCHMARK(BM_AuthorizeUncached)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Arg(10'000'000)
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_AuthorizeUncachedUnknownKey)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Arg(10'000'000)
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace scopekeeper

BENCHMARK_MAIN();
