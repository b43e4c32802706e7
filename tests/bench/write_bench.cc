// Write-path benchmarks: Registry::GrantScopes on a real RocksDbStore with
// synced writes, from 1 and from 64 threads (each thread grants on its own
// key). Measures durable mutations per second end to end below gRPC:
// validation, read-for-update, the synced write and the serving-state update.
// Run with:
//   bazel run --config=opt //tests/bench:write_bench -- --benchmark_min_time=2
// The store lives in a fresh directory under $TEST_TMPDIR (or /tmp) on the
// file system being measured: fsync latency dominates.
#include <benchmark/benchmark.h>
#include <stdlib.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "server/decision/serving_state.h"
#include "server/registry/registry.h"
#include "storage/rocksdb_store.h"

namespace scopekeeper {
namespace {

constexpr int kMaxThreads = 64;
constexpr absl::string_view kActor = "bench";

v1::Policy BenchPolicy() {
  v1::Policy policy;
  for (const char* scope : {"orders_read", "orders_write", "stock_write"}) {
    policy.add_scopes()->set_name(scope);
  }
  v1::Api* api = policy.add_apis();
  api->set_name("pharmacy");
  api->set_key_prefix("rx_ph");
  v1::Route* route = api->add_routes();
  route->set_method("GET");
  route->set_path("/orders/{uid}");
  route->mutable_requirement()->add_all_of("orders_read");
  return policy;
}

// One store, registry and kMaxThreads keys, shared by every benchmark.
struct Fixture {
  Fixture() {
    const char* tmp = std::getenv("TEST_TMPDIR");
    std::string dir =
        absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/write_bench.XXXXXX");
    if (mkdtemp(dir.data()) == nullptr) abort();
    path = dir;
    storage::RocksDbStore::Options options;
    options.path = absl::StrCat(dir, "/db");
    auto opened = storage::RocksDbStore::Open(options);
    if (!opened.ok()) abort();
    store = *std::move(opened);
    usage = std::make_unique<UsageTracker>(store.get());
    registry =
        std::make_unique<Registry>(store.get(), &state, &clock, usage.get());
    if (!registry->Load().ok()) abort();
    if (!registry->PutPolicy(BenchPolicy(), kActor).ok()) abort();
    for (int i = 0; i < kMaxThreads; ++i) {
      v1::CreateKeyRequest request;
      request.set_organization_id("org_bench");
      request.set_name(absl::StrCat("bench key ", i));
      request.add_apis("pharmacy");
      request.add_scopes("orders_read");
      auto created = registry->CreateKey(request, kActor);
      if (!created.ok()) abort();
      key_ids.push_back(created->key().key_id());
    }
  }
  ~Fixture() {
    registry.reset();
    store.reset();
    std::error_code ignored;
    std::filesystem::remove_all(path, ignored);
  }

  std::string path;
  FakeClock clock;
  ServingState state;
  std::unique_ptr<storage::RocksDbStore> store;
  std::unique_ptr<UsageTracker> usage;
  std::unique_ptr<Registry> registry;
  std::vector<std::string> key_ids;
};

Fixture& SharedFixture() {
  static auto* fixture = new Fixture();  // never destroyed: outlives threads
  return *fixture;
}

void BM_GrantScopesConcurrent(benchmark::State& state) {
  Fixture& f = SharedFixture();
  v1::GrantScopesRequest request;
  request.set_key_id(f.key_ids[state.thread_index() % kMaxThreads]);
  int64_t i = 0;
  for (auto _ : state) {
    request.clear_scopes();
    request.add_scopes(i++ % 2 == 0 ? "orders_write" : "stock_write");
    absl::StatusOr<v1::Key> key = f.registry->GrantScopes(request, kActor);
    if (!key.ok()) {
      state.SkipWithError(std::string(key.status().message()).c_str());
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_GrantScopesConcurrent)
    ->Threads(1)
    ->Threads(64)
    ->UseRealTime()
    ->MeasureProcessCPUTime();

}  // namespace
}  // namespace scopekeeper

BENCHMARK_MAIN();
