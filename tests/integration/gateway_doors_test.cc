// The gateway doors of the real server, in-process on port 0: Envoy's
// ext_authz Check on the main port (reflection lists it; the authorizer token
// applies to it as to Authorize) and the forward-auth endpoint from
// --http_authz_listen (the same token, as a header).
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <sys/stat.h>

#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "envoy/service/auth/v3/external_auth.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/scopekeeper/v1/scopekeeper.grpc.pb.h"
#include "server/server.h"
#include "tests/integration/reflection_client.h"

namespace scopekeeper {
namespace {

using ::envoy::service::auth::v3::Authorization;
using ::envoy::service::auth::v3::CheckRequest;
using ::envoy::service::auth::v3::CheckResponse;
using ::testing::Contains;

// Private and strong, as start-up requires of token files.
constexpr char kCallerToken[] = "gateway-caller-token-5e2a91c07d4b8f36";

class GatewayDoorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string dir = absl::StrCat(getenv("TEST_TMPDIR"), "/doors");
    const std::string token_file = absl::StrCat(getenv("TEST_TMPDIR"), "/tok");
    std::ofstream(token_file) << kCallerToken << "\n";
    chmod(token_file.c_str(), 0600);
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.data_dir = dir;
    options.policy_file = "examples/policies/rxscale.json";
    options.authorizer_token_file = token_file;
    options.http_authz_listen = "127.0.0.1:0";
    auto server = ScopekeeperServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    ASSERT_GT(server_->http_authz_port(), 0);
    channel_ = grpc::CreateChannel(server_->address(),
                                   grpc::InsecureChannelCredentials());
    std::string admin_token;
    std::getline(std::ifstream(server_->admin_token_path()), admin_token);
    v1::CreateKeyRequest create;
    create.set_organization_id("org_rx");
    create.add_apis("external-pharmacy");
    create.add_scopes("orders_read");
    grpc::ClientContext context;
    context.AddMetadata("authorization", "Bearer " + admin_token);
    ASSERT_TRUE(
        v1::Admin::NewStub(channel_)->CreateKey(&context, create, &key_).ok());
  }

  CheckRequest EnvoyRequest() const {
    CheckRequest request;
    auto* http =
        request.mutable_attributes()->mutable_request()->mutable_http();
    http->set_method("GET");
    http->set_path("/v1/external-pharmacy-api-v1/pharmacy_orders/");
    http->set_host("api.rxscale.com");
    (*http->mutable_headers())["authorization"] = "Bearer " + key_.secret();
    return request;
  }

  std::unique_ptr<ScopekeeperServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  v1::CreateKeyResponse key_;
};

TEST_F(GatewayDoorsTest, CheckIsServedAndNeedsTheAuthorizerToken) {
  auto stub = Authorization::NewStub(channel_);
  CheckResponse response;
  {
    grpc::ClientContext context;
    EXPECT_EQ(stub->Check(&context, EnvoyRequest(), &response).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  grpc::ClientContext context;  // as Envoy's grpc_service.initial_metadata
  context.AddMetadata("authorization", absl::StrCat("Bearer ", kCallerToken));
  ASSERT_TRUE(stub->Check(&context, EnvoyRequest(), &response).ok());
  EXPECT_EQ(response.status().code(), 0);
  ASSERT_TRUE(response.has_ok_response());
  EXPECT_EQ(response.ok_response().headers(0).header().key(),
            "x-scopekeeper-key-id");
  EXPECT_EQ(response.ok_response().headers(0).header().value(),
            key_.key().key_id());
}

TEST_F(GatewayDoorsTest, ReflectionListsAndDescribesTheEnvoyService) {
  testing::ReflectionClient reflection(channel_);
  const absl::StatusOr<std::vector<std::string>> services =
      reflection.ListServices();
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_THAT(*services, Contains("envoy.service.auth.v3.Authorization"));
  EXPECT_THAT(*services, Contains("scopekeeper.v1.Authorizer"));
  const auto files =
      reflection.FileContainingSymbol("envoy.service.auth.v3.Authorization");
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_FALSE(files->empty());
  EXPECT_EQ(files->front().name(), "envoy/service/auth/v3/external_auth.proto");
}

TEST_F(GatewayDoorsTest, ForwardAuthNeedsTheSameTokenAsAHeader) {
  httplib::Client client("127.0.0.1", server_->http_authz_port());
  httplib::Headers headers = {
      {"X-Original-Method", "GET"},
      {"X-Original-URI", "/v1/external-pharmacy-api-v1/pharmacy_orders/"},
      {"X-Forwarded-Host", "api.rxscale.com"},
      {"Authorization", "Bearer " + key_.secret()}};
  auto res = client.Get("/authz", headers);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 503);
  headers.emplace("X-Scopekeeper-Authorizer-Token", kCallerToken);
  res = client.Get("/authz", headers);
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("X-Scopekeeper-Key-Id"), key_.key().key_id());
}

}  // namespace
}  // namespace scopekeeper
