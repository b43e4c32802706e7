// scopekeeper::Client against the real server, in-process on port 0: the
// admin flow, decisions, and fail-closed behaviour once the server is gone.
#include "client/client.h"

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server.h"

namespace scopekeeper {
namespace {

constexpr char kPrefix[] = "/v1/external-pharmacy-api-v1";

TEST(ClientIntegrationTest, KeyLifecycleAndFailClosedWhenServerIsGone) {
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.data_dir = absl::StrCat(getenv("TEST_TMPDIR"), "/client");
  options.policy_file = "examples/policies/rxscale.json";
  auto server = ScopekeeperServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  std::ifstream token_file((*server)->admin_token_path());
  ConnectionOptions connection;
  connection.address = (*server)->address();
  std::getline(token_file, connection.admin_token);
  ClientOptions client_options;
  client_options.timeout = absl::Seconds(10);
  Client client(MakeGrpcConnection(connection), client_options);

  v1::CreateKeyRequest create;
  create.set_organization_id("org_pharmacy_1");
  create.add_apis("external-pharmacy");
  create.add_bundles("pharmacy-order-management");
  auto created = client.CreateKey(create);
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string secret = created->secret();

  // The change stream replays the creation, then Watch() stops when the
  // callback says so.
  v1::WatchRequest watch;
  watch.set_from_revision(created->revision() - 1);
  std::vector<v1::WatchEvent> events;
  EXPECT_TRUE(client
                  .Watch(watch, absl::Now() + absl::Seconds(10),
                         [&](const v1::WatchEvent& event) {
                           events.push_back(event);
                           return false;
                         })
                  .ok());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].revision(), created->revision());
  EXPECT_EQ(events[0].key().key_id(), created->key().key_id());

  Decision d =
      client.CheckHttp(secret, "external-pharmacy", "PATCH",
                       absl::StrCat(kPrefix, "/pharmacy_orders/o1/status"));
  EXPECT_TRUE(d.allowed) << d.status;
  d = client.CheckHttp(secret, "external-pharmacy", "GET",
                       absl::StrCat(kPrefix, "/pharmacy_skus/"));
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.http_status(), 403);
  EXPECT_EQ(d.message(), "Insufficient scope. Required: stock_read");

  v1::RevokeKeyRequest revoke;
  revoke.set_key_id(created->key().key_id());
  ASSERT_TRUE(client.RevokeKey(revoke).ok());
  d = client.CheckHttp(secret, "external-pharmacy", "GET",
                       absl::StrCat(kPrefix, "/pharmacy_orders/"));
  EXPECT_FALSE(d.allowed);
  EXPECT_EQ(d.response.reason(), v1::KEY_REVOKED);

  // Without the admin token the admin calls are refused.
  ConnectionOptions anonymous;
  anonymous.address = (*server)->address();
  Client no_admin(MakeGrpcConnection(anonymous), client_options);
  EXPECT_TRUE(absl::IsUnauthenticated(no_admin.GetPolicy().status()));

  // The server is gone: decisions fail closed with UNAVAILABLE.
  server->reset();
  client_options.timeout = absl::Seconds(2);
  Client orphan(MakeGrpcConnection(connection), client_options);
  d = orphan.CheckHttp(secret, "external-pharmacy", "GET",
                       absl::StrCat(kPrefix, "/pharmacy_orders/"));
  EXPECT_FALSE(d.allowed);
  EXPECT_TRUE(absl::IsUnavailable(d.status) ||
              absl::IsDeadlineExceeded(d.status))
      << d.status;
  EXPECT_EQ(d.http_status(), 503);
}

}  // namespace
}  // namespace scopekeeper
