// Start-up and memory: how long Registry::Load() takes to fill the key cache
// from a RocksDB data directory of N keys, and how much resident memory the
// loaded cache costs per key (issue #7: <= 2 s and <= 200 B/key at 1M keys
// with 4 scopes). Each key is shaped like one Admin.CreateKey makes: a
// 28-character id, an organization, one API, 4 scope grants, one secret
// hash, a display prefix and a create time. Run with:
//   bazel run --config=opt //tests/bench:startup_bench -- \
//       --benchmark_filter=/1000000
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "benchmark/benchmark.h"
#include "server/clock.h"
#include "server/key_secret.h"
#include "server/policy.h"
#include "server/registry.h"
#include "server/serving_state.h"
#include "storage/rocksdb_store.h"

namespace scopekeeper {
namespace {

constexpr char kPolicyFile[] = "examples/policies/rxscale.json";
constexpr int kKeysPerMutation = 1000;

// ResidentBytes() is this process's resident set size.
size_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  size_t pages_total = 0, pages_resident = 0;
  statm >> pages_total >> pages_resident;
  return pages_resident * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// A data directory holding the RxScale policy and `n` keys, written once per
// process and size (unsynced batches of kKeysPerMutation keys: set-up, not
// measured).
const std::string& DataDirWith(int n) {
  static auto* dirs = new std::map<int, std::string>();
  std::string& dir = (*dirs)[n];
  if (!dir.empty()) return dir;
  const char* tmp = std::getenv("TEST_TMPDIR");
  dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/startup_bench_", getpid(),
                     "_", n);
  std::filesystem::remove_all(dir);
  auto store = storage::RocksDbStore::Open({.path = dir, .sync_writes = false});
  if (!store.ok()) abort();
  auto policy = ReadPolicyFile(kPolicyFile);
  if (!policy.ok()) abort();
  uint64_t revision = 0;
  storage::Mutation first;
  first.revision = ++revision;
  first.put_policy = *policy;
  if (!(*store)->Commit(first).ok()) abort();
  google::protobuf::Timestamp created;
  created.set_seconds(1'800'000'000);
  for (int done = 0; done < n;) {
    storage::Mutation m;
    m.revision = ++revision;
    for (int i = 0; i < kKeysPerMutation && done < n; ++i, ++done) {
      storage::KeyRecord& record = m.put_keys.emplace_back();
      v1::Key* key = record.mutable_key();
      key->set_key_id(absl::StrFormat("key_%024x", done));
      key->set_organization_id(absl::StrCat("org_", done % 1000));
      key->add_apis("external-pharmacy");
      for (const char* scope :
           {"orders_read", "stock_read", "webhooks_read", "orders_write"}) {
        key->add_grants()->set_scope(scope);
      }
      key->set_status(v1::ACTIVE);
      *key->mutable_create_time() = created;
      key->set_display_prefix("rxs_ph_AbCd");
      key->set_revision(revision);
      record.add_secrets()->set_sha256(
          std::string(HashSecret(absl::StrCat("secret", done)).view()));
    }
    if (!(*store)->Commit(m).ok()) abort();
  }
  return dir;
}

void BM_LoadKeys(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  const std::string& dir = DataDirWith(n);
  double seconds = 0;
  double bytes_per_key = 0;
  for (auto _ : state) {
    const size_t rss_before = ResidentBytes();
    const absl::Time start = absl::Now();
    auto store = storage::RocksDbStore::Open({.path = dir});
    if (!store.ok()) {
      state.SkipWithError("open failed");
      return;
    }
    auto serving = std::make_unique<ServingState>();
    SystemClock clock;
    Registry registry(store->get(), serving.get(), &clock);
    if (!registry.Load().ok()) {
      state.SkipWithError("Load failed");
      return;
    }
    seconds = absl::ToDoubleSeconds(absl::Now() - start);
    if (serving->cache().size() != static_cast<size_t>(n)) {
      state.SkipWithError("cache size differs from the key count");
      return;
    }
    bytes_per_key = static_cast<double>(ResidentBytes() - rss_before) /
                    static_cast<double>(n);
    state.SetIterationTime(seconds);
  }
  state.counters["load_s"] = seconds;
  state.counters["rss_bytes_per_key"] = bytes_per_key;
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
