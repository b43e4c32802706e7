// cluster_bench: the cluster's figures (docs/BENCHMARKS.md, "Cluster on
// etcd"), each against real etcd members on loopback ports started here
// (the EtcdCluster test harness) and in-process servers:
//
//   --mode=revocation_lag   3 etcd members, replicas A and B, Authorize load
//                           on B; RevokeKey returns on A -> first denial on
//                           B (polled), over --revocations revocations.
//   --mode=writes           durable GrantScopes, 1 and 64 writers (each on
//                           its own key), Registry below gRPC: a replica on
//                           3 etcd members vs the embedded RocksDB store.
//   --mode=cold_start       --keys keys written to 1 etcd member, then a
//                           replica's start (snapshot load) timed.
//   --mode=authorize_rps    Authorize over gRPC, --threads synchronous
//                           clients for --seconds: a replica on 3 etcd
//                           members vs the single-node server.
//
// bazel build --config=opt //tests/bench:cluster_bench
// bazel-bin/tests/bench/cluster_bench --mode=revocation_lag
#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/clock.h"
#include "proto/scopekeeper/v1/scopekeeper.grpc.pb.h"
#include "server/cluster/testing/test_replica.h"
#include "server/registry/registry.h"
#include "server/server.h"
#include "storage/etcd/testing/etcd_cluster.h"
#include "storage/rocksdb_store.h"

ABSL_FLAG(std::string, mode, "revocation_lag",
          "revocation_lag | writes | cold_start | authorize_rps");
ABSL_FLAG(int, revocations, 200, "revocation_lag: revocations measured");
ABSL_FLAG(int, load_threads, 4,
          "revocation_lag: threads deciding on replica B meanwhile");
ABSL_FLAG(double, seconds, 10, "writes, authorize_rps: seconds per run");
ABSL_FLAG(int, keys, 1000000, "cold_start: keys in etcd");
ABSL_FLAG(int, threads, 16, "authorize_rps: client threads");

namespace scopekeeper {
namespace {

using Cluster = storage::etcd::testing::EtcdCluster;
using Clock = std::chrono::steady_clock;

constexpr char kActor[] = "bench";
constexpr char kToken[] = "cluster-bench-admin-token-7e41a09c3b58d2f6";

[[noreturn]] void Die(const std::string& what) {
  std::fprintf(stderr, "cluster_bench: %s\n", what.c_str());
  std::exit(1);
}
template <typename T>
T OrDie(absl::StatusOr<T> v, const std::string& what) {
  if (!v.ok()) Die(absl::StrCat(what, ": ", v.status().ToString()));
  return *std::move(v);
}
void OrDie(const absl::Status& s, const std::string& what) {
  if (!s.ok()) Die(absl::StrCat(what, ": ", s.ToString()));
}

std::string Dir(const std::string& name) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string dir =
      absl::StrCat(tmp ? tmp : "/tmp", "/cluster_bench.", name, ".XXXXXX");
  if (mkdtemp(dir.data()) == nullptr) Die("mkdtemp");
  return dir;
}

v1::Policy Policy() {
  v1::Policy policy;
  for (const char* s : {"orders_read", "orders_write", "stock_write"}) {
    policy.add_scopes()->set_name(s);
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

std::unique_ptr<Cluster> StartEtcd(int members, const std::string& root,
                                   std::vector<std::string> flags = {}) {
  Cluster::Options options;
  options.members = members;
  options.root = root;
  options.flags = std::move(flags);
  return OrDie(Cluster::Start(options), "etcd");
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(p * v.size()));
  return v[i];
}

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// A server (single node or replica) and stubs.
struct Server {
  std::unique_ptr<ScopekeeperServer> server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Authorizer::Stub> authorizer;
  std::unique_ptr<v1::Admin::Stub> admin;
};

Server StartServer(const std::string& dir, const std::string& name,
                   std::vector<std::string> etcd) {
  std::ofstream(dir + "/token") << kToken << "\n";
  chmod((dir + "/token").c_str(), 0600);  // token files are private
  {
    std::ofstream policy(dir + "/policy.json");
    policy << R"({"scopes":[{"name":"orders_read"},{"name":"orders_write"},)"
           << R"({"name":"stock_write"}],"apis":[{"name":"pharmacy",)"
           << R"("keyPrefix":"rx_ph","routes":[{"method":"GET","path":)"
           << R"("/orders/{uid}","requirement":{"allOf":["orders_read"]}}]}]})";
  }
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.data_dir = absl::StrCat(dir, "/", name);
  options.admin_token_file = dir + "/token";
  options.policy_file = dir + "/policy.json";
  options.server_threads = 2;
  options.cluster.etcd_endpoints = std::move(etcd);
  Server s;
  s.server = OrDie(ScopekeeperServer::Start(options), "server " + name);
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // own connection
  s.channel = grpc::CreateCustomChannel(
      s.server->address(), grpc::InsecureChannelCredentials(), args);
  s.authorizer = v1::Authorizer::NewStub(s.channel);
  s.admin = v1::Admin::NewStub(s.channel);
  return s;
}

v1::CreateKeyResponse CreateKey(Server& on) {
  grpc::ClientContext context;
  context.AddMetadata("authorization", absl::StrCat("Bearer ", kToken));
  v1::CreateKeyRequest request;
  request.set_organization_id("org_bench");
  request.add_apis("pharmacy");
  request.add_scopes("orders_read");
  v1::CreateKeyResponse response;
  const grpc::Status status = on.admin->CreateKey(&context, request, &response);
  if (!status.ok()) Die("CreateKey: " + status.error_message());
  return response;
}

// Authorize() decides `secret` for GET /orders/o1; the status's code, and
// whether it was allowed.
grpc::Status Authorize(Server& on, const std::string& secret, bool* allowed,
                       uint64_t min_revision = 0) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  v1::AuthorizeRequest request;
  request.set_api_key(secret);
  request.mutable_http()->set_api("pharmacy");
  request.mutable_http()->set_method("GET");
  request.mutable_http()->set_path("/orders/o1");
  request.set_min_revision(min_revision);
  v1::AuthorizeResponse response;
  grpc::Status status = on.authorizer->Authorize(&context, request, &response);
  *allowed = status.ok() && response.allowed();
  return status;
}

void RevocationLag() {
  const std::string dir = Dir("revocation");
  std::unique_ptr<Cluster> etcd = StartEtcd(3, dir);
  Server a = StartServer(dir, "a", etcd->endpoints());
  Server b = StartServer(dir, "b", etcd->endpoints());
  // Keys the load decides with (allowed).
  std::vector<std::string> load_keys;
  uint64_t revision = 0;
  for (int i = 0; i < 100; ++i) {
    v1::CreateKeyResponse k = CreateKey(a);
    load_keys.push_back(k.secret());
    revision = k.revision();
  }
  std::atomic<bool> stop{false};
  std::atomic<int64_t> load_decisions{0}, load_errors{0};
  std::vector<std::thread> load;
  for (int t = 0; t < absl::GetFlag(FLAGS_load_threads); ++t) {
    load.emplace_back([&, t] {
      for (size_t i = t; !stop.load(); ++i) {
        bool allowed = false;
        if (!Authorize(b, load_keys[i % load_keys.size()], &allowed, revision)
                 .ok() ||
            !allowed) {
          ++load_errors;
        }
        ++load_decisions;
      }
    });
  }
  const auto load_start = Clock::now();
  std::vector<double> lags_ms;
  int64_t polls = 0;
  for (int i = 0; i < absl::GetFlag(FLAGS_revocations); ++i) {
    v1::CreateKeyResponse key = CreateKey(a);
    bool allowed = false;
    if (!Authorize(b, key.secret(), &allowed, key.revision()).ok() ||
        !allowed) {
      Die("new key not allowed on B");
    }
    grpc::ClientContext context;
    context.AddMetadata("authorization", absl::StrCat("Bearer ", kToken));
    v1::RevokeKeyRequest revoke;
    revoke.set_key_id(key.key().key_id());
    v1::Key revoked;
    const grpc::Status status = a.admin->RevokeKey(&context, revoke, &revoked);
    const auto returned = Clock::now();
    if (!status.ok()) Die("RevokeKey: " + status.error_message());
    // First denial on B (no min_revision): poll until it says so.
    while (true) {
      ++polls;
      const grpc::Status s = Authorize(b, key.secret(), &allowed);
      if (!s.ok()) Die("Authorize on B: " + s.error_message());
      if (!allowed) break;
    }
    lags_ms.push_back(Ms(Clock::now() - returned));
  }
  const double load_seconds =
      std::chrono::duration<double>(Clock::now() - load_start).count();
  stop = true;
  for (std::thread& t : load) t.join();
  std::printf(
      "revocation_lag: %zu revocations, RevokeKey returned on A -> first "
      "denial on B: p50 %.2f ms, p99 %.2f ms, max %.2f ms; %.2f polls per "
      "revocation; load on B: %d threads, %.0f decisions/s, %lld errors\n",
      lags_ms.size(), Percentile(lags_ms, 0.5), Percentile(lags_ms, 0.99),
      Percentile(lags_ms, 1.0), static_cast<double>(polls) / lags_ms.size(),
      absl::GetFlag(FLAGS_load_threads), load_decisions.load() / load_seconds,
      static_cast<long long>(load_errors.load()));
}

// Writes: GrantScopes from `threads` threads for the configured seconds.
void MeasureWrites(const std::string& label, Registry& registry,
                   const std::vector<std::string>& key_ids, int threads) {
  std::atomic<bool> stop{false};
  std::vector<std::vector<double>> latencies(threads);
  std::atomic<int64_t> errors{0};
  std::vector<std::thread> writers;
  const auto start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    writers.emplace_back([&, t] {
      v1::GrantScopesRequest request;
      request.set_key_id(key_ids[t]);
      for (int64_t i = 0; !stop.load(); ++i) {
        request.clear_scopes();
        request.add_scopes(i % 2 == 0 ? "orders_write" : "stock_write");
        const auto begin = Clock::now();
        if (!registry.GrantScopes(request, kActor).ok()) ++errors;
        latencies[t].push_back(Ms(Clock::now() - begin));
      }
    });
  }
  std::this_thread::sleep_for(
      std::chrono::duration<double>(absl::GetFlag(FLAGS_seconds)));
  stop = true;
  for (std::thread& t : writers) t.join();
  const double seconds =
      std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::printf(
      "writes: %-26s c%-3d %8.0f writes/s  p50 %6.2f ms  p99 %6.2f ms  "
      "errors %lld\n",
      label.c_str(), threads, all.size() / seconds, Percentile(all, 0.5),
      Percentile(all, 0.99), static_cast<long long>(errors.load()));
}

std::vector<std::string> MakeKeys(Registry& registry, int n) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) {
    v1::CreateKeyRequest request;
    request.set_organization_id("org_bench");
    request.add_apis("pharmacy");
    request.add_scopes("orders_read");
    ids.push_back(
        OrDie(registry.CreateKey(request, kActor), "CreateKey").key().key_id());
  }
  return ids;
}

void Writes() {
  {
    const std::string dir = Dir("writes_rocksdb");
    storage::RocksDbStore::Options options;
    options.path = dir + "/db";
    std::unique_ptr<storage::RocksDbStore> store =
        OrDie(storage::RocksDbStore::Open(options), "rocksdb");
    ServingState state;
    UsageTracker usage(store.get());
    Registry registry(store.get(), &state, SystemClock::Get(), &usage);
    OrDie(registry.Load(), "load");
    OrDie(registry.PutPolicy(Policy(), kActor).status(), "policy");
    const std::vector<std::string> keys = MakeKeys(registry, 64);
    MeasureWrites("embedded RocksDB", registry, keys, 1);
    MeasureWrites("embedded RocksDB", registry, keys, 64);
  }
  {
    const std::string dir = Dir("writes_etcd");
    std::unique_ptr<Cluster> etcd = StartEtcd(3, dir);
    ReplicaOptions options;
    options.etcd_endpoints = etcd->endpoints();
    std::unique_ptr<testing::TestReplica> replica =
        OrDie(testing::TestReplica::Start(options), "replica");
    OrDie(replica->registry->PutPolicy(Policy(), kActor).status(), "policy");
    const std::vector<std::string> keys = MakeKeys(*replica->registry, 64);
    MeasureWrites("replica, 3 etcd members", *replica->registry, keys, 1);
    MeasureWrites("replica, 3 etcd members", *replica->registry, keys, 64);
  }
}

int64_t MaxRssKb() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

void ColdStart() {
  const int n = absl::GetFlag(FLAGS_keys);
  const std::string dir = Dir("cold_start");
  std::unique_ptr<Cluster> etcd =
      StartEtcd(1, dir, {"--quota-backend-bytes=8589934592"});
  ReplicaOptions options;
  options.etcd_endpoints = etcd->endpoints();
  options.etcd_call_timeout = absl::Seconds(30);
  {
    // Write the keys straight into the store, 40 per transaction, 4
    // writers (a replica's CreateKey would take one transaction each).
    auto client = std::shared_ptr<storage::etcd::EtcdClient>(
        OrDie(etcd->Client(), "client"));
    storage::EtcdStore::Options store_options;
    std::unique_ptr<storage::EtcdStore> store =
        OrDie(storage::EtcdStore::Open(client, store_options), "store");
    storage::Mutation policy;
    policy.put_policy = Policy();
    OrDie(store->WriteGuarded(policy).status(), "policy");
    const auto start = Clock::now();
    std::vector<std::thread> writers;
    std::atomic<int> next{0};
    for (int w = 0; w < 4; ++w) {
      writers.emplace_back([&] {
        while (true) {
          const int first = next.fetch_add(40);
          if (first >= n) return;
          storage::Mutation m;
          for (int i = first; i < std::min(n, first + 40); ++i) {
            storage::KeyRecord& r = m.put_keys.emplace_back();
            r.mutable_key()->set_key_id(absl::StrFormat("key_%024d", i));
            r.mutable_key()->set_organization_id(
                absl::StrCat("org_", i % 1000));
            r.mutable_key()->add_apis("pharmacy");
            r.mutable_key()->set_status(v1::ACTIVE);
            for (const char* s :
                 {"orders_read", "orders_write", "stock_write"}) {
              r.mutable_key()->add_grants()->set_scope(s);
            }
            r.add_secrets()->set_sha256(std::string(
                HashSecret(absl::StrCat("rx_ph_secret_", i)).view()));
          }
          OrDie(store->WriteGuarded(m).status(), "load keys");
        }
      });
    }
    for (std::thread& t : writers) t.join();
    std::printf("cold_start: wrote %d keys into etcd in %.1f s\n", n,
                std::chrono::duration<double>(Clock::now() - start).count());
  }
  const int64_t rss_before = MaxRssKb();
  const auto start = Clock::now();
  std::unique_ptr<testing::TestReplica> replica =
      OrDie(testing::TestReplica::Start(options), "replica");
  const double seconds =
      std::chrono::duration<double>(Clock::now() - start).count();
  std::printf(
      "cold_start: replica loaded %zu cached secrets from etcd and serves in "
      "%.2f s (max RSS grew %.0f MB)\n",
      replica->state.cache().size(), seconds,
      (MaxRssKb() - rss_before) / 1024.0);
  absl::StatusOr<v1::AuthorizeResponse> decided =
      replica->Check(absl::StrCat("rx_ph_secret_", n - 1), {"orders_read"});
  if (!decided.ok() || !decided->allowed()) {
    Die(absl::StrCat("a loaded key does not decide: ",
                     decided.status().ToString()));
  }
  // A policy change: every cached key is recompiled from one scan.
  v1::Policy changed = Policy();
  changed.add_scopes()->set_name("webhooks_read");
  const auto put_start = Clock::now();
  OrDie(replica->registry->PutPolicy(changed, kActor).status(), "policy");
  const double put_seconds =
      std::chrono::duration<double>(Clock::now() - put_start).count();
  while (replica->replica->applier()->recompiling()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  std::printf(
      "cold_start: PutPolicy on that replica returned in %.3f s; its "
      "background recompile of every cached key (one scan) took %.2f s\n",
      put_seconds,
      std::chrono::duration<double>(Clock::now() - put_start).count());
  std::unique_ptr<storage::etcd::EtcdClient> client =
      OrDie(etcd->Client(), "client");
  absl::StatusOr<storage::etcd::MemberStatus> member = client->Status("");
  if (member.ok()) {
    std::printf("cold_start: etcd backend %.0f MB for %d keys\n",
                member->db_size / 1048576.0, n);
  }
}

void AuthorizeRpsOn(const std::string& label, Server& server) {
  std::vector<std::string> secrets;
  uint64_t revision = 0;
  for (int i = 0; i < 1000; ++i) {
    v1::CreateKeyResponse k = CreateKey(server);
    secrets.push_back(k.secret());
    revision = k.revision();
  }
  bool allowed = false;
  Authorize(server, secrets.back(), &allowed, revision);
  std::atomic<bool> stop{false};
  const int threads = absl::GetFlag(FLAGS_threads);
  std::vector<std::vector<double>> latencies(threads);
  std::atomic<int64_t> errors{0};
  std::vector<std::thread> clients;
  const auto start = Clock::now();
  for (int t = 0; t < threads; ++t) {
    clients.emplace_back([&, t] {
      for (size_t i = t; !stop.load(); i += threads) {
        bool allowed = false;
        const auto begin = Clock::now();
        if (!Authorize(server, secrets[i % secrets.size()], &allowed).ok() ||
            !allowed) {
          ++errors;
        }
        latencies[t].push_back(Ms(Clock::now() - begin));
      }
    });
  }
  std::this_thread::sleep_for(
      std::chrono::duration<double>(absl::GetFlag(FLAGS_seconds)));
  stop = true;
  for (std::thread& t : clients) t.join();
  const double seconds =
      std::chrono::duration<double>(Clock::now() - start).count();
  std::vector<double> all;
  for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
  std::printf(
      "authorize_rps: %-28s c%-3d %8.0f req/s  p50 %6.3f ms  p99 %6.3f ms  "
      "errors %lld\n",
      label.c_str(), threads, all.size() / seconds, Percentile(all, 0.5),
      Percentile(all, 0.99), static_cast<long long>(errors.load()));
}

void AuthorizeRps() {
  const std::string dir = Dir("rps");
  {
    Server single = StartServer(dir, "single", {});
    AuthorizeRpsOn("single node (RocksDB)", single);
  }
  std::unique_ptr<Cluster> etcd = StartEtcd(3, dir);
  Server replica = StartServer(dir, "replica", etcd->endpoints());
  AuthorizeRpsOn("replica (3 etcd members)", replica);
  {
    Server single = StartServer(dir, "single2", {});
    AuthorizeRpsOn("single node again", single);
  }
}

}  // namespace
}  // namespace scopekeeper

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode == "revocation_lag") {
    scopekeeper::RevocationLag();
  } else if (mode == "writes") {
    scopekeeper::Writes();
  } else if (mode == "cold_start") {
    scopekeeper::ColdStart();
  } else if (mode == "authorize_rps") {
    scopekeeper::AuthorizeRps();
  } else {
    scopekeeper::Die("--mode: unknown " + mode);
  }
  return 0;
}
