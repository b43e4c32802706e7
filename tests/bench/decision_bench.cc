// Decision-path benchmarks: SHA-256 of the presented key + cache lookup +
// route match + requirement + redactions, with the RxScale policy and N keys
// in the cache; and the same decision as the server's Authorize, BatchAuthorize
// and Envoy ext_authz Check handlers make it from the request's bytes. Run
// with:
//   bazel run --config=opt //tests/bench:decision_bench --
//   --benchmark_min_time=1
#include <benchmark/benchmark.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "server/decision/compiled_key.h"
#include "server/decision/decision_engine.h"
#include "server/decision/serving_state.h"
#include "server/gateway/gateway.h"
#include "server/grpc/ext_authz_service.h"
#include "server/grpc/raw_messages.h"
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
    if (!f.engine.Authorize(requests[next++], &response).ok()) {
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
    benchmark::DoNotOptimize(f.engine.Authorize(request, &response));
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
    if (!f.engine.BatchAuthorize(*request, response).ok()) {
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

// One Authorize and one Envoy ext_authz Check as the server handles them,
// minus HTTP/2: the raw request bytes parsed on the thread's arena, decided,
// the answer serialized into a ByteBuffer. The same key, route and policy
// (the External Pharmacy API); Authorize names its API, Check leaves it to
// the policy (by host and path), as tests/load's extauthz section does.
constexpr char kWirePath[] =
    "/v1/external-pharmacy-api-v1/pharmacy_orders/ord_42";

grpc::ByteBuffer ToByteBuffer(const google::protobuf::Message& message) {
  grpc::Slice slice(message.SerializeAsString());
  return grpc::ByteBuffer(&slice, 1);
}

void BM_AuthorizeWire(benchmark::State& state) {
  Fixture& f = FixtureFor(1000);
  v1::AuthorizeRequest request;
  request.set_api_key(f.secrets[7]);
  request.mutable_http()->set_api("external-pharmacy");
  request.mutable_http()->set_method("GET");
  request.mutable_http()->set_path(kWirePath);
  const grpc::ByteBuffer raw_request = ToByteBuffer(request);
  grpc::ByteBuffer raw_response;
  for (auto _ : state) {
    CallArena arena;
    auto* parsed = arena.Create<v1::AuthorizeRequest>();
    auto* response = arena.Create<v1::AuthorizeResponse>();
    if (!ParseRequest(raw_request, parsed).ok() ||
        !f.engine.TryAuthorize(*parsed, response).status.ok() ||
        !response->allowed()) {
      state.SkipWithError("not allowed");
      break;
    }
    SerializeResponse(*response, &raw_response);
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_AuthorizeWire);

// A CheckRequest as Envoy's ext_authz filter fills it: the peers' addresses,
// the request's time, id, method, path, host, scheme and protocol, and its
// headers. Arg 1: every header (Envoy's default); 0: only those the shipped
// deploy/envoy/envoy.yaml lets through (allowed_headers: the credential
// and the request id here).
void BM_ExtAuthzCheckWire(benchmark::State& state) {
  Fixture& f = FixtureFor(1000);
  envoy::service::auth::v3::CheckRequest request;
  auto* attributes = request.mutable_attributes();
  for (auto* peer :
       {attributes->mutable_source(), attributes->mutable_destination()}) {
    auto* address = peer->mutable_address()->mutable_socket_address();
    address->set_address("10.1.2.3");
    address->set_port_value(40000);
  }
  auto* http_request = attributes->mutable_request();
  http_request->mutable_time()->set_seconds(1796428800);
  http_request->mutable_time()->set_nanos(123456789);
  auto* http = http_request->mutable_http();
  http->set_id("14725993211186733543");
  http->set_method("GET");
  http->set_path(kWirePath);
  http->set_host("api.rxscale.com");
  http->set_scheme("https");
  http->set_protocol("HTTP/1.1");
  auto& headers = *http->mutable_headers();
  if (state.range(0) == 1) {
    headers[":authority"] = "api.rxscale.com";
    headers[":method"] = "GET";
    headers[":path"] = kWirePath;
    headers[":scheme"] = "https";
    headers["user-agent"] = "curl/7.88.1";
    headers["accept"] = "*/*";
    headers["x-forwarded-proto"] = "https";
  }
  headers["x-request-id"] = "5f2c1a9e-8f7e-4a43-9a0e-1d7c2f0e6b11";
  headers["authorization"] = absl::StrCat("Bearer ", f.secrets[7]);
  const grpc::ByteBuffer raw_request = ToByteBuffer(request);
  const GatewaySettings settings;
  grpc::ByteBuffer raw_response;
  std::optional<PendingCheck> pending;
  for (auto _ : state) {
    if (!TryAnswerCheck(f.engine, settings, raw_request, &raw_response,
                        &pending)
             .ok() ||
        pending.has_value()) {
      state.SkipWithError("no answer");
      break;
    }
  }
  envoy::service::auth::v3::CheckResponse response;
  if (!ParseRequest(raw_response, &response).ok() ||
      response.status().code() != 0 || !response.has_ok_response()) {
    state.SkipWithError("not allowed");
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_ExtAuthzCheckWire)->Arg(1)->Arg(0);

void BM_HashSecret(benchmark::State& state) {
  const std::string secret = "rxs_ph_0123456789ABCDEFGHIJKLMNOPQRSTUV";
  for (auto _ : state) benchmark::DoNotOptimize(HashSecret(secret));
}
BENCHMARK(BM_HashSecret);

}  // namespace
}  // namespace scopekeeper

BENCHMARK_MAIN();
