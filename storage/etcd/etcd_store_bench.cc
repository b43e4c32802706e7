// Latency of EtcdStore operations against one local etcd member (started by
// the benchmark under $TEST_TMPDIR or /tmp). Loopback, fsync on every
// commit (etcd's WAL): numbers reflect the disk of the machine.
//   bazel run -c opt //storage/etcd:etcd_store_bench -- --benchmark_min_time=2
#include <memory>
#include <string>

#include "benchmark/benchmark.h"
#include "storage/etcd/etcd_store.h"
#include "storage/etcd/testing/etcd_cluster.h"

namespace scopekeeper::storage {
namespace {

struct Fixture {
  std::unique_ptr<etcd::testing::EtcdCluster> cluster;
  std::unique_ptr<EtcdStore> store;
};

Fixture& Get() {
  static Fixture* fixture = [] {
    auto* f = new Fixture;
    f->cluster = *etcd::testing::EtcdCluster::Start({});
    f->store = *EtcdStore::Open(
        std::shared_ptr<etcd::EtcdClient>(*f->cluster->Client()), {});
    return f;
  }();
  return *fixture;
}

KeyRecord Record(const std::string& key_id, char secret) {
  KeyRecord record;
  record.mutable_key()->set_key_id(key_id);
  record.mutable_key()->set_organization_id("org");
  record.mutable_key()->add_grants()->set_scope("read:patients");
  record.add_secrets()->set_sha256(std::string(32, secret));
  return record;
}

void BM_WriteGuardedOneKey(benchmark::State& state) {
  EtcdStore& store = *Get().store;
  uint64_t revision = *store.WriteGuarded({.put_keys = {Record("bench", 'a')}});
  for (auto _ : state) {
    Mutation m;
    m.put_keys = {Record("bench", 'a')};
    m.guards = {Guard{Guard::Kind::kKey, "bench", revision}};
    m.audit_event.emplace().set_action("Bench");
    absl::StatusOr<uint64_t> written = store.WriteGuarded(m);
    if (!written.ok()) state.SkipWithError(written.status().ToString().c_str());
    revision = *written;
  }
}
BENCHMARK(BM_WriteGuardedOneKey)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_GetKeyById(benchmark::State& state) {
  EtcdStore& store = *Get().store;
  (void)store.WriteGuarded({.put_keys = {Record("read", 'r')}});
  for (auto _ : state) benchmark::DoNotOptimize(store.GetKeyById("read"));
}
BENCHMARK(BM_GetKeyById)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_GetKeyBySecretHash(benchmark::State& state) {
  EtcdStore& store = *Get().store;
  (void)store.WriteGuarded({.put_keys = {Record("hash", 'h')}});
  for (auto _ : state) {
    benchmark::DoNotOptimize(store.GetKeyBySecretHash(std::string(32, 'h')));
  }
}
BENCHMARK(BM_GetKeyBySecretHash)->Unit(benchmark::kMicrosecond)->UseRealTime();

void BM_Revision(benchmark::State& state) {
  EtcdStore& store = *Get().store;
  for (auto _ : state) benchmark::DoNotOptimize(store.Revision());
}
BENCHMARK(BM_Revision)->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace scopekeeper::storage

BENCHMARK_MAIN();
