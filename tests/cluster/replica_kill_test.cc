// SIGKILL one of three replica processes (the real scopekeeper binary) under
// client load: a C++ client given every replica's address sees no failed
// decision beyond the calls in flight on the killed one (with its retries,
// none at all), and every decision is right.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <iterator>
#include <memory>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/client.h"
#include "gtest/gtest.h"
#include "storage/etcd/testing/etcd_cluster.h"
#include "tests/cluster/cluster_testing.h"

namespace scopekeeper::testing {
namespace {

constexpr char kServer[] = "server/scopekeeper";
constexpr char kToken[] = "kill-test-admin-token-2b6f9d0e4c7a8135";

// A scopekeeper process; SIGKILLed when the test's main thread exits.
class ReplicaProcess {
 public:
  ReplicaProcess(std::vector<std::string> args, std::string log)
      : args_(std::move(args)), log_(std::move(log)) {}
  ~ReplicaProcess() { Kill(); }

  bool Start() {
    std::vector<char*> argv;
    for (std::string& a : args_) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = getpid();
    pid_ = fork();
    if (pid_ < 0) return false;
    if (pid_ == 0) {
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(1);
      const int fd = open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        dup2(fd, STDERR_FILENO);
        dup2(fd, STDOUT_FILENO);
        close(fd);
      }
      execv(kServer, argv.data());
      _exit(127);
    }
    return true;
  }

  // Address() polls the log (bounded) for "listening on HOST:PORT".
  std::string Address(absl::Duration timeout) {
    const absl::Time deadline = absl::Now() + timeout;
    const std::regex listening("listening on ([0-9.]+:[0-9]+)");
    while (absl::Now() < deadline) {
      std::ifstream in(log_);
      const std::string text((std::istreambuf_iterator<char>(in)), {});
      std::smatch m;
      if (std::regex_search(text, m, listening)) return m[1];
      if (waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        ADD_FAILURE() << "replica exited:\n" << text;
        return "";
      }
      absl::SleepFor(absl::Milliseconds(20));  // waiting on a process
    }
    return "";
  }

  void Kill() {
    if (pid_ <= 0) return;
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  std::vector<std::string> args_;
  std::string log_;
  pid_t pid_ = -1;
};

TEST(ReplicaKillTest, ClientWithEveryReplicaSeesNoFailedDecision) {
  const std::string dir = absl::StrCat(getenv("TEST_TMPDIR"), "/kill");
  mkdir(dir.c_str(), 0700);
  storage::etcd::testing::EtcdCluster::Options etcd_options;
  etcd_options.root = dir;
  absl::StatusOr<std::unique_ptr<storage::etcd::testing::EtcdCluster>> etcd =
      storage::etcd::testing::EtcdCluster::Start(etcd_options);
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  std::ofstream(dir + "/admin_token") << kToken << "\n";
  chmod((dir + "/admin_token").c_str(), 0600);  // token files are private
  std::ofstream(dir + "/policy.json") << kClusterPolicyJson;

  std::vector<std::unique_ptr<ReplicaProcess>> replicas;
  std::vector<std::string> addresses;
  for (int i = 0; i < 3; ++i) {
    const std::string data = absl::StrCat(dir, "/replica", i);
    replicas.push_back(std::make_unique<ReplicaProcess>(
        std::vector<std::string>{
            kServer, "--listen=127.0.0.1:0", "--data_dir=" + data,
            "--admin_token_file=" + dir + "/admin_token",
            "--policy_file=" + dir + "/policy.json",
            "--etcd_endpoints=" + absl::StrJoin((*etcd)->endpoints(), ","),
            "--max_staleness=3s"},
        data + ".log"));
    ASSERT_TRUE(replicas.back()->Start());
    // One at a time: the first applies the policy, the others find it.
    addresses.push_back(replicas.back()->Address(absl::Seconds(30)));
    ASSERT_FALSE(addresses.back().empty());
  }

  ConnectionOptions connection;
  connection.address = absl::StrJoin(addresses, ",");
  connection.admin_token = kToken;
  ClientOptions client_options;
  client_options.timeout = absl::Seconds(3);
  client_options.max_attempts = 5;
  Client client(MakeGrpcConnection(connection), client_options);

  std::vector<v1::CreateKeyResponse> keys;
  for (int i = 0; i < 20; ++i) {
    v1::CreateKeyRequest create;
    create.set_organization_id("org_a");
    create.add_apis("api");
    if (i % 2 == 0) create.add_scopes("s0");  // odd keys lack it
    absl::StatusOr<v1::CreateKeyResponse> k = client.CreateKey(create);
    ASSERT_TRUE(k.ok()) << k.status();
    keys.push_back(*k);
  }
  const uint64_t revision = keys.back().revision();

  std::atomic<bool> stop{false};
  std::atomic<int> decisions{0}, failed{0}, wrong{0};
  std::vector<std::thread> threads;
  constexpr int kThreads = 4;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = t; !stop.load(); ++i) {
        const v1::CreateKeyResponse& key = keys[i % keys.size()];
        v1::AuthorizeRequest request;
        request.set_api_key(key.secret());
        request.mutable_requirement()->add_all_of("s0");
        request.set_min_revision(revision);
        const Decision d = client.Authorize(request);
        ++decisions;
        if (!d.status.ok()) {
          ++failed;
        } else if (d.allowed != (i % keys.size() % 2 == 0)) {
          ++wrong;
        }
      }
    });
  }
  auto wait_for = [&](int n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    while (decisions.load() < n && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(10));  // the load runs meanwhile
    }
    return decisions.load() >= n;
  };
  EXPECT_TRUE(wait_for(500));
  replicas[0]->Kill();  // the first address: pick_first would use it
  const int at_kill = decisions.load();
  EXPECT_TRUE(wait_for(at_kill + 2000));
  stop = true;
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
  // At most the calls in flight on the killed replica; the client retries
  // those on another one, so in practice none.
  EXPECT_LE(failed.load(), kThreads);
  RecordProperty("decisions", decisions.load());
  RecordProperty("failed", failed.load());
}

}  // namespace
}  // namespace scopekeeper::testing
