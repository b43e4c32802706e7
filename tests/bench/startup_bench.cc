// Start-up and memory: how long Registry::Load() takes to fill the key cache
// from a RocksDB data directory of N keys, and how much resident memory the
// loaded cache costs per key (issue #7: <= 2 s and <= 200 B/key at 1M keys
// with 4 scopes). Each key is shaped like one Admin.CreateKey makes: a
// 28-character id, an organization, one API, 4 scope grants, one secret
// hash, a display prefix and a create time. Run with:
//   bazel run --config=opt //tests/bench:startup_bench -- \
//       --benchmark_filter=/1000000
#include <malloc.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "base/clock.h"
#include "benchmark/benchmark.h"
#include "server/decision/compiled_key.h"
#include "server/decision/serving_state.h"
#include "server/registry/registry.h"
#include "storage/rocksdb_store.h"
#include "tests/bench/bench_keys.h"

namespace scopekeeper {
namespace {

// ResidentBytes() is this process's resident set size.
size_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// HeapBytes() is what malloc has handed out and not taken back (small
// blocks and mmap-ed large ones), without its own free lists.
size_t HeapBytes() {
  const struct mallinfo2 info = mallinfo2();
  return info.uordblks + info.hblkhd;
}

void BM_LoadKeys(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const std::string& dir = bench::BenchDataDir(n);
  double seconds = 0;
  double bytes_per_key = 0;
  double heap_per_key = 0;
  for (auto _ : state) {
    const size_t rss_before = ResidentBytes();
    const size_t heap_before = HeapBytes();
    const absl::Time start = absl::Now();
    auto store = storage::RocksDbStore::Open({.path = dir});
    if (!store.ok()) {
      state.SkipWithError("open failed");
      return;
    }
    auto serving = std::make_unique<ServingState>();
    SystemClock clock;
    UsageTracker usage(store->get());
    Registry registry(store->get(), serving.get(), &clock, &usage);
    if (!registry.Load().ok()) {
      state.SkipWithError("Load failed");
      return;
    }
    seconds = absl::ToDoubleSeconds(absl::Now() - start);
    if (serving->cache().size() != static_cast<size_t>(n)) {
      state.SkipWithError("cache size differs from the key count");
      return;
    }
    heap_per_key =
        static_cast<double>(HeapBytes() - heap_before) / static_cast<double>(n);
    bytes_per_key = static_cast<double>(ResidentBytes() - rss_before) /
                    static_cast<double>(n);
    state.SetIterationTime(seconds);
  }
  state.counters["load_s"] = seconds;
  state.counters["rss_bytes_per_key"] = bytes_per_key;
  // Where they go: bytes malloc hands out (the cache's hash tables, compiled
  // keys and their shared_ptr control blocks, RocksDB's memtable and table
  // readers), and the size of one compiled key object.
  state.counters["heap_bytes_per_key"] = heap_per_key;
  state.counters["compiled_key_bytes"] = sizeof(CompiledKey);
}
// One iteration per size: the second Load() of a process would reuse freed
// memory and make the resident-size delta meaningless.
BENCHMARK(BM_LoadKeys)
    ->Arg(10'000)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Iterations(1)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace scopekeeper

BENCHMARK_MAIN();
