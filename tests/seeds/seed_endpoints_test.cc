// Walks every endpoint of both seed products (../shared/seeds: Max AI's
// marketplace scopes page and RxScale's permissions page) through the server
// core loaded with the example policies, with keys that hold and that lack
// the permission each page names.
//
// The tables below are transcribed from the seed pages, not from the policy
// files, so a policy that drifts from its product's documentation (a missing
// endpoint, a wrong scope, a lost either-of or redaction) fails here.
#include <algorithm>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/testing/core_test_env.h"
#include "server/policy/policy.h"

namespace scopekeeper {
namespace {

using ::testing::ElementsAreArray;
using ::testing::IsEmpty;

// One documented endpoint. Exactly one of `all_of`, `any_of` or
// `valid_key_only` states what it needs.
struct Endpoint {
  std::string api;
  std::string method;
  std::string route;  // the path template, as matched_route reports it
  std::string path;   // a concrete request path as a client sends it
  std::vector<std::string> all_of = {};
  std::vector<std::string> any_of = {};
  bool valid_key_only = false;
  // A field stripped from the response unless the key holds `unless_scope`.
  std::string redacted_field = "";
  std::string unless_scope = "";
};

std::string Describe(const Endpoint& e) {
  return absl::StrCat(e.api, " ", e.method, " ", e.path);
}

// Max AI: "Available Scopes". One API; every endpoint needs one read scope.
const std::vector<Endpoint>& MaxAiEndpoints() {
  static const auto* endpoints = new std::vector<Endpoint>{
      {"marketplace",
       "GET",
       "/v1/patients",
       "/v1/patients?page=2&q=ann",
       {"read:patients"}},
      {"marketplace",
       "GET",
       "/v1/patients/{id}",
       "/v1/patients/pat_123",
       {"read:patients"}},
      {"marketplace",
       "GET",
       "/v1/appointments",
       "/v1/appointments",
       {"read:appointments"}},
      {"marketplace",
       "GET",
       "/v1/appointments/{id}",
       "/v1/appointments/apt_9",
       {"read:appointments"}},
      {"marketplace",
       "GET",
       "/v1/providers",
       "/v1/providers/",
       {"read:providers"}},
      {"marketplace",
       "GET",
       "/v1/providers/{id}",
       "/v1/providers/prv_1",
       {"read:providers"}},
      {"marketplace",
       "GET",
       "/v1/facilities",
       "/v1/facilities",
       {"read:facilities"}},
      {"marketplace",
       "GET",
       "/v1/facilities/{id}",
       "/v1/facilities/fac_1",
       {"read:facilities"}},
      {"marketplace", "GET", "/v1/bills", "/v1/bills?page=1", {"read:bills"}},
      {"marketplace",
       "GET",
       "/v1/bills/{id}",
       "/v1/bills/bill_7",
       {"read:bills"}},
      {"marketplace", "GET", "/v1/claims", "/v1/claims", {"read:claims"}},
      {"marketplace",
       "GET",
       "/v1/claims/{id}",
       "/v1/claims/clm_3",
       {"read:claims"}},
      {"marketplace",
       "GET",
       "/v1/inventory/changes",
       "/v1/inventory/changes",
       {"read:inventory"}},
      {"marketplace",
       "GET",
       "/v1/inventory/changes/{id}",
       "/v1/inventory/changes/chg_1",
       {"read:inventory"}},
      {"marketplace",
       "GET",
       "/v1/inventory/changes/{id}/products",
       "/v1/inventory/changes/chg_1/products",
       {"read:inventory"}},
      {"marketplace",
       "GET",
       "/v1/inventory/stock-levels",
       "/v1/inventory/stock-levels",
       {"read:inventory"}},
      {"marketplace",
       "GET",
       "/v1/inventory/products",
       "/v1/inventory/products",
       {"read:products"}},
      {"marketplace",
       "GET",
       "/v1/inventory/products/{id}",
       "/v1/inventory/products/prd_5",
       {"read:products"}},
      {"marketplace",
       "GET",
       "/v1/marketplace/me",
       "/v1/marketplace/me",
       {"read:marketplace"}},
  };
  return *endpoints;
}

// RxScale: "External Pharmacy API", "Management API", "Notification
// Subscriptions" and "Public API". External Pharmacy paths are sent with the
// API's documented prefix /v1/external-pharmacy-api-v1.
const std::vector<Endpoint>& RxScaleEndpoints() {
  static const auto* endpoints = [] {
    const std::string ph = "/v1/external-pharmacy-api-v1";
    return new std::vector<Endpoint>{
        // External Pharmacy API.
        {"external-pharmacy",
         "GET",
         "/pharmacy_orders/",
         ph + "/pharmacy_orders/",
         {"orders_read"}},
        {"external-pharmacy",
         "GET",
         "/pharmacy_orders/{uid}",
         ph + "/pharmacy_orders/po_1",
         {"orders_read"}},
        {"external-pharmacy",
         "PATCH",
         "/pharmacy_orders/{uid}/status",
         ph + "/pharmacy_orders/po_1/status",
         {"orders_write"}},
        {"external-pharmacy",
         "GET",
         "/pharmacy_skus/",
         ph + "/pharmacy_skus",
         {"stock_read"}},
        {"external-pharmacy",
         "PATCH",
         "/pharmacy_skus/{uid}/stock",
         ph + "/pharmacy_skus/sku_1/stock",
         {},
         {"stock_write", "pharmacy_sku_write"}},
        {"external-pharmacy",
         "PATCH",
         "/pharmacy_skus/{uid}",
         ph + "/pharmacy_skus/sku_1",
         {"pharmacy_sku_write"}},
        {"external-pharmacy",
         "PATCH",
         "/pharmacy_skus/{uid}/external_id",
         ph + "/pharmacy_skus/sku_1/external_id",
         {"pharmacy_sku_write"}},
        {"external-pharmacy",
         "GET",
         "/webhooks/",
         ph + "/webhooks/",
         {"webhooks_read"}},
        {"external-pharmacy",
         "POST",
         "/webhooks/",
         ph + "/webhooks/",
         {"webhooks_write"}},
        {"external-pharmacy",
         "DELETE",
         "/webhooks/{uid}",
         ph + "/webhooks/wh_1",
         {"webhooks_write"}},
        // Management API.
        {"management",
         "GET",
         "/orders/{uid}",
         "/orders/ord_1",
         {"order:read"},
         {},
         false,
         "prescription",
         "prescription:read"},
        {"management",
         "GET",
         "/prescriptions/{uid}",
         "/prescriptions/rx_1",
         {"prescription:read"}},
        {"management", "GET", "/products/", "/products/", {"product:read"}},
        {"management", "GET", "/doctors/", "/doctors/", {"doctor:read"}},
        {"management",
         "GET",
         "/doctors/{uid}/statistics",
         "/doctors/doc_1/statistics",
         {"doctor_statistics:read"}},
        {"management",
         "GET",
         "/patients/",
         "/patients/?email=ann%40example.com",
         {"patient:read"}},
        {"management",
         "GET",
         "/patients/{uid}",
         "/patients/pat_1",
         {"patient:read"}},
        {"management",
         "GET",
         "/patients/{uid}/intent/{intent}",
         "/patients/pat_1/intent/refill",
         {"patient:read"}},
        {"management",
         "GET",
         "/waiting-room/{uid}/status",
         "/waiting-room/wr_1/status",
         {"waiting_room:read"}},
        {"management",
         "POST",
         "/waiting-room/register",
         "/waiting-room/register",
         {"waiting_room:write"}},
        {"management",
         "DELETE",
         "/waiting-room/{uid}",
         "/waiting-room/wr_1",
         {"waiting_room:write"}},
        {"management",
         "GET",
         "/wallet-passes/templates",
         "/wallet-passes/templates",
         {"wallet_pass_template:read"}},
        {"management",
         "GET",
         "/wallet-passes/",
         "/wallet-passes/",
         {"wallet_pass:read"}},
        {"management",
         "POST",
         "/wallet-passes/push-notifications",
         "/wallet-passes/push-notifications",
         {"wallet_pass_push_notification:write"}},
        // Notification Subscriptions: any valid Management API key.
        {"management",
         "GET",
         "/notification-subscriptions/",
         "/notification-subscriptions/",
         {},
         {},
         true},
        {"management",
         "POST",
         "/notification-subscriptions/",
         "/notification-subscriptions",
         {},
         {},
         true},
        {"management",
         "DELETE",
         "/notification-subscriptions/",
         "/notification-subscriptions/?uid=sub_1",
         {},
         {},
         true},
        {"management",
         "POST",
         "/notification-subscriptions/test",
         "/notification-subscriptions/test",
         {},
         {},
         true},
        // Public API.
        {"public",
         "GET",
         "/products/{shop_identifier}",
         "/products/shop_42",
         {"product:read"}},
        {"public",
         "GET",
         "/orders/{shop_identifier}",
         "/orders/shop_42?prescription_uids=rx_1,rx_2",
         {"order:read"}},
        {"public",
         "POST",
         "/prescriptions/{shop_identifier}",
         "/prescriptions/shop_42",
         {"create_prescription_checkout"}},
        {"public",
         "POST",
         "/treatments/{shop_identifier}",
         "/treatments/shop_42",
         {"create_treatment_checkout"}},
    };
  }();
  return *endpoints;
}

std::vector<std::string> Without(const std::vector<std::string>& all,
                                 const std::vector<std::string>& drop) {
  std::vector<std::string> kept;
  for (const std::string& s : all) {
    if (std::find(drop.begin(), drop.end(), s) == drop.end()) {
      kept.push_back(s);
    }
  }
  return kept;
}

class SeedEndpointsTest : public ::testing::Test {
 protected:
  void LoadPolicy(const std::string& file) {
    absl::StatusOr<v1::Policy> policy = ReadPolicyFile(file);
    ASSERT_TRUE(policy.ok()) << policy.status();
    policy_ = *policy;
    ASSERT_TRUE(env_.registry.PutPolicy(policy_, CoreTestEnv::kActor).ok());
    for (const v1::ScopeDefinition& s : policy_.scopes()) {
      all_scopes_.push_back(s.name());
    }
  }

  std::string Key(const std::string& api, std::vector<std::string> scopes) {
    return env_.CreateKey({api}, std::move(scopes)).secret();
  }

  void ExpectAllowed(const Endpoint& e, const std::vector<std::string>& scopes,
                     const std::vector<std::string>& redactions) {
    SCOPED_TRACE(
        absl::StrCat(Describe(e), " with [", absl::StrJoin(scopes, ", "), "]"));
    const v1::AuthorizeResponse r =
        env_.Http(Key(e.api, scopes), e.api, e.method, e.path, "org_a");
    EXPECT_TRUE(r.allowed());
    EXPECT_EQ(r.reason(), v1::ALLOWED);
    EXPECT_EQ(r.http_status(), 200);
    EXPECT_EQ(r.matched_route(), absl::StrCat(e.method, " ", e.route));
    EXPECT_THAT(r.missing_scopes(), IsEmpty());
    EXPECT_THAT(r.redactions(), ElementsAreArray(redactions));
  }

  void ExpectInsufficient(const Endpoint& e,
                          const std::vector<std::string>& scopes,
                          const std::vector<std::string>& missing,
                          const std::string& message) {
    SCOPED_TRACE(absl::StrCat(Describe(e), " without [",
                              absl::StrJoin(missing, ", "), "]"));
    const v1::AuthorizeResponse r =
        env_.Http(Key(e.api, scopes), e.api, e.method, e.path);
    EXPECT_FALSE(r.allowed());
    EXPECT_EQ(r.reason(), v1::INSUFFICIENT_SCOPE);
    EXPECT_EQ(r.http_status(), 403);
    EXPECT_EQ(r.matched_route(), absl::StrCat(e.method, " ", e.route));
    EXPECT_THAT(r.missing_scopes(), ElementsAreArray(missing));
    EXPECT_EQ(r.message(), message);
    EXPECT_THAT(r.redactions(), IsEmpty());
  }

  // Walks one endpoint: holding / lacking what it needs, another
  // organization, another API's key, an unknown key.
  void Walk(const Endpoint& e) {
    const std::vector<std::string> no_redactions;
    if (e.valid_key_only) {
      ExpectAllowed(e, {}, no_redactions);
    }
    if (!e.all_of.empty()) {
      std::vector<std::string> redactions;
      if (!e.redacted_field.empty()) redactions.push_back(e.redacted_field);
      ExpectAllowed(e, e.all_of, redactions);
      if (!e.unless_scope.empty()) {
        std::vector<std::string> both = e.all_of;
        both.push_back(e.unless_scope);
        ExpectAllowed(e, both, no_redactions);
      }
      for (const std::string& needed : e.all_of) {
        ExpectInsufficient(e, Without(all_scopes_, {needed}), {needed},
                           "Insufficient scope. Required: " + needed);
      }
    }
    if (!e.any_of.empty()) {
      for (const std::string& alternative : e.any_of) {
        ExpectAllowed(e, {alternative}, no_redactions);
      }
      ExpectInsufficient(e, Without(all_scopes_, e.any_of), e.any_of,
                         "Insufficient scope. Required one of: " +
                             absl::StrJoin(e.any_of, ", "));
    }

    SCOPED_TRACE(Describe(e));
    const std::string holder = Key(e.api, all_scopes_);
    v1::AuthorizeResponse r =
        env_.Http(holder, e.api, e.method, e.path, "org_other");
    EXPECT_EQ(r.reason(), v1::ORGANIZATION_MISMATCH);
    EXPECT_EQ(r.http_status(), 403);
    EXPECT_FALSE(r.allowed());

    r = env_.Http("not_a_key_0000000000000000", e.api, e.method, e.path);
    EXPECT_EQ(r.reason(), v1::KEY_INVALID);
    EXPECT_EQ(r.http_status(), 401);
    EXPECT_FALSE(r.allowed());

    for (const v1::Api& other : policy_.apis()) {
      if (other.name() == e.api) continue;
      r = env_.Http(Key(other.name(), all_scopes_), e.api, e.method, e.path);
      EXPECT_EQ(r.reason(), v1::WRONG_API) << "key of " << other.name();
      EXPECT_EQ(r.http_status(), 403);
      EXPECT_FALSE(r.allowed());
    }
  }

  // Every route of the policy is in the table and vice versa: the policy
  // models the seed page completely and nothing more.
  void ExpectTableIsThePolicy(const std::vector<Endpoint>& table) {
    std::multiset<std::string> documented;
    for (const Endpoint& e : table) {
      documented.insert(absl::StrCat(e.api, " ", e.method, " ", e.route));
    }
    std::multiset<std::string> modelled;
    for (const v1::Api& api : policy_.apis()) {
      for (const v1::Route& route : api.routes()) {
        modelled.insert(
            absl::StrCat(api.name(), " ", route.method(), " ", route.path()));
      }
    }
    EXPECT_THAT(modelled, ElementsAreArray(documented));
  }

  CoreTestEnv env_;
  v1::Policy policy_;
  std::vector<std::string> all_scopes_;
};

TEST_F(SeedEndpointsTest, MaxAiEveryEndpoint) {
  LoadPolicy("examples/policies/maxcare.json");
  ExpectTableIsThePolicy(MaxAiEndpoints());
  for (const Endpoint& e : MaxAiEndpoints()) Walk(e);
}

TEST_F(SeedEndpointsTest, RxScaleEveryEndpoint) {
  LoadPolicy("examples/policies/rxscale.json");
  ExpectTableIsThePolicy(RxScaleEndpoints());
  for (const Endpoint& e : RxScaleEndpoints()) Walk(e);
}

TEST_F(SeedEndpointsTest, MaxAiDocumentedErrorMessage) {
  LoadPolicy("examples/policies/maxcare.json");
  const v1::AuthorizeResponse r =
      env_.Http(Key("marketplace", {"read:appointments"}), "marketplace", "GET",
                "/v1/patients/pat_123");
  EXPECT_EQ(r.message(), "Insufficient scope. Required: read:patients");
  EXPECT_EQ(r.http_status(), 403);
}

TEST_F(SeedEndpointsTest, MaxAiKeysCarryTheDocumentedPrefix) {
  LoadPolicy("examples/policies/maxcare.json");
  EXPECT_TRUE(absl::StartsWith(Key("marketplace", {}), "max_prd_ak_"));
}

TEST_F(SeedEndpointsTest, RxScaleSharedScopesWorkOnBothApis) {
  LoadPolicy("examples/policies/rxscale.json");
  const std::string both =
      env_.CreateKey({"management", "public"}, {"product:read", "order:read"})
          .secret();
  EXPECT_TRUE(env_.Http(both, "management", "GET", "/products/").allowed());
  EXPECT_TRUE(env_.Http(both, "public", "GET", "/products/shop_1").allowed());
  EXPECT_TRUE(env_.Http(both, "public", "GET", "/orders/shop_1").allowed());
  // order:read without prescription:read: order data is stripped on
  // Management.
  EXPECT_THAT(env_.Http(both, "management", "GET", "/orders/o_1").redactions(),
              ElementsAreArray({"prescription"}));
}

TEST_F(SeedEndpointsTest, RxScaleCommonScenarioBundlesGrantTheirRows) {
  LoadPolicy("examples/policies/rxscale.json");
  // "Common Scenarios": use case -> recommended permissions.
  const std::vector<std::pair<std::string, std::vector<std::string>>> rows = {
      {"pharmacy-order-management", {"orders_read", "orders_write"}},
      {"pharmacy-stock-sync", {"stock_read", "pharmacy_sku_write"}},
      {"pharmacy-order-stock-management",
       {"orders_read", "orders_write", "stock_read", "pharmacy_sku_write"}},
      {"pharmacy-webhooks", {"webhooks_read", "webhooks_write"}},
      {"telemedicine-checkout",
       {"product:read", "create_prescription_checkout"}},
      {"telemedicine-checkout-tracking",
       {"product:read", "create_prescription_checkout", "order:read"}},
      {"organisation-analytics",
       {"order:read", "prescription:read", "doctor:read",
        "doctor_statistics:read", "patient:read"}},
      {"waiting-room",
       {"waiting_room:read", "waiting_room:write", "patient:read"}},
      {"wallet-pass-management",
       {"wallet_pass_template:read", "wallet_pass:read",
        "wallet_pass_push_notification:write"}},
  };
  ASSERT_EQ(policy_.bundles_size(), static_cast<int>(rows.size()));
  for (const auto& [bundle, scopes] : rows) {
    SCOPED_TRACE(bundle);
    const v1::CreateKeyResponse key = env_.CreateKey(
        {"external-pharmacy", "management", "public"}, {}, {bundle});
    // Effective scopes come in policy order; the row in the page's order.
    EXPECT_THAT(key.key().effective_scopes(),
                ::testing::UnorderedElementsAreArray(scopes));
  }
}

}  // namespace
}  // namespace scopekeeper
