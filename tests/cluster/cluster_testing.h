// ClusterFixture (testonly): a real 3-member etcd cluster (or 1) on loopback
// ports and Scopekeeper replicas (ScopekeeperServer, in-process, port 0) on
// it, with generated gRPC stubs for each. The etcd members die with the
// test (see EtcdCluster); the replicas are shut down by the fixture.
#ifndef SCOPEKEEPER_TESTS_CLUSTER_CLUSTER_TESTING_H_
#define SCOPEKEEPER_TESTS_CLUSTER_CLUSTER_TESTING_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "proto/scopekeeper/v1/scopekeeper.grpc.pb.h"
#include "server/server.h"
#include "storage/etcd/testing/etcd_cluster.h"

namespace scopekeeper::testing {

// Scopes s0..s23; API "api" (key prefix "tk") with GET /x needing s0.
inline constexpr char kClusterPolicyJson[] = R"json({
  "scopes": [
    {"name": "s0"}, {"name": "s1"}, {"name": "s2"}, {"name": "s3"},
    {"name": "s4"}, {"name": "s5"}, {"name": "s6"}, {"name": "s7"},
    {"name": "s8"}, {"name": "s9"}, {"name": "s10"}, {"name": "s11"},
    {"name": "s12"}, {"name": "s13"}, {"name": "s14"}, {"name": "s15"},
    {"name": "s16"}, {"name": "s17"}, {"name": "s18"}, {"name": "s19"},
    {"name": "s20"}, {"name": "s21"}, {"name": "s22"}, {"name": "s23"}
  ],
  "apis": [
    {"name": "api", "keyPrefix": "tk",
     "routes": [{"method": "GET", "path": "/x", "requirement": {"allOf": ["s0"]}}]}
  ]
})json";

// One replica and stubs on its own channel.
struct TestServer {
  std::unique_ptr<ScopekeeperServer> server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<v1::Authorizer::Stub> authorizer;
  std::unique_ptr<v1::Admin::Stub> admin;
  std::unique_ptr<grpc::health::v1::Health::Stub> health;
};

class ClusterFixture : public ::testing::Test {
 protected:
  // StartEtcd() starts `members` etcd members.
  void StartEtcd(int members = 3);
  // Options of a replica on every member (or `endpoints`), with the test's
  // policy, admin token and prefix.
  ServerOptions ReplicaOptions(std::vector<std::string> endpoints = {});
  // StartReplica() starts a replica; fails the test on error.
  TestServer* StartReplica(const ServerOptions& options);
  TestServer* StartReplica() { return StartReplica(ReplicaOptions()); }

  // Admin and Authorizer calls with a 10 s deadline.
  absl::StatusOr<v1::CreateKeyResponse> CreateKey(
      TestServer& on, std::vector<std::string> scopes);
  absl::StatusOr<v1::Key> RevokeKey(TestServer& on, const std::string& key_id);
  absl::StatusOr<v1::Key> GrantScopes(TestServer& on, const std::string& key_id,
                                      std::vector<std::string> scopes);
  absl::StatusOr<v1::Key> GetKey(TestServer& on, const std::string& key_id);
  absl::StatusOr<v1::AuthorizeResponse> Check(
      TestServer& on, const std::string& secret, uint64_t min_revision = 0,
      absl::Duration timeout = absl::Seconds(10));
  grpc::health::v1::HealthCheckResponse::ServingStatus Health(
      TestServer& on, const std::string& service);

  // Waits (polling, at most `timeout`) until `done` holds.
  static bool Eventually(const std::function<bool()>& done,
                         absl::Duration timeout);

  void TearDown() override;

  std::unique_ptr<storage::etcd::testing::EtcdCluster> etcd_;
  std::string dir_;  // the test's own directory
  std::string token_;
  std::vector<std::unique_ptr<TestServer>> servers_;
};

absl::Status FromGrpc(const grpc::Status& status);

}  // namespace scopekeeper::testing

#endif  // SCOPEKEEPER_TESTS_CLUSTER_CLUSTER_TESTING_H_
