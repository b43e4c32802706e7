// The reference model against the examples of DESIGN.md and docs/API.md:
// the oracle must itself be right before it judges the engine.
#include "tests/oracle/reference_model.h"

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace scopekeeper::oracle {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Optional;
using Code = absl::StatusCode;

template <typename M>
M Parse(const std::string& text) {
  M m;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &m)) << text;
  return m;
}

v1::Api ApiOf(const std::string& prefix, std::vector<std::string> templates) {
  v1::Api api;
  api.set_name("api");
  api.set_path_prefix(prefix);
  for (const std::string& t : templates) {
    v1::Route* r = api.add_routes();
    r->set_method("GET");
    r->set_path(t);
  }
  return api;
}

std::string Matched(const v1::Api& api, const std::string& path,
                    const std::string& method = "GET") {
  const v1::Route* r = MatchRoute(api, method, path);
  return r == nullptr ? "ROUTE_NOT_FOUND" : r->path();
}

TEST(SegmentsTest, SplitsAndRejectsEmptyAndDotSegments) {
  EXPECT_THAT(Segments("/"), Optional(IsEmpty()));
  EXPECT_THAT(Segments("/a/b/"), Optional(ElementsAre("a", "b")));
  EXPECT_THAT(Segments("/a/{id}"), Optional(ElementsAre("a", "{id}")));
  for (const char* bad : {"", "a", "//", "/a//", "/a//b", "/./a", "/a/.."}) {
    EXPECT_EQ(Segments(bad), std::nullopt) << bad;
  }
}

TEST(MatchRouteTest, LiteralBeatsParamAtTheFirstDifferingPosition) {
  const v1::Api api = ApiOf("", {"/a/{x}/c", "/a/b/{y}", "/{z}/b/c"});
  EXPECT_EQ(Matched(api, "/a/b/c"), "/a/b/{y}");
  EXPECT_EQ(Matched(api, "/a/q/c"), "/a/{x}/c");
  EXPECT_EQ(Matched(api, "/q/b/c"), "/{z}/b/c");
  // A literal that leads nowhere does not hide a {param} that matches.
  const v1::Api backtrack = ApiOf("", {"/a/{x}/c", "/a/b/d"});
  EXPECT_EQ(Matched(backtrack, "/a/b/c"), "/a/{x}/c");
}

TEST(MatchRouteTest, TrailingSlashQueryAndMethodCase) {
  const v1::Api api = ApiOf("", {"/orders/", "/orders/{id}", "/"});
  EXPECT_EQ(Matched(api, "/orders"), "/orders/");
  EXPECT_EQ(Matched(api, "/orders/?x=1"), "/orders/");
  EXPECT_EQ(Matched(api, "/orders/o1/?a/b"), "/orders/{id}");
  EXPECT_EQ(Matched(api, "/orders", "get"), "/orders/");
  EXPECT_EQ(Matched(api, "/orders", "POST"), "ROUTE_NOT_FOUND");
  EXPECT_EQ(Matched(api, "/"), "/");
  EXPECT_EQ(Matched(api, "/orders//"), "ROUTE_NOT_FOUND");
  EXPECT_EQ(Matched(api, "/orders/./"), "ROUTE_NOT_FOUND");
  EXPECT_EQ(Matched(api, "/Orders"), "ROUTE_NOT_FOUND");      // case-sensitive
  EXPECT_EQ(Matched(api, "/orders/%2e%2e"), "/orders/{id}");  // no decoding
}

TEST(MatchRouteTest, PathPrefixEndsAtASegmentBoundary) {
  const v1::Api api = ApiOf("/v1/api", {"/x", "/"});
  EXPECT_EQ(Matched(api, "/v1/api/x"), "/x");
  EXPECT_EQ(Matched(api, "/v1/apix"), "ROUTE_NOT_FOUND");
  EXPECT_EQ(Matched(api, "/x"), "ROUTE_NOT_FOUND");
  EXPECT_EQ(Matched(api, "/v1/api"), "/");
  EXPECT_EQ(Matched(api, "/v1/api?q"), "/");
}

// The RxScale-like policy of docs/API.md's examples.
class ModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_.SetNow(absl::FromUnixSeconds(1'800'000'000));
    ASSERT_EQ(model_.PutPolicy(Parse<v1::Policy>(R"pb(
      scopes { name: "order:read" }
      scopes { name: "prescription:read" }
      scopes { name: "doctor:read" }
      scopes { name: "patient:read" }
      scopes { name: "waiting_room:read" }
      apis {
        name: "management"
        path_prefix: "/v1/mg"
        routes {
          method: "GET"
          path: "/orders/{uid}"
          requirement { all_of: "order:read" }
          redactions { field: "prescription" unless_scope: "prescription:read" }
        }
      }
      apis { name: "public" }
      bundles { name: "checkout" scopes: "order:read" }
    )pb")),
              Code::kOk);
    ASSERT_EQ(model_.CreateKey(Parse<v1::CreateKeyRequest>(R"pb(
                                 organization_id: "org_telemed_7"
                                 apis: "management"
                                 bundles: "checkout"
                               )pb"),
                               "key_1", "secret_1"),
              Code::kOk);
  }

  ReferenceModel::Decision Decide(const std::string& text) {
    v1::AuthorizeRequest request = Parse<v1::AuthorizeRequest>(text);
    if (request.api_key().empty()) request.set_api_key("secret_1");
    return model_.Authorize(request);
  }

  ReferenceModel model_;
};

TEST_F(ModelTest, RouteDecisionWithRedactionAndMatchedRouteWithoutPrefix) {
  const auto d = Decide(R"pb(http {
                               api: "management"
                               method: "GET"
                               path: "/v1/mg/orders/o1"
                             })pb");
  EXPECT_TRUE(d.response.allowed());
  EXPECT_EQ(d.response.http_status(), 200);
  EXPECT_EQ(d.response.matched_route(), "GET /orders/{uid}");
  EXPECT_THAT(d.response.redactions(), ElementsAre("prescription"));
  EXPECT_EQ(d.response.organization_id(), "org_telemed_7");
}

TEST_F(ModelTest, CombinedMessageListsMissingAllOfThenTheAlternatives) {
  const auto d = Decide(R"pb(requirement {
                               all_of: [ "patient:read", "order:read" ]
                               any_of: [ "waiting_room:read", "doctor:read" ]
                             })pb");
  EXPECT_EQ(d.response.reason(), v1::INSUFFICIENT_SCOPE);
  EXPECT_EQ(d.response.message(),
            "Insufficient scope. Required: patient:read and one of: "
            "doctor:read, waiting_room:read");
  EXPECT_THAT(d.response.missing_scopes(),
              ElementsAre("patient:read", "doctor:read", "waiting_room:read"));
  EXPECT_EQ(
      Decide(R"pb(requirement { any_of: [ "doctor:read", "patient:read" ] })pb")
          .response.message(),
      "Insufficient scope. Required one of: doctor:read, patient:read");
}

TEST_F(ModelTest, OrderOfChecksKeyOrganizationApiRouteScopes) {
  EXPECT_EQ(Decide(R"pb(api_key: "nope"
                        requirement { all_of: "x" })pb")
                .code,
            Code::kInvalidArgument);
  const auto invalid =
      Decide(R"pb(api_key: "nope"
                  organization_id: "org_other"
                  http { api: "public" method: "GET" path: "/" })pb");
  EXPECT_EQ(invalid.response.reason(), v1::KEY_INVALID);
  EXPECT_EQ(invalid.response.message(), "Invalid or expired API key");
  EXPECT_EQ(invalid.response.key_id(), "");
  const auto org =
      Decide(R"pb(organization_id: "org_other"
                  http { api: "public" method: "GET" path: "/" })pb");
  EXPECT_EQ(org.response.reason(), v1::ORGANIZATION_MISMATCH);
  EXPECT_EQ(org.response.organization_id(), "org_telemed_7");
  EXPECT_EQ(Decide(R"pb(http { api: "public" method: "GET" path: "/" })pb")
                .response.reason(),
            v1::WRONG_API);
  EXPECT_EQ(Decide(R"pb(http { api: "management" method: "GET" path: "/" })pb")
                .response.http_status(),
            404);
}

TEST_F(ModelTest, RevokedAndExpiredIsRevoked) {
  v1::CreateKeyRequest create;
  create.set_organization_id("org_a");
  create.mutable_expire_time()->set_seconds(1'800'000'060);
  ASSERT_EQ(model_.CreateKey(create, "key_2", "secret_2"), Code::kOk);
  v1::RevokeKeyRequest revoke;
  revoke.set_key_id("key_2");
  ASSERT_EQ(model_.RevokeKey(revoke), Code::kOk);
  model_.SetNow(absl::FromUnixSeconds(1'800'000'060));
  EXPECT_EQ(Decide(R"pb(api_key: "secret_2"
                        requirement { authenticated_only: true })pb")
                .response.reason(),
            v1::KEY_REVOKED);
}

TEST_F(ModelTest, RotatedSecretWorksUntilTheGracePeriodEnds) {
  v1::RotateKeyRequest rotate;
  rotate.set_key_id("key_1");
  rotate.mutable_grace_period()->set_seconds(60);
  ASSERT_EQ(model_.RotateKey(rotate, "secret_1b"), Code::kOk);
  const char* old_secret = R"pb(requirement { authenticated_only: true })pb";
  EXPECT_TRUE(Decide(old_secret).response.allowed());
  model_.SetNow(model_.now() + absl::Seconds(60));
  EXPECT_EQ(Decide(old_secret).response.reason(), v1::KEY_INVALID);
}

TEST_F(ModelTest, EffectiveScopesBundlesGrantsAndInstallations) {
  EXPECT_THAT(model_.EffectiveScopes("key_1"), ElementsAre("order:read"));
  v1::GrantScopesRequest grant;
  grant.set_key_id("key_1");
  grant.add_scopes("doctor:read");
  grant.mutable_expire_time()->set_seconds(1'800'000'060);
  ASSERT_EQ(model_.GrantScopes(grant), Code::kOk);
  EXPECT_THAT(model_.EffectiveScopes("key_1"),
              ElementsAre("order:read", "doctor:read"));
  model_.SetNow(model_.now() + absl::Seconds(60));  // the grant expired
  EXPECT_THAT(model_.EffectiveScopes("key_1"), ElementsAre("order:read"));

  v1::PutAppRequest app;
  app.mutable_app()->set_app_id("app_1");
  app.mutable_app()->add_requested_scopes("patient:read");
  ASSERT_EQ(model_.PutApp(app), Code::kOk);
  v1::ApproveInstallationRequest approve;
  approve.set_organization_id("org_b");
  approve.set_app_id("app_1");
  approve.add_approved_scopes("patient:read");
  ASSERT_EQ(model_.ApproveInstallation(approve, "inst_1"), Code::kOk);
  v1::CreateKeyRequest create;
  create.set_organization_id("org_b");
  create.set_installation_id("inst_1");
  ASSERT_EQ(model_.CreateKey(create, "key_2", "secret_2"), Code::kOk);
  EXPECT_THAT(model_.EffectiveScopes("key_2"), ElementsAre("patient:read"));
  app.mutable_app()->clear_requested_scopes();  // the new version drops it
  ASSERT_EQ(model_.PutApp(app), Code::kOk);
  EXPECT_THAT(model_.EffectiveScopes("key_2"), IsEmpty());
  create.set_organization_id("org_c");  // another organization's
  EXPECT_EQ(model_.CreateKey(create, "key_3", "secret_3"),
            Code::kInvalidArgument);
}

TEST_F(ModelTest, WrongRequestsAreInvalidArgument) {
  for (const char* text : {
           "",                // no target
           "requirement {}",  // empty
           "requirement { authenticated_only: true any_of: 'order:read' }",
           "requirement { all_of: 'undeclared' }",
           "requirement { all_of: 'Bad Scope' }",
           "http { api: 'nope' method: 'GET' path: '/' }",
           "http { api: 'public' method: 'FETCH' path: '/' }",
           "http { api: 'public' method: 'GET' path: '' }",
       }) {
    EXPECT_EQ(Decide(text).code, Code::kInvalidArgument) << text;
  }
}

}  // namespace
}  // namespace scopekeeper::oracle
