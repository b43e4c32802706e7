// EtcdCluster (testonly): a real etcd cluster of 1 or 3 members
// (/usr/bin/etcd, from scripts/install_deps.sh) on free loopback ports,
// with data directories under a temporary root (TEST_TMPDIR in tests).
//
// Each member runs in its own process group and gets SIGKILL when the
// thread that started it exits (PR_SET_PDEATHSIG), so a crashed test leaves
// no etcd behind; the destructor SIGKILLs and reaps every member. Start,
// Restart and the destructor must run on the same thread (the test's main
// thread), or the death signal fires when a helper thread exits.
//
// Readiness is checked with real calls: a member is up when its
// Maintenance.Status answers with a leader; polling is bounded by a
// deadline (no fixed sleeps).
#ifndef SCOPEKEEPER_STORAGE_ETCD_TESTING_ETCD_CLUSTER_H_
#define SCOPEKEEPER_STORAGE_ETCD_TESTING_ETCD_CLUSTER_H_

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "storage/etcd/etcd_client.h"

namespace scopekeeper::storage::etcd::testing {

class EtcdCluster {
 public:
  struct Options {
    int members = 1;  // 1 or 3
    // Extra etcd flags for every member, e.g. "--auto-compaction-retention=1".
    std::vector<std::string> flags;
    // Parent of the data directories; TEST_TMPDIR (or /tmp) when empty.
    std::string root;
    // TLS on the client port when set: a directory with ca.pem,
    // server.pem, server-key.pem (for 127.0.0.1) and client.pem,
    // client-key.pem; members then require client certificates, and
    // Client() presents client.pem.
    std::string tls_dir;
    // How long Start()/Restart() wait for the members to be ready.
    absl::Duration start_timeout = absl::Seconds(60);
  };

  // Start() starts every member and waits until each reports a leader.
  static absl::StatusOr<std::unique_ptr<EtcdCluster>> Start(
      const Options& options);

  // Kills (SIGKILL) and reaps every running member.
  ~EtcdCluster();
  EtcdCluster(const EtcdCluster&) = delete;
  EtcdCluster& operator=(const EtcdCluster&) = delete;

  int size() const { return static_cast<int>(members_.size()); }
  // "127.0.0.1:<port>" of member `i`'s client URL / of every member.
  std::string endpoint(int i) const;
  std::vector<std::string> endpoints() const;
  const std::string& data_dir(int i) const { return members_[i].data_dir; }
  bool running(int i) const { return members_[i].pid > 0; }

  // Kill() sends SIGKILL to member `i` and reaps it.
  void Kill(int i);
  // Stop() sends SIGTERM and waits until the member exited (SIGKILL after
  // 10 s).
  void Stop(int i);
  // Restart() starts a stopped member again on its data directory and
  // ports, and waits until it is ready (when `wait_ready`; a member alone
  // without its quorum never is).
  absl::Status Restart(int i, bool wait_ready = true);

  // WaitReady() polls member `i` until its Status call reports a leader.
  absl::Status WaitReady(int i, absl::Duration timeout);

  // Client() is an EtcdClient for the given endpoints (all when empty),
  // with `options` for everything else.
  absl::StatusOr<std::unique_ptr<EtcdClient>> Client(
      EtcdClient::Options options = {},
      std::vector<std::string> endpoints = {}) const;

 private:
  struct Member {
    std::string name;
    std::string data_dir;
    int client_port = 0;
    int peer_port = 0;
    pid_t pid = -1;
  };

  explicit EtcdCluster(const Options& options) : options_(options) {}
  absl::Status Spawn(int i, bool first_start);

  const Options options_;
  std::string token_;  // --initial-cluster-token
  std::string initial_cluster_;
  std::vector<Member> members_;
};

// MakeTestCertificates() writes what Options::tls_dir needs into the
// existing directory `dir`: a CA (ca.pem), a server certificate for
// 127.0.0.1 (server.pem, server-key.pem) and a client certificate
// (client.pem, client-key.pem), valid for a day (openssl CLI).
absl::Status MakeTestCertificates(const std::string& dir);

}  // namespace scopekeeper::storage::etcd::testing

#endif  // SCOPEKEEPER_STORAGE_ETCD_TESTING_ETCD_CLUSTER_H_
