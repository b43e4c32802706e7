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
      {R"({"apis":[{"name":"x","hosts":["a.com","A.com"]}]})",
       {"apis[\"x\"].hosts[1]", "A.com"}},
      {R"({"apis":[{"name":"x","hosts":["a.com:443"]}]})",
       {"apis[\"x\"].hosts[0]", "no port"}},
      {R"({"apis":[{"name":"x","hosts":["a.com"],"pathPrefix":"/v1"},
                   {"name":"y","hosts":["b.com","a.com"],"pathPrefix":"/v1/"}]})",
       {"apis[\"y\"].hosts[1]", "\"a.com\"", "already selects API \"x\""}},
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

// Three APIs in the shape of RxScale's: one under a path prefix, two sharing
// route shapes told apart by host only, plus a catch-all on a wildcard.
constexpr absl::string_view kHostsPolicyJson = R"({"apis":[
  {"name":"external-pharmacy","pathPrefix":"/v1/external-pharmacy-api-v1"},
  {"name":"management","hosts":["management.rxscale.com"]},
  {"name":"public","hosts":["api.rxscale.com","public.rxscale.com"]},
  {"name":"partner","hosts":["*.partners.rxscale.com"]},
  {"name":"public-v2","hosts":["api.rxscale.com"],"pathPrefix":"/v2"}
]})";

std::string Selected(const PolicySnapshot& policy, absl::string_view host,
                     absl::string_view path) {
  const CompiledApi* api = policy.SelectApi(host, path);
  return api == nullptr ? "<none>" : api->name;
}

TEST(PolicyTest, SelectApiByHostAndLongestPathPrefix) {
  auto snap = PolicySnapshot::Compile(Parse(kHostsPolicyJson), 1);
  ASSERT_TRUE(snap.ok()) << snap.status();
  const PolicySnapshot& p = **snap;
  // The prefix beats host-specific APIs without one, on any host.
  EXPECT_EQ(Selected(p, "api.rxscale.com",
                     "/v1/external-pharmacy-api-v1/pharmacy_orders/"),
            "external-pharmacy");
  EXPECT_EQ(Selected(p, "", "/v1/external-pharmacy-api-v1?x=1"),
            "external-pharmacy");
  // Same route shapes, told apart by host; port, case and a trailing dot do
  // not matter.
  EXPECT_EQ(Selected(p, "management.rxscale.com", "/orders/o1"), "management");
  EXPECT_EQ(Selected(p, "Management.RxScale.com:8443", "/orders/o1"),
            "management");
  EXPECT_EQ(Selected(p, "management.rxscale.com.", "/orders/o1"), "management");
  EXPECT_EQ(Selected(p, "api.rxscale.com", "/orders/o1"), "public");
  EXPECT_EQ(Selected(p, "public.rxscale.com", "/orders/o1"), "public");
  // A longer prefix on the same host wins; only at a segment boundary.
  EXPECT_EQ(Selected(p, "api.rxscale.com", "/v2/orders/o1"), "public-v2");
  EXPECT_EQ(Selected(p, "api.rxscale.com", "/v2"), "public-v2");
  EXPECT_EQ(Selected(p, "api.rxscale.com", "/v2x/orders"), "public");
  // Wildcards match subdomains only.
  EXPECT_EQ(Selected(p, "acme.partners.rxscale.com", "/x"), "partner");
  EXPECT_EQ(Selected(p, "a.b.partners.rxscale.com", "/x"), "partner");
  EXPECT_EQ(Selected(p, "partners.rxscale.com", "/x"), "<none>");
  EXPECT_EQ(Selected(p, "evilpartners.rxscale.com", "/x"), "<none>");
  // Unknown or missing hosts select nothing: no API without hosts matches.
  EXPECT_EQ(Selected(p, "other.example", "/orders/o1"), "<none>");
  EXPECT_EQ(Selected(p, "", "/orders/o1"), "<none>");
  EXPECT_EQ(Selected(p, "[::1]:8080", "/orders/o1"), "<none>");
  EXPECT_EQ(Selected(p, "management.rxscale.com.evil.com", "/o"), "<none>");
}

TEST(PolicyTest, SelectApiPrefersExactHostsAndNeverPicksOneOfATie) {
  auto snap = PolicySnapshot::Compile(Parse(R"({"apis":[
    {"name":"any"},
    {"name":"wild","hosts":["*.a.com"]},
    {"name":"exact","hosts":["x.a.com"]},
    {"name":"any2"}
  ]})"),
                                      1);
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_EQ(Selected(**snap, "x.a.com", "/p"), "exact");
  EXPECT_EQ(Selected(**snap, "y.a.com", "/p"), "wild");
  // "any" and "any2" tie (no hosts, no prefix): fail closed.
  EXPECT_EQ(Selected(**snap, "b.com", "/p"), "<none>");

  // The seed policies: one API selects itself; RxScale's management and
  // public APIs share the empty prefix and name no hosts, so only the
  // prefixed external-pharmacy API is selected without an explicit choice.
  auto one = PolicySnapshot::Compile(Parse(R"({"apis":[{"name":"m"}]})"), 1);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(Selected(**one, "api.maxcare.ai", "/v1/patients"), "m");
  EXPECT_EQ(Selected(*PolicySnapshot::Empty(), "a.com", "/"), "<none>");
}

TEST(PolicyTest, IsUnderPathPrefixAtSegmentBoundaries) {
  EXPECT_TRUE(IsUnderPathPrefix("/anything", ""));
  EXPECT_TRUE(IsUnderPathPrefix("/v1", "/v1"));
  EXPECT_TRUE(IsUnderPathPrefix("/v1/", "/v1"));
  EXPECT_TRUE(IsUnderPathPrefix("/v1?q=1", "/v1"));
  EXPECT_FALSE(IsUnderPathPrefix("/v1x", "/v1"));
  EXPECT_FALSE(IsUnderPathPrefix("/v", "/v1"));
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
