#include "tests/cluster/cluster_testing.h"

#include <sys/stat.h>

#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"

namespace scopekeeper::testing {

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

namespace {

void SetDeadline(grpc::ClientContext* context, absl::Duration timeout) {
  context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
}

template <typename Response>
absl::StatusOr<Response> Result(const grpc::Status& status, Response r) {
  if (!status.ok()) return FromGrpc(status);
  return r;
}

}  // namespace

void ClusterFixture::StartEtcd(int members) {
  dir_ = absl::StrCat(
      getenv("TEST_TMPDIR"), "/",
      ::testing::UnitTest::GetInstance()->current_test_info()->name());
  mkdir(dir_.c_str(), 0700);
  storage::etcd::testing::EtcdCluster::Options options;
  options.members = members;
  options.root = dir_;
  absl::StatusOr<std::unique_ptr<storage::etcd::testing::EtcdCluster>> etcd =
      storage::etcd::testing::EtcdCluster::Start(options);
  ASSERT_TRUE(etcd.ok()) << etcd.status();
  etcd_ = *std::move(etcd);
  token_ = "cluster-test-admin-token-5d0c8e2f9a7b41c3";
  std::ofstream(dir_ + "/admin_token") << token_ << "\n";
  chmod((dir_ + "/admin_token").c_str(), 0600);  // token files are private
  std::ofstream(dir_ + "/policy.json") << kClusterPolicyJson;
}

ServerOptions ClusterFixture::ReplicaOptions(
    std::vector<std::string> endpoints) {
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.data_dir = absl::StrCat(dir_, "/replica", servers_.size());
  options.admin_token_file = dir_ + "/admin_token";
  options.policy_file = dir_ + "/policy.json";
  options.cluster.etcd_endpoints =
      endpoints.empty() ? etcd_->endpoints() : std::move(endpoints);
  options.cluster.etcd_prefix = "/sk/";
  options.cluster.max_staleness = absl::Seconds(3);
  options.cluster.etcd_call_timeout = absl::Seconds(1);
  return options;
}

TestServer* ClusterFixture::StartReplica(const ServerOptions& options) {
  absl::StatusOr<std::unique_ptr<ScopekeeperServer>> server =
      ScopekeeperServer::Start(options);
  EXPECT_TRUE(server.ok()) << server.status();
  if (!server.ok()) return nullptr;
  auto s = std::make_unique<TestServer>();
  s->server = *std::move(server);
  s->channel = grpc::CreateChannel(s->server->address(),
                                   grpc::InsecureChannelCredentials());
  s->authorizer = v1::Authorizer::NewStub(s->channel);
  s->admin = v1::Admin::NewStub(s->channel);
  s->health = grpc::health::v1::Health::NewStub(s->channel);
  servers_.push_back(std::move(s));
  return servers_.back().get();
}

absl::StatusOr<v1::CreateKeyResponse> ClusterFixture::CreateKey(
    TestServer& on, std::vector<std::string> scopes) {
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(10));
  context.AddMetadata("authorization", "Bearer " + token_);
  v1::CreateKeyRequest request;
  request.set_organization_id("org_a");
  request.add_apis("api");
  for (std::string& s : scopes) request.add_scopes(std::move(s));
  v1::CreateKeyResponse response;
  const grpc::Status status = on.admin->CreateKey(&context, request, &response);
  return Result(status, std::move(response));
}

absl::StatusOr<v1::Key> ClusterFixture::RevokeKey(TestServer& on,
                                                  const std::string& key_id) {
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(10));
  context.AddMetadata("authorization", "Bearer " + token_);
  v1::RevokeKeyRequest request;
  request.set_key_id(key_id);
  v1::Key response;
  const grpc::Status status = on.admin->RevokeKey(&context, request, &response);
  return Result(status, std::move(response));
}

absl::StatusOr<v1::Key> ClusterFixture::GrantScopes(
    TestServer& on, const std::string& key_id,
    std::vector<std::string> scopes) {
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(10));
  context.AddMetadata("authorization", "Bearer " + token_);
  v1::GrantScopesRequest request;
  request.set_key_id(key_id);
  for (std::string& s : scopes) request.add_scopes(std::move(s));
  v1::Key response;
  const grpc::Status status =
      on.admin->GrantScopes(&context, request, &response);
  return Result(status, std::move(response));
}

absl::StatusOr<v1::Key> ClusterFixture::GetKey(TestServer& on,
                                               const std::string& key_id) {
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(10));
  context.AddMetadata("authorization", "Bearer " + token_);
  v1::GetKeyRequest request;
  request.set_key_id(key_id);
  v1::Key response;
  const grpc::Status status = on.admin->GetKey(&context, request, &response);
  return Result(status, std::move(response));
}

absl::StatusOr<v1::AuthorizeResponse> ClusterFixture::Check(
    TestServer& on, const std::string& secret, uint64_t min_revision,
    absl::Duration timeout) {
  grpc::ClientContext context;
  SetDeadline(&context, timeout);
  v1::AuthorizeRequest request;
  request.set_api_key(secret);
  request.mutable_requirement()->add_all_of("s0");
  request.set_min_revision(min_revision);
  v1::AuthorizeResponse response;
  const grpc::Status status =
      on.authorizer->Authorize(&context, request, &response);
  return Result(status, std::move(response));
}

grpc::health::v1::HealthCheckResponse::ServingStatus ClusterFixture::Health(
    TestServer& on, const std::string& service) {
  grpc::ClientContext context;
  SetDeadline(&context, absl::Seconds(5));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  const grpc::Status status = on.health->Check(&context, request, &response);
  if (!status.ok()) return grpc::health::v1::HealthCheckResponse::UNKNOWN;
  return response.status();
}

bool ClusterFixture::Eventually(const std::function<bool()>& done,
                                absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() > deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));  // polling a real condition
  }
  return true;
}

void ClusterFixture::TearDown() {
  for (auto& s : servers_) {
    if (s->server != nullptr) s->server->Shutdown(absl::Seconds(1));
  }
  servers_.clear();
  etcd_.reset();
}

}  // namespace scopekeeper::testing
