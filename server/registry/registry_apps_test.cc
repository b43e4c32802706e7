// Registry: marketplace apps and installations (the Max AI flow), and the
// audit trail every mutation leaves.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/registry/registry.h"
#include "server/testing/core_test_env.h"

namespace scopekeeper {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

MATCHER_P(IsCode, code, "") { return arg.status().code() == code; }

class RegistryAppsTest : public ::testing::Test {
 protected:
  void SetUp() override { env_.PutPolicyJson(kTestPolicyJson); }

  v1::App PutApp(std::vector<std::string> requested) {
    v1::PutAppRequest request;
    request.mutable_app()->set_app_id("app_scribe");
    request.mutable_app()->set_slug("scribe");
    request.mutable_app()->set_live_version_id("ver_2");
    for (auto& s : requested) request.mutable_app()->add_requested_scopes(s);
    absl::StatusOr<v1::App> app =
        env_.registry.PutApp(request, CoreTestEnv::kActor);
    EXPECT_TRUE(app.ok()) << app.status();
    return app.ok() ? *app : v1::App();
  }

  absl::StatusOr<v1::Installation> Approve(std::vector<std::string> approved,
                                           std::string org = "org_a") {
    v1::ApproveInstallationRequest request;
    request.set_organization_id(org);
    request.set_app_id("app_scribe");
    for (auto& s : approved) request.add_approved_scopes(s);
    return env_.registry.ApproveInstallation(request, CoreTestEnv::kActor);
  }

  absl::StatusOr<v1::CreateKeyResponse> CreateInstallationKey(
      const std::string& installation_id, std::string org = "org_a") {
    v1::CreateKeyRequest request;
    request.set_organization_id(org);
    request.add_apis("pharmacy");
    request.set_installation_id(installation_id);
    return env_.registry.CreateKey(request, CoreTestEnv::kActor);
  }

  CoreTestEnv env_;
};

TEST_F(RegistryAppsTest, KeyInheritsApprovedScopesAndReapprovalIsNeeded) {
  PutApp({"orders_read"});
  const absl::StatusOr<v1::Installation> installation =
      Approve({"orders_read"});
  ASSERT_TRUE(installation.ok()) << installation.status();
  EXPECT_THAT(installation->pending_scopes(), IsEmpty());
  const auto key = CreateInstallationKey(installation->installation_id());
  ASSERT_TRUE(key.ok()) << key.status();
  EXPECT_THAT(key->key().effective_scopes(), ElementsAre("orders_read"));
  EXPECT_EQ(key->key().installation_id(), installation->installation_id());

  const std::string list = "/v1/pharmacy/orders/";
  const std::string update = "/v1/pharmacy/orders/o_1/status";
  auto r = env_.Http(key->secret(), "pharmacy", "GET", list);
  EXPECT_TRUE(r.allowed());
  EXPECT_EQ(r.app_id(), "app_scribe");

  // The app asks for more: pending, not granted.
  PutApp({"orders_read", "orders_write"});
  v1::GetInstallationRequest get;
  get.set_organization_id("org_a");
  get.set_app_id("app_scribe");
  absl::StatusOr<v1::Installation> fetched = env_.registry.GetInstallation(get);
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_THAT(fetched->pending_scopes(), ElementsAre("orders_write"));
  EXPECT_THAT(fetched->approved_scopes(), ElementsAre("orders_read"));
  r = env_.Http(key->secret(), "pharmacy", "PATCH", update);
  EXPECT_EQ(r.reason(), v1::INSUFFICIENT_SCOPE);
  EXPECT_THAT(r.missing_scopes(), ElementsAre("orders_write"));

  // The clinic re-approves: same installation, the key has it at once.
  const auto again = Approve({"orders_read", "orders_write"});
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->installation_id(), installation->installation_id());
  EXPECT_THAT(again->pending_scopes(), IsEmpty());
  EXPECT_TRUE(env_.Http(key->secret(), "pharmacy", "PATCH", update).allowed());

  // The app drops orders_read: every key of the installation loses it now.
  PutApp({"orders_write"});
  r = env_.Http(key->secret(), "pharmacy", "GET", list);
  EXPECT_EQ(r.reason(), v1::INSUFFICIENT_SCOPE);
  EXPECT_TRUE(env_.Http(key->secret(), "pharmacy", "PATCH", update).allowed());
}

// If the store cannot be read while an app change recompiles its keys, the
// keys must not keep the scopes the app dropped: decisions fail closed until
// they can recompile the key themselves.
TEST_F(RegistryAppsTest, AppDropWhileStoreUnreadableNeverKeepsDroppedScopes) {
  PutApp({"orders_read", "orders_write"});
  const auto installation = Approve({"orders_read", "orders_write"});
  ASSERT_TRUE(installation.ok()) << installation.status();
  const auto key = CreateInstallationKey(installation->installation_id());
  ASSERT_TRUE(key.ok()) << key.status();
  const std::string list = "/v1/pharmacy/orders/";
  ASSERT_TRUE(env_.Http(key->secret(), "pharmacy", "GET", list).allowed());

  env_.store.SetFailing(storage::FaultInjectingStore::Op::kRead, true);
  PutApp({"orders_write"});  // drops orders_read
  const v1::AuthorizeRequest request =
      CoreTestEnv::HttpRequest(key->secret(), "pharmacy", "GET", list);
  v1::AuthorizeResponse response;
  EXPECT_EQ(env_.engine.Authorize(request, &response).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_FALSE(response.allowed());

  env_.store.SetFailing(storage::FaultInjectingStore::Op::kRead, false);
  EXPECT_EQ(env_.Http(key->secret(), "pharmacy", "GET", list).reason(),
            v1::INSUFFICIENT_SCOPE);
  EXPECT_TRUE(env_.Http(key->secret(), "pharmacy", "PATCH",
                        "/v1/pharmacy/orders/o_1/status")
                  .allowed());
  v1::DescribeKeyRequest describe;
  describe.set_api_key(key->secret());
  v1::DescribeKeyResponse described;
  ASSERT_TRUE(env_.engine.DescribeKey(describe, &described).ok());
  EXPECT_THAT(described.scopes(), ElementsAre("orders_write"));
}

TEST_F(RegistryAppsTest, DescribeKeyShowsTheAppAndSortedScopes) {
  PutApp({"orders_write", "orders_read"});
  const auto installation = Approve({"orders_write", "orders_read"});
  ASSERT_TRUE(installation.ok());
  const auto key = CreateInstallationKey(installation->installation_id());
  ASSERT_TRUE(key.ok());
  v1::DescribeKeyRequest request;
  request.set_api_key(key->secret());
  v1::DescribeKeyResponse response;
  ASSERT_TRUE(env_.engine.DescribeKey(request, &response).ok());
  EXPECT_EQ(response.app().app_id(), "app_scribe");
  EXPECT_EQ(response.app().slug(), "scribe");
  EXPECT_EQ(response.app().live_version_id(), "ver_2");
  EXPECT_EQ(response.key().organization_id(), "org_a");
  EXPECT_THAT(response.scopes(), ElementsAre("orders_read", "orders_write"));
}

TEST_F(RegistryAppsTest, AppsAndInstallationsSurviveARestart) {
  PutApp({"orders_read", "orders_write"});
  const auto installation = Approve({"orders_read"});
  ASSERT_TRUE(installation.ok());
  const auto key = CreateInstallationKey(installation->installation_id());
  ASSERT_TRUE(key.ok());

  ServingState state;
  UsageTracker usage(&env_.store);
  Registry registry(&env_.store, &state, &env_.clock, &usage);
  ASSERT_TRUE(registry.Load().ok());
  v1::GetInstallationRequest get;
  get.set_organization_id("org_a");
  get.set_app_id("app_scribe");
  const auto fetched = registry.GetInstallation(get);
  ASSERT_TRUE(fetched.ok()) << fetched.status();
  EXPECT_EQ(fetched->installation_id(), installation->installation_id());
  EXPECT_THAT(fetched->pending_scopes(), ElementsAre("orders_write"));
  DecisionEngine engine(&state, &env_.store, &env_.clock, &usage);
  v1::AuthorizeRequest request;
  request.set_api_key(key->secret());
  request.mutable_requirement()->add_all_of("orders_read");
  v1::AuthorizeResponse response;
  ASSERT_TRUE(engine.Authorize(request, &response).ok());
  EXPECT_TRUE(response.allowed());
  EXPECT_EQ(response.app_id(), "app_scribe");
}

TEST_F(RegistryAppsTest, BadRequestsNameTheFieldAndChangeNothing) {
  const uint64_t before = env_.state.revision();
  v1::PutAppRequest bad_app;
  bad_app.mutable_app()->set_app_id("app_x");
  bad_app.mutable_app()->add_requested_scopes("undeclared_scope");
  auto app = env_.registry.PutApp(bad_app, CoreTestEnv::kActor);
  EXPECT_THAT(app, IsCode(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(app.status().message()),
              HasSubstr("app.requested_scopes[0]"));
  bad_app.mutable_app()->set_app_id("");
  EXPECT_THAT(env_.registry.PutApp(bad_app, CoreTestEnv::kActor),
              IsCode(absl::StatusCode::kInvalidArgument));

  // Unknown app.
  EXPECT_THAT(Approve({"orders_read"}), IsCode(absl::StatusCode::kNotFound));
  PutApp({"orders_read"});
  const uint64_t after_app = env_.state.revision();
  EXPECT_EQ(after_app, before + 1);
  // A scope the app does not request.
  const auto not_requested = Approve({"orders_write"});
  EXPECT_THAT(not_requested, IsCode(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(not_requested.status().message()),
              HasSubstr("approved_scopes[0]"));
  // Unknown installation; another organization's installation.
  EXPECT_THAT(CreateInstallationKey("inst_nope"),
              IsCode(absl::StatusCode::kNotFound));
  const auto installation = Approve({"orders_read"});
  ASSERT_TRUE(installation.ok());
  const auto foreign =
      CreateInstallationKey(installation->installation_id(), "org_b");
  EXPECT_THAT(foreign, IsCode(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(std::string(foreign.status().message()),
              HasSubstr("installation_id"));
  v1::GetInstallationRequest get;
  get.set_organization_id("org_b");
  get.set_app_id("app_scribe");
  EXPECT_THAT(env_.registry.GetInstallation(get),
              IsCode(absl::StatusCode::kNotFound));
  EXPECT_EQ(env_.state.revision(), after_app + 1);
}

TEST_F(RegistryAppsTest, EveryMutationIsAuditedWithoutSecrets) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  v1::RevokeKeyRequest revoke;
  revoke.set_key_id(key.key().key_id());
  ASSERT_TRUE(env_.registry.RevokeKey(revoke, "alice").ok());
  PutApp({"orders_read"});

  v1::ListAuditEventsRequest request;
  auto all = env_.registry.ListAuditEvents(request);
  ASSERT_TRUE(all.ok()) << all.status();
  std::vector<std::string> actions;
  for (const v1::AuditEvent& e : all->events()) {
    actions.push_back(e.action());
    EXPECT_THAT(e.detail(), Not(HasSubstr(key.secret())));
    EXPECT_GT(e.revision(), 0u);
  }
  EXPECT_THAT(actions,
              ElementsAre("PutPolicy", "CreateKey", "RevokeKey", "PutApp"));

  request.set_key_id(key.key().key_id());
  auto by_key = env_.registry.ListAuditEvents(request);
  ASSERT_TRUE(by_key.ok());
  ASSERT_EQ(by_key->events_size(), 2);
  EXPECT_EQ(by_key->events(1).action(), "RevokeKey");
  EXPECT_EQ(by_key->events(1).actor(), "alice");
  EXPECT_EQ(by_key->events(1).organization_id(), "org_a");
  EXPECT_EQ(by_key->events(1).revision(), env_.state.revision() - 1);

  // Paging: strictly after a revision, at most page_size.
  v1::ListAuditEventsRequest page;
  page.set_after_revision(by_key->events(0).revision());
  page.set_page_size(1);
  auto next = env_.registry.ListAuditEvents(page);
  ASSERT_TRUE(next.ok());
  ASSERT_EQ(next->events_size(), 1);
  EXPECT_EQ(next->events(0).action(), "RevokeKey");
  page.set_page_size(-1);
  EXPECT_THAT(env_.registry.ListAuditEvents(page),
              IsCode(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace scopekeeper
