#include "tests/bench/bench_keys.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "server/policy/key_secret.h"
#include "server/policy/policy.h"
#include "storage/rocksdb_store.h"

namespace scopekeeper::bench {
namespace {

constexpr int kKeysPerMutation = 1000;
constexpr char kCompleteMarker[] = "BENCH_COMPLETE";

void Die(const std::string& what) {
  std::fprintf(stderr, "bench_keys: %s\n", what.c_str());
  std::abort();
}

void WriteKeys(const std::string& dir, int n) {
  std::filesystem::remove_all(dir);
  auto store = storage::RocksDbStore::Open({.path = dir, .sync_writes = false});
  if (!store.ok()) Die(store.status().ToString());
  auto policy = ReadPolicyFile(kPolicyFile);
  if (!policy.ok()) Die(policy.status().ToString());
  uint64_t revision = 0;
  storage::Mutation first;
  first.revision = ++revision;
  first.put_policy = *policy;
  if (!(*store)->Commit(first).ok()) Die("policy write failed");
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
          std::string(HashSecret(BenchSecret(done)).view()));
    }
    if (!(*store)->Commit(m).ok()) Die("key write failed");
  }
  std::ofstream(absl::StrCat(dir, "/", kCompleteMarker)) << n << "\n";
}

}  // namespace

std::string BenchSecret(int i) {
  return absl::StrCat("rxs_ph_bench", i, "_padding0123456789");
}

v1::AuthorizeRequest BenchRequest() {
  v1::AuthorizeRequest request;
  request.set_trace_id("bench");
  request.mutable_http()->set_api("external-pharmacy");
  request.mutable_http()->set_method("GET");
  request.mutable_http()->set_path(
      "/v1/external-pharmacy-api-v1/pharmacy_orders/ord_123?expand=items");
  return request;
}

const std::string& BenchDataDir(int n) {
  static auto* dirs = new std::map<int, std::string>();
  std::string& dir = (*dirs)[n];
  if (!dir.empty()) return dir;
  if (const char* shared = std::getenv("SK_BENCH_DATA")) {
    dir = absl::StrCat(shared, "/keys_", n);
    if (std::filesystem::exists(absl::StrCat(dir, "/", kCompleteMarker))) {
      return dir;
    }
  } else {
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir = absl::StrCat(tmp != nullptr ? tmp : "/tmp", "/bench_keys_", getpid(),
                       "_", n);
  }
  WriteKeys(dir, n);
  return dir;
}

}  // namespace scopekeeper::bench
