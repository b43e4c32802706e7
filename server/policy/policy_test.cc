#include "server/policy/policy.h"

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/testing/core_test_env.h"

namespace scopekeeper {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

v1::Policy Parse(absl::string_view json) {
  absl::StatusOr<v1::Policy> p = ParsePolicyJson(json);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? *p : v1::Policy();
}

TEST(PolicyTest, CompilesScopesInDeclarationOrder) {
  auto snap = PolicySnapshot::Compile(Parse(kTestPolicyJson), 7);
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_EQ((*snap)->generation(), 7u);
  EXPECT_EQ((*snap)->num_scopes(), 6);
  EXPECT_EQ((*snap)->ScopeId("orders_read"), 0);
  EXPECT_EQ((*snap)->ScopeId("prescription:read"), 5);
  EXPECT_EQ((*snap)->ScopeId("nope"), -1);
  const CompiledApi* api = (*snap)->FindApi("pharmacy");
  ASSERT_NE(api, nullptr);
  EXPECT_EQ(api->path_prefix, "/v1/pharmacy");
  EXPECT_EQ(api->key_prefix, "rx_ph");
  EXPECT_EQ((*snap)->FindApi("management")->index, 1);
  ASSERT_NE((*snap)->FindBundle("order-management"), nullptr);
  EXPECT_THAT((*snap)->ScopeNames(*(*snap)->FindBundle("order-management")),
              ElementsAre("orders_read", "orders_write"));
}

TEST(PolicyTest, RejectsInvalidPoliciesNamingTheEntry) {
  struct Case {
    std::string json;
    std::vector<std::string> mentions;
  };
  const std::vector<Case> cases = {
      {R"({"scopes":[{"name":"a"}],"apis":[{"name":"x","routes":[
          {"method":"GET","path":"/p","requirement":{"allOf":["b"]}}]}]})",
       {"apis[\"x\"].routes[0]", "\"b\""}},
      {R"({"scopes":[{"name":"a"}],"bundles":[{"name":"bb","scopes":["zz"]}]})",
       {"bundles[\"bb\"]", "zz"}},
      {R"({"scopes":[{"name":"a"}],"apis":[{"name":"x","routes":[
          {"method":"GET","path":"/p","requirement":{"allOf":["a"]},
           "redactions":[{"field":"f","unlessScope":"q"}]}]}]})",
       {"redactions[0]", "\"q\""}},
      {R"({"scopes":[{"name":"a"}],"apis":[{"name":"x","routes":[
          {"method":"GET","path":"/p/{id}","requirement":{"allOf":["a"]}},
          {"method":"GET","path":"/p/{other}/","requirement":{"allOf":["a"]}}]}]})",
       {"apis[\"x\"]", "/p/{other}/"}},
      {R"({"scopes":[{"name":"a"}],"apis":[{"name":"x","routes":[
          {"method":"GET","path":"/p//q","requirement":{"allOf":["a"]}}]}]})",
       {"routes[0]", "/p//q"}},
      {R"({"scopes":[{"name":"a"}],"apis":[{"name":"x","routes":[
          {"method":"FETCH","path":"/p","requirement":{"allOf":["a"]}}]}]})",
       {"routes[0]", "FETCH"}},
      {R"({"scopes":[{"name":"a"}],"apis":[{"name":"x","routes":[
          {"method":"GET","path":"/p","requirement":{}}]}]})",
       {"routes[0]", "empty requirement"}},
      {R"({"scopes":[{"name":"a"}],"apis":[{"name":"x","routes":[
          {"method":"GET","path":"/p","requirement":{"authenticatedOnly":true,"allOf":["a"]}}]}]})",
       {"routes[0]", "authenticated_only"}},
      {R"({"scopes":[{"name":"a"},{"name":"a"}]})", {"scopes[1]", "twice"}},
      {R"({"scopes":[{"name":"Bad"}]})", {"scopes[0].name", "Bad"}},
      {R"({"apis":[{"name":"x"},{"name":"x"}]})", {"apis[\"x\"]", "twice"}},
      {R"({"apis":[{"name":"x","keyPrefix":"Bad-Prefix"}]})", {"key_prefix"}},
      {R"({"apis":[{"name":"x","pathPrefix":"v1"}]})", {"path_prefix"}},
  };
  for (const Case& c : cases) {
    auto snap = PolicySnapshot::Compile(Parse(c.json), 1);
    ASSERT_FALSE(snap.ok()) << c.json;
    EXPECT_EQ(snap.status().code(), absl::StatusCode::kInvalidArgument);
    for (const std::string& m : c.mentions) {
      EXPECT_THAT(snap.status().message(), HasSubstr(m)) << c.json;
    }
  }
}

TEST(PolicyTest, RejectsPoliciesOverTheSizeLimitsNamingTheField) {
  v1::Policy scopes;
  for (int i = 0; i <= kMaxPolicyScopes; ++i) {
    scopes.add_scopes()->set_name(absl::StrCat("s", i));
  }
  v1::Policy apis;
  for (int i = 0; i <= kMaxPolicyApis; ++i) {
    apis.add_apis()->set_name(absl::StrCat("api", i));
  }
  v1::Policy routes;
  routes.add_scopes()->set_name("a");
  v1::Api* api = routes.add_apis();
  api->set_name("x");
  for (int i = 0; i <= kMaxRoutesPerApi; ++i) {
    v1::Route* route = api->add_routes();
    route->set_method("GET");
    route->set_path(absl::StrCat("/r", i));
    route->mutable_requirement()->add_all_of("a");
  }
  v1::Policy bundles;
  bundles.add_scopes()->set_name("a");
  for (int i = 0; i <= kMaxPolicyBundles; ++i) {
    v1::Bundle* bundle = bundles.add_bundles();
    bundle->set_name(absl::StrCat("b", i));
    bundle->add_scopes("a");
  }
  const std::vector<std::pair<v1::Policy, std::string>> cases = {
      {scopes, "policy.scopes"},
      {apis, "policy.apis"},
      {routes, "apis[\"x\"].routes"},
      {bundles, "policy.bundles"},
  };
  for (const auto& [policy, field] : cases) {
    auto snap = PolicySnapshot::Compile(policy, 1);
    ASSERT_FALSE(snap.ok()) << field;
    EXPECT_EQ(snap.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(snap.status().message(), HasSubstr(field));
  }
}

TEST(PolicyTest, ParsePolicyJsonRejectsUnknownFields) {
  auto p = ParsePolicyJson(R"({"scopes":[{"name":"a","colour":"red"}]})");
  EXPECT_EQ(p.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(p.status().message(), HasSubstr("colour"));
  EXPECT_FALSE(ParsePolicyJson("{not json").ok());
}

TEST(PolicyTest, CompileRequirementNamesTheField) {
  auto snap = PolicySnapshot::Compile(Parse(kTestPolicyJson), 1);
  ASSERT_TRUE(snap.ok());
  v1::Requirement r;
  r.add_any_of("orders_read");
  r.add_any_of("orders_wrote");
  auto compiled = (*snap)->CompileRequirement(r, "requirement");
  EXPECT_THAT(compiled.status().message(), HasSubstr("requirement.any_of[1]"));
  r.mutable_any_of()->RemoveLast();
  compiled = (*snap)->CompileRequirement(r, "requirement");
  ASSERT_TRUE(compiled.ok());
  EXPECT_TRUE(compiled->any_of.Contains(0));
  EXPECT_TRUE(compiled->all_of.empty());
}

}  // namespace
}  // namespace scopekeeper
