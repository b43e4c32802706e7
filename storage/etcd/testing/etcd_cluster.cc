#include "storage/etcd/testing/etcd_cluster.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"

namespace scopekeeper::storage::etcd::testing {
namespace {

constexpr char kEtcd[] = "/usr/bin/etcd";

// FreePort() asks the kernel for a free loopback port. Another process
// could take it before etcd binds it; Start() then fails clearly.
absl::StatusOr<int> FreePort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return absl::InternalError("socket() failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  address.sin_port = 0;
  socklen_t length = sizeof(address);
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    close(fd);
    return absl::InternalError("bind() to a free port failed");
  }
  close(fd);
  return ntohs(address.sin_port);
}

std::string Url(int port, bool tls = false) {
  return absl::StrCat(tls ? "https" : "http", "://127.0.0.1:", port);
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// Reap() waits for `pid` with WNOHANG until it exited or `timeout` passed.
bool Reap(pid_t pid, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (true) {
    const pid_t done = waitpid(pid, nullptr, WNOHANG);
    if (done == pid || (done < 0 && errno == ECHILD)) return true;
    if (absl::Now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

}  // namespace

absl::StatusOr<std::unique_ptr<EtcdCluster>> EtcdCluster::Start(
    const Options& options) {
  if (options.members != 1 && options.members != 3) {
    return absl::InvalidArgumentError("members: must be 1 or 3");
  }
  if (access(kEtcd, X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(kEtcd, " not found: run scripts/install_deps.sh"));
  }
  std::string root = options.root;
  if (root.empty()) {
    const char* tmp = getenv("TEST_TMPDIR");
    root = tmp != nullptr ? tmp : "/tmp";
  }
  std::string dir = root + "/etcd.XXXXXX";
  if (mkdtemp(dir.data()) == nullptr) {
    return absl::InternalError(absl::StrCat("mkdtemp ", dir, " failed"));
  }
  std::unique_ptr<EtcdCluster> cluster(new EtcdCluster(options));
  cluster->token_ = dir.substr(dir.rfind('.') + 1);
  std::vector<std::string> peers;
  for (int i = 0; i < options.members; ++i) {
    Member member;
    member.name = absl::StrCat("m", i);
    member.data_dir = absl::StrCat(dir, "/", member.name);
    SK_ASSIGN_OR_RETURN(member.client_port, FreePort());
    SK_ASSIGN_OR_RETURN(member.peer_port, FreePort());
    peers.push_back(absl::StrCat(member.name, "=", Url(member.peer_port)));
    cluster->members_.push_back(std::move(member));
  }
  cluster->initial_cluster_ = absl::StrJoin(peers, ",");
  for (int i = 0; i < options.members; ++i) {
    SK_RETURN_IF_ERROR(cluster->Spawn(i, /*first_start=*/true));
  }
  for (int i = 0; i < options.members; ++i) {
    SK_RETURN_IF_ERROR(cluster->WaitReady(i, options.start_timeout));
  }
  return cluster;
}

EtcdCluster::~EtcdCluster() {
  for (int i = 0; i < size(); ++i) Kill(i);
}

std::string EtcdCluster::endpoint(int i) const {
  return absl::StrCat("127.0.0.1:", members_[i].client_port);
}

std::vector<std::string> EtcdCluster::endpoints() const {
  std::vector<std::string> out;
  for (int i = 0; i < size(); ++i) out.push_back(endpoint(i));
  return out;
}

absl::Status EtcdCluster::Spawn(int i, bool first_start) {
  Member& m = members_[i];
  const bool tls = !options_.tls_dir.empty();
  std::vector<std::string> args = {
      kEtcd,
      "--name=" + m.name,
      "--data-dir=" + m.data_dir,
      "--listen-client-urls=" + Url(m.client_port, tls),
      "--advertise-client-urls=" + Url(m.client_port, tls),
      "--listen-peer-urls=" + Url(m.peer_port),
      "--initial-advertise-peer-urls=" + Url(m.peer_port),
      "--initial-cluster=" + initial_cluster_,
      "--initial-cluster-token=" + token_,
      std::string("--initial-cluster-state=") +
          (first_start ? "new" : "existing"),
      "--logger=zap",
      "--log-outputs=stderr",
      "--log-level=warn",
  };
  if (tls) {
    const std::string& d = options_.tls_dir;
    args.push_back("--cert-file=" + d + "/server.pem");
    args.push_back("--key-file=" + d + "/server-key.pem");
    args.push_back("--trusted-ca-file=" + d + "/ca.pem");
    args.push_back("--client-cert-auth");
  }
  args.insert(args.end(), options_.flags.begin(), options_.flags.end());
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const std::string log = m.data_dir + ".log";
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork() failed");
  if (pid == 0) {
    // Child: own process group, dies with the starting thread, logs to
    // <data_dir>.log.
    setpgid(0, 0);
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent) _exit(1);
    const int fd = open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, STDOUT_FILENO);
      dup2(fd, STDERR_FILENO);
      close(fd);
    }
    execv(kEtcd, argv.data());
    _exit(127);
  }
  setpgid(pid, pid);  // also here: no window where a kill misses it
  m.pid = pid;
  return absl::OkStatus();
}

void EtcdCluster::Kill(int i) {
  Member& m = members_[i];
  if (m.pid <= 0) return;
  kill(-m.pid, SIGKILL);
  kill(m.pid, SIGKILL);
  Reap(m.pid, absl::Seconds(30));
  m.pid = -1;
}

void EtcdCluster::Stop(int i) {
  Member& m = members_[i];
  if (m.pid <= 0) return;
  kill(m.pid, SIGTERM);
  if (!Reap(m.pid, absl::Seconds(10))) {
    Kill(i);
    return;
  }
  m.pid = -1;
}

absl::Status EtcdCluster::Restart(int i, bool wait_ready) {
  if (running(i)) {
    return absl::FailedPreconditionError(
        absl::StrCat("member ", i, " is running"));
  }
  SK_RETURN_IF_ERROR(Spawn(i, /*first_start=*/false));
  if (!wait_ready) return absl::OkStatus();
  return WaitReady(i, options_.start_timeout);
}

absl::Status EtcdCluster::WaitReady(int i, absl::Duration timeout) {
  EtcdClient::Options options;
  options.call_timeout = absl::Seconds(1);
  options.require_leader = false;
  SK_ASSIGN_OR_RETURN(std::unique_ptr<EtcdClient> client,
                      Client(options, {endpoint(i)}));
  const absl::Time deadline = absl::Now() + timeout;
  absl::Status last = absl::DeadlineExceededError("never polled");
  while (absl::Now() < deadline) {
    if (waitpid(members_[i].pid, nullptr, WNOHANG) == members_[i].pid) {
      members_[i].pid = -1;
      return absl::InternalError(absl::StrCat(
          "etcd member ", i, " exited; see ", members_[i].data_dir, ".log"));
    }
    absl::StatusOr<MemberStatus> status = client->Status(endpoint(i));
    if (status.ok() && status->leader != 0) return absl::OkStatus();
    last =
        status.ok() ? absl::UnavailableError("no leader yet") : status.status();
    // Bounded polling of a real condition; not a synchronisation sleep.
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  return absl::DeadlineExceededError(
      absl::StrCat("etcd member ", i, " not ready within ",
                   absl::FormatDuration(timeout), ": ", last.message()));
}

absl::StatusOr<std::unique_ptr<EtcdClient>> EtcdCluster::Client(
    EtcdClient::Options options, std::vector<std::string> endpoints) const {
  options.endpoints = endpoints.empty() ? this->endpoints() : endpoints;
  if (!options_.tls_dir.empty() && options.ca_pem.empty()) {
    options.ca_pem = ReadFile(options_.tls_dir + "/ca.pem");
    options.cert_pem = ReadFile(options_.tls_dir + "/client.pem");
    options.key_pem = ReadFile(options_.tls_dir + "/client-key.pem");
  }
  return EtcdClient::Create(options);
}

absl::Status MakeTestCertificates(const std::string& dir) {
  std::ofstream script(dir + "/make.sh");
  script << R"sh(set -e
cd "$(dirname "$0")"
K="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
openssl req -x509 $K -keyout ca-key.pem -out ca.pem -days 1 -subj /CN=test-ca
openssl req $K -keyout server-key.pem -out server.csr -subj /CN=etcd
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n' >server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
  -out server.pem -days 1 -extfile server.ext
openssl req $K -keyout client-key.pem -out client.csr -subj /CN=root
printf 'extendedKeyUsage=clientAuth\n' >client.ext
openssl x509 -req -in client.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial \
  -out client.pem -days 1 -extfile client.ext
)sh";
  script.close();
  if (system(("bash " + dir + "/make.sh >/dev/null 2>&1").c_str()) != 0) {
    return absl::InternalError(
        absl::StrCat("making test certificates in ", dir, " failed"));
  }
  return absl::OkStatus();
}

}  // namespace scopekeeper::storage::etcd::testing
