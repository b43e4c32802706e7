// Decision-path benchmarks: SHA-256 of the presented key + cache lookup +
// route match + requirement + redactions, with the RxScale policy and N keys
// in the cache. Run with:
//   bazel run --config=opt //tests/bench:decision_bench --
//   --benchmark_min_time=1
#include <benchmark/benchmark.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "server/decision/compiled_key.h"
#include "server/decision/decision_engine.h"
#include "server/decision/serving_state.h"
#include "server/metrics/metrics.h"
#include "server/policy/key_secret.h"
#include "server/policy/policy.h"
#include "storage/memory_store.h"
#include "tests/bench/bench_keys.h"

namespace scopekeeper {
namespace {

// A serving state with `n` keys valid for the External Pharmacy API, each
// holding orders_read + stock_read + 2 more scopes. Built directly into the
// cache (as Registry::Load() does) so set-up stays fast at 1M keys.
struct Fixture {
  explicit Fixture(int n) {
    auto policy = ReadPolicyFile(bench::kPolicyFile);
    if (!policy.ok()) abort();
    auto snapshot = PolicySnapshot::Compile(*policy, 1);
    if (!snapshot.ok()) abort();
    state.set_policy(*snapshot);
    secrets.reserve(n);
    for (int i = 0; i < n; ++i) {
      storage::KeyRecord record;
      v1::Key* key = record.mutable_key();
      key->set_key_id(absl::StrCat("key_", i));
      key->set_organization_id(absl::StrCat("org_", i % 1000));
      key->add_apis("external-pharmacy");
      key->set_status(v1::ACTIVE);
      for (const char* scope :
           {"orders_read", "stock_read", "webhooks_read", "orders_write"}) {
        key->add_grants()->set_scope(scope);
      }
      secrets.push_back(bench::BenchSecret(i));
      state.cache().Upsert(HashSecret(secrets.back()),
                           {CompileKey(record, **snapshot, *state.apps()),
                            absl::InfiniteFuture()});
    }
    state.PublishRevision(1);
  }

  FakeClock clock;
  storage::MemoryStore store;
  ServingState state;
  Metrics metrics;  // recorded on every decision, as in the server
  UsageTracker usage{&store};
  DecisionEngine engine{&state, &store, &clock, &usage, &metrics};
  std::vector<std::string> secrets;
};

Fixture& FixtureFor(int n) {
  // One fixture per size, kept across benchmarks (building 1M keys is slow).
  static auto* fixtures = new std::map<int, std::unique_ptr<Fixture>>();
  auto& f = (*fixtures)[n];
  if (f == nullptr) f = std::make_unique<Fixture>(n);
  return *f;
}

void BM_AuthorizeHttpCached(benchmark::State& state) {
  Fixture& f = FixtureFor(static_cast<int>(state.range(0)));
  // Requests pick keys in a scattered order, so at 1M keys the cache entries
  // are not in the CPU caches, as in a server. The requests themselves are
  // (a server has just parsed them off the wire): they are built in batches
  // of kBatch outside the timed region, each with the next scattered key.
  constexpr int kBatch = 512;
  std::vector<v1::AuthorizeRequest> requests(kBatch, bench::BenchRequest());
  v1::AuthorizeResponse response;
  const size_t n = f.secrets.size();
  uint64_t next_key = 0;
  int next = kBatch;
  int64_t allowed = 0;
  for (auto _ : state) {
    if (next == kBatch) {
      state.PauseTiming();
      for (v1::AuthorizeRequest& request : requests) {
        request.set_api_key(f.secrets[(next_key++ * 7919) % n]);
      }
      next = 0;
      state.ResumeTiming();
    }
    response.Clear();
    if (!f.engine.Authorize(requests[next++], &response)
             .ok()) {
      state.SkipWithError("Authorize failed");
      break;
    }
    allowed += response.allowed();
  }
  if (allowed != static_cast<int64_t>(state.iterations())) {
    state.SkipWithError("a decision was not allowed");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AuthorizeHttpCached)->Arg(100'000)->Arg(1'000'000);

void BM_AuthorizeUnknownKey(benchmark::State& state) {
  // Misses the cache and falls back to the (in-memory) store.
  Fixture& f = FixtureFor(100'000);
  v1::AuthorizeRequest request;
  request.set_api_key("rxs_ph_not_a_real_key_0123456789abcdef");
  request.set_trace_id("bench");
  request.mutable_requirement()->add_all_of("orders_read");
  v1::AuthorizeResponse response;
  for (auto _ : state) {
    response.Clear();
    benchmark::DoNotOptimize(
        f.engine.Authorize(request, &response));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AuthorizeUnknownKey);

// BatchAuthorize as the server runs it, minus HTTP/2: parse the request
// bytes, decide every entry, serialize the response. Items are decisions.
void BM_BatchAuthorizeWire(benchmark::State& state) {
  Fixture& f = FixtureFor(100'000);
  const int batch = static_cast<int>(state.range(0));
  const size_t n = f.secrets.size();
  // A few distinct request payloads, each with scattered keys.
  constexpr int kPayloads = 16;
  std::vector<std::string> payloads;
  uint64_t next_key = 0;
  for (int p = 0; p < kPayloads; ++p) {
    v1::BatchAuthorizeRequest request;
    for (int i = 0; i < batch; ++i) {
      v1::AuthorizeRequest* r = request.add_requests();
      r->set_api_key(f.secrets[(next_key++ * 7919) % n]);
      r->mutable_http()->set_api("external-pharmacy");
      r->mutable_http()->set_method("GET");
      r->mutable_http()->set_path(
          "/v1/external-pharmacy-api-v1/pharmacy_orders/ord_123");
    }
    payloads.push_back(request.SerializeAsString());
  }
  int64_t allowed = 0;
  size_t bytes_out = 0;
  int p = 0;
  for (auto _ : state) {
    google::protobuf::Arena arena;
    auto* request =
        google::protobuf::Arena::CreateMessage<v1::BatchAuthorizeRequest>(
            &arena);
    auto* response =
        google::protobuf::Arena::CreateMessage<v1::BatchAuthorizeResponse>(
            &arena);
    if (!request->ParseFromString(payloads[p++ % kPayloads])) {
      state.SkipWithError("parse failed");
      break;
    }
    if (!f.engine.BatchAuthorize(*request, response)
             .ok()) {
      state.SkipWithError("BatchAuthorize failed");
      break;
    }
    bytes_out += response->SerializeAsString().size();
    for (const v1::AuthorizeResponse& r : response->responses()) {
      allowed += r.allowed();
    }
  }
  if (allowed != static_cast<int64_t>(state.iterations()) * batch) {
    state.SkipWithError("a decision was not allowed");
  }
  benchmark::DoNotOptimize(bytes_out);
  state.SetItemsProcessed(state.iterations() * batch);
}
BENCHMARK(BM_BatchAuthorizeWire)->Arg(10)->Arg(100)->Arg(1000);

void BM_HashSecret(benchmark::State& state) {
  const std::string secret = "rxs_ph_0123456789ABCDEFGHIJKLMNOPQRSTUV";
  for (auto _ : state) benchmark::DoNotOptimize(HashSecret(secret));
}
BENCHMARK(BM_HashSecret);

}  // namespace
}  // namespace scopekeeper

BENCHMARK_MAIN();
