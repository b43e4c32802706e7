#include "server/decision/decision_engine.h"

#include <regex>
#include <string>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/notification.h"
#include "base/time_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/policy/key_secret.h"
#include "server/policy/names.h"
#include "server/testing/core_test_env.h"
#include "server/testing/held_sync.h"

namespace scopekeeper {
namespace {

using ::testing::ElementsAre;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// The test policy with bundle "order-management" narrowed to orders_read.
std::string PolicyWithNarrowedBundle() {
  std::string policy(kTestPolicyJson);
  const std::string bundle = R"("scopes": ["orders_read", "orders_write"]})";
  const size_t at = policy.find(bundle);
  EXPECT_NE(at, std::string::npos);
  if (at != std::string::npos) {
    policy.replace(at, bundle.size(), R"("scopes": ["orders_read"]})");
  }
  return policy;
}

class DecisionEngineTest : public ::testing::Test {
 protected:
  void SetUp() override { env_.PutPolicyJson(kTestPolicyJson); }

  absl::Status AuthorizeStatus(const v1::AuthorizeRequest& request,
                               v1::AuthorizeResponse* response = nullptr) {
    v1::AuthorizeResponse ignored;
    return env_.engine.Authorize(request, response ? response : &ignored);
  }

  CoreTestEnv env_;
};

TEST_F(DecisionEngineTest, AllowsRouteWithRequiredScope) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  const auto r =
      env_.Http(key.secret(), "pharmacy", "GET", "/v1/pharmacy/orders/o_1");
  EXPECT_TRUE(r.allowed());
  EXPECT_EQ(r.reason(), v1::ALLOWED);
  EXPECT_EQ(r.http_status(), 200);
  EXPECT_EQ(r.matched_route(), "GET /orders/{uid}");
  EXPECT_EQ(r.key_id(), key.key().key_id());
  EXPECT_EQ(r.organization_id(), "org_a");
  EXPECT_EQ(r.revision(), key.revision());
  EXPECT_THAT(r.missing_scopes(), IsEmpty());
  EXPECT_THAT(r.redactions(), IsEmpty());
}

TEST_F(DecisionEngineTest, InsufficientScopeNamesTheMissingScope) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  const auto r = env_.Http(key.secret(), "pharmacy", "PATCH",
                           "/v1/pharmacy/orders/o_1/status");
  EXPECT_FALSE(r.allowed());
  EXPECT_EQ(r.reason(), v1::INSUFFICIENT_SCOPE);
  EXPECT_EQ(r.http_status(), 403);
  EXPECT_EQ(r.message(), "Insufficient scope. Required: orders_write");
  EXPECT_THAT(r.missing_scopes(), ElementsAre("orders_write"));
  EXPECT_EQ(r.matched_route(), "PATCH /orders/{uid}/status");
}

TEST_F(DecisionEngineTest, SeveralMissingScopesAreListedInPolicyOrder) {
  const auto key = env_.CreateKey({"pharmacy"}, {"stock_write"});
  const auto r = env_.Http(key.secret(), "pharmacy", "POST",
                           "/v1/pharmacy/orders/o_1/approve");
  EXPECT_EQ(r.message(),
            "Insufficient scope. Required: orders_read, orders_write");
  EXPECT_THAT(r.missing_scopes(), ElementsAre("orders_read", "orders_write"));
}

TEST_F(DecisionEngineTest, AnyOfAcceptsEitherScopeAndListsAlternatives) {
  const auto stock = env_.CreateKey({"pharmacy"}, {"stock_write"});
  const auto sku = env_.CreateKey({"pharmacy"}, {"pharmacy_sku_write"});
  const auto neither = env_.CreateKey({"pharmacy"}, {"orders_read"});
  const std::string path = "/v1/pharmacy/skus/s_1/stock";
  EXPECT_TRUE(env_.Http(stock.secret(), "pharmacy", "PATCH", path).allowed());
  EXPECT_TRUE(env_.Http(sku.secret(), "pharmacy", "PATCH", path).allowed());
  const auto r = env_.Http(neither.secret(), "pharmacy", "PATCH", path);
  EXPECT_EQ(r.reason(), v1::INSUFFICIENT_SCOPE);
  EXPECT_EQ(r.message(),
            "Insufficient scope. Required one of: stock_write, "
            "pharmacy_sku_write");
  EXPECT_THAT(r.missing_scopes(),
              ElementsAre("stock_write", "pharmacy_sku_write"));
}

TEST_F(DecisionEngineTest, AuthenticatedOnlyRouteNeedsNoScope) {
  const auto key = env_.CreateKey({"pharmacy"}, {});
  EXPECT_TRUE(env_.Http(key.secret(), "pharmacy", "GET", "/v1/pharmacy/ping")
                  .allowed());
  const auto other = env_.CreateKey({"management"}, {});
  EXPECT_EQ(env_.Http(other.secret(), "pharmacy", "GET", "/v1/pharmacy/ping")
                .reason(),
            v1::WRONG_API);
}

TEST_F(DecisionEngineTest, RedactsUnlessScopeHeld) {
  const auto partial = env_.CreateKey({"management"}, {"order:read"});
  const auto full =
      env_.CreateKey({"management"}, {"order:read", "prescription:read"});
  const auto r1 =
      env_.Http(partial.secret(), "management", "GET", "/orders/o1");
  EXPECT_TRUE(r1.allowed());
  EXPECT_THAT(r1.redactions(), ElementsAre("prescription"));
  const auto r2 = env_.Http(full.secret(), "management", "GET", "/orders/o1");
  EXPECT_TRUE(r2.allowed());
  EXPECT_THAT(r2.redactions(), IsEmpty());
}

TEST_F(DecisionEngineTest, UnknownAndEmptyKeysAreInvalidWithoutKeyId) {
  for (const std::string& secret : {std::string("rx_ph_doesnotexist"),
                                    std::string(""), std::string("garbage")}) {
    const auto r = env_.Http(secret, "pharmacy", "GET", "/v1/pharmacy/orders/");
    EXPECT_FALSE(r.allowed());
    EXPECT_EQ(r.reason(), v1::KEY_INVALID);
    EXPECT_EQ(r.http_status(), 401);
    EXPECT_EQ(r.message(), "Invalid or expired API key");
    EXPECT_THAT(r.key_id(), IsEmpty());
  }
}

// A key longer than any issued one is a malformed key: KEY_INVALID (401),
// as DESIGN.md's Reason says, not INVALID_ARGUMENT. It is what the end
// client presented, and the gateway must be able to answer it with a 401.
TEST_F(DecisionEngineTest, OverlongKeysAreInvalidKeysNotMalformedRequests) {
  const std::string overlong(kMaxApiKeyLength + 1, 'a');
  const auto r = env_.Http(overlong, "pharmacy", "GET", "/v1/pharmacy/orders/");
  EXPECT_EQ(r.reason(), v1::KEY_INVALID);
  EXPECT_EQ(r.http_status(), 401);
  EXPECT_THAT(r.key_id(), IsEmpty());

  v1::BatchAuthorizeRequest batch;
  *batch.add_requests() = CoreTestEnv::HttpRequest(overlong, "pharmacy", "GET",
                                                   "/v1/pharmacy/orders/");
  v1::BatchAuthorizeResponse responses;
  ASSERT_TRUE(env_.engine.BatchAuthorize(batch, &responses).ok());
  ASSERT_EQ(responses.responses_size(), 1);
  EXPECT_EQ(responses.responses(0).reason(), v1::KEY_INVALID);

  v1::DescribeKeyRequest describe;
  describe.set_api_key(overlong);
  v1::DescribeKeyResponse described;
  EXPECT_EQ(env_.engine.DescribeKey(describe, &described).code(),
            absl::StatusCode::kUnauthenticated);
}

TEST_F(DecisionEngineTest, RevokedKeyIsDeniedByTheNextDecision) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  ASSERT_TRUE(env_.Http(key.secret(), "pharmacy", "GET", "/v1/pharmacy/orders/")
                  .allowed());
  v1::RevokeKeyRequest revoke;
  revoke.set_key_id(key.key().key_id());
  ASSERT_TRUE(env_.registry.RevokeKey(revoke, CoreTestEnv::kActor).ok());
  const auto r =
      env_.Http(key.secret(), "pharmacy", "GET", "/v1/pharmacy/orders/");
  EXPECT_FALSE(r.allowed());
  EXPECT_EQ(r.reason(), v1::KEY_REVOKED);
  EXPECT_EQ(r.http_status(), 401);
  EXPECT_EQ(r.message(), "Invalid or expired API key");
  EXPECT_EQ(r.key_id(), key.key().key_id());
}

TEST_F(DecisionEngineTest, KeyExpiresAtItsExpireTime) {
  v1::CreateKeyRequest request;
  request.set_organization_id("org_a");
  request.add_apis("pharmacy");
  request.add_scopes("orders_read");
  *request.mutable_expire_time() =
      ToProtoTime(env_.clock.Now() + absl::Hours(1));
  auto key = env_.registry.CreateKey(request, CoreTestEnv::kActor);
  ASSERT_TRUE(key.ok()) << key.status();
  const std::string path = "/v1/pharmacy/orders/";
  env_.clock.Advance(absl::Minutes(59));
  EXPECT_TRUE(env_.Http(key->secret(), "pharmacy", "GET", path).allowed());
  env_.clock.Advance(absl::Minutes(1));
  const auto r = env_.Http(key->secret(), "pharmacy", "GET", path);
  EXPECT_EQ(r.reason(), v1::KEY_EXPIRED);
  EXPECT_EQ(r.http_status(), 401);
}

TEST_F(DecisionEngineTest, TimeLimitedGrantStopsCounting) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  v1::GrantScopesRequest grant;
  grant.set_key_id(key.key().key_id());
  grant.add_scopes("orders_write");
  *grant.mutable_expire_time() = ToProtoTime(env_.clock.Now() + absl::Hours(2));
  ASSERT_TRUE(env_.registry.GrantScopes(grant, CoreTestEnv::kActor).ok());
  const std::string path = "/v1/pharmacy/orders/o/status";
  EXPECT_TRUE(env_.Http(key.secret(), "pharmacy", "PATCH", path).allowed());
  env_.clock.Advance(absl::Hours(2));
  EXPECT_EQ(env_.Http(key.secret(), "pharmacy", "PATCH", path).reason(),
            v1::INSUFFICIENT_SCOPE);
  // The permanent grant is unaffected.
  EXPECT_TRUE(env_.Http(key.secret(), "pharmacy", "GET", "/v1/pharmacy/orders/")
                  .allowed());
}

TEST_F(DecisionEngineTest, OrganizationMismatchIsCheckedBeforeApi) {
  const auto key = env_.CreateKey({"management"}, {"orders_read"});
  const auto r = env_.Http(key.secret(), "pharmacy", "GET",
                           "/v1/pharmacy/orders/", "org_b");
  EXPECT_EQ(r.reason(), v1::ORGANIZATION_MISMATCH);
  EXPECT_EQ(r.http_status(), 403);
  // Its own organization, named explicitly, is fine.
  EXPECT_EQ(env_.Http(key.secret(), "pharmacy", "GET", "/v1/pharmacy/orders/",
                      "org_a")
                .reason(),
            v1::WRONG_API);
}

TEST_F(DecisionEngineTest, RouteNotFound) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  for (const char* path :
       {"/v1/pharmacy/nothing", "/orders/", "/v1/pharmacyorders/",
        "/v1/pharmacy/orders/a/b/c", "/v1/pharmacy//orders/",
        "/v1/pharmacy/orders/../orders/"}) {
    const auto r = env_.Http(key.secret(), "pharmacy", "GET", path);
    EXPECT_EQ(r.reason(), v1::ROUTE_NOT_FOUND) << path;
    EXPECT_EQ(r.http_status(), 404) << path;
    EXPECT_THAT(r.matched_route(), IsEmpty()) << path;
  }
  // The method matters.
  EXPECT_EQ(
      env_.Http(key.secret(), "pharmacy", "DELETE", "/v1/pharmacy/orders/")
          .reason(),
      v1::ROUTE_NOT_FOUND);
}

TEST_F(DecisionEngineTest, SelectsTheApiByHostAndPathWhenNoneIsNamed) {
  std::string policy(kTestPolicyJson);
  const std::string management = R"("name": "management",)";
  ASSERT_NE(policy.find(management), std::string::npos);
  policy.replace(policy.find(management), management.size(),
                 R"("name": "management", "hosts": ["mgmt.example"],)");
  env_.PutPolicyJson(policy);
  const auto pharmacy = env_.CreateKey({"pharmacy"}, {"orders_read"});
  const auto mgmt = env_.CreateKey({"management"}, {"order:read"});
  const auto Selected = [&](absl::string_view secret, absl::string_view host,
                            absl::string_view path) {
    v1::AuthorizeRequest request =
        CoreTestEnv::HttpRequest(secret, "", "GET", path);
    request.mutable_http()->set_host(std::string(host));
    v1::AuthorizeResponse response;
    EXPECT_TRUE(AuthorizeStatus(request, &response).ok()) << path;
    return response;
  };
  // By path prefix, on any host.
  auto r = Selected(pharmacy.secret(), "", "/v1/pharmacy/orders/?x=1");
  EXPECT_TRUE(r.allowed());
  EXPECT_EQ(r.matched_route(), "GET /orders/");
  // By host; the key must still be valid for the API selected.
  r = Selected(mgmt.secret(), "MGMT.example:443", "/orders/o1");
  EXPECT_TRUE(r.allowed());
  EXPECT_EQ(r.matched_route(), "GET /orders/{uid}");
  EXPECT_THAT(r.redactions(), ElementsAre("prescription"));
  EXPECT_EQ(Selected(pharmacy.secret(), "mgmt.example", "/orders/o1").reason(),
            v1::WRONG_API);
  // No API selected: ROUTE_NOT_FOUND, after the key and organization checks.
  r = Selected(mgmt.secret(), "other.example", "/orders/o1");
  EXPECT_FALSE(r.allowed());
  EXPECT_EQ(r.reason(), v1::ROUTE_NOT_FOUND);
  EXPECT_EQ(r.http_status(), 404);
  EXPECT_EQ(Selected("nope", "other.example", "/orders/o1").reason(),
            v1::KEY_INVALID);
  // The host is validated like the path.
  v1::AuthorizeRequest bad =
      CoreTestEnv::HttpRequest(mgmt.secret(), "", "GET", "/orders/o1");
  bad.mutable_http()->set_host("mgmt.example\xff");
  EXPECT_THAT(AuthorizeStatus(bad).message(), HasSubstr("http.host"));
  // A named API ignores the host.
  v1::AuthorizeRequest named = CoreTestEnv::HttpRequest(
      pharmacy.secret(), "pharmacy", "GET", "/v1/pharmacy/orders/");
  named.mutable_http()->set_host("mgmt.example");
  v1::AuthorizeResponse response;
  ASSERT_TRUE(AuthorizeStatus(named, &response).ok());
  EXPECT_TRUE(response.allowed());
}

TEST_F(DecisionEngineTest, QueryStringAndTrailingSlashAreInsignificant) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  for (const char* path :
       {"/v1/pharmacy/orders", "/v1/pharmacy/orders/",
        "/v1/pharmacy/orders?x=1", "/v1/pharmacy/orders/?email=a@b.c"}) {
    const auto r = env_.Http(key.secret(), "pharmacy", "get", path);
    EXPECT_TRUE(r.allowed()) << path;
    EXPECT_EQ(r.matched_route(), "GET /orders/") << path;
  }
}

TEST_F(DecisionEngineTest, TraceIdEchoedOrGeneratedAsUuidV4) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  v1::AuthorizeRequest request;
  request.set_api_key(key.secret());
  request.mutable_requirement()->add_all_of("orders_read");
  v1::AuthorizeResponse r1, r2;
  ASSERT_TRUE(AuthorizeStatus(request, &r1).ok());
  ASSERT_TRUE(AuthorizeStatus(request, &r2).ok());
  const std::regex uuid_v4(
      "[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}");
  EXPECT_TRUE(std::regex_match(r1.trace_id(), uuid_v4)) << r1.trace_id();
  EXPECT_NE(r1.trace_id(), r2.trace_id());
  absl::flat_hash_set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(AuthorizeStatus(request, &r2).ok());
    ASSERT_TRUE(std::regex_match(r2.trace_id(), uuid_v4)) << r2.trace_id();
    seen.insert(r2.trace_id());
  }
  EXPECT_EQ(seen.size(), 200u);
  request.set_trace_id("550e8400-e29b-41d4-a716-446655440000");
  ASSERT_TRUE(AuthorizeStatus(request, &r1).ok());
  EXPECT_EQ(r1.trace_id(), "550e8400-e29b-41d4-a716-446655440000");
}

TEST_F(DecisionEngineTest, ExplicitRequirement) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  v1::AuthorizeRequest request;
  request.set_api_key(key.secret());
  request.mutable_requirement()->add_all_of("orders_read");
  v1::AuthorizeResponse r;
  ASSERT_TRUE(AuthorizeStatus(request, &r).ok());
  EXPECT_TRUE(r.allowed());
  request.mutable_requirement()->add_any_of("stock_write");
  ASSERT_TRUE(AuthorizeStatus(request, &r).ok());
  EXPECT_FALSE(r.allowed());
  EXPECT_EQ(r.message(), "Insufficient scope. Required one of: stock_write");
}

TEST_F(DecisionEngineTest, MalformedRequestsAreInvalidArgumentNamingTheField) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  struct Case {
    std::string name;
    std::function<void(v1::AuthorizeRequest*)> mutate;
    std::string field;
  };
  const std::vector<Case> cases = {
      {"no target", [](v1::AuthorizeRequest* r) { r->clear_target(); },
       "target"},
      {"empty requirement",
       [](v1::AuthorizeRequest* r) { r->mutable_requirement(); },
       "requirement"},
      {"contradictory requirement",
       [](v1::AuthorizeRequest* r) {
         r->mutable_requirement()->set_authenticated_only(true);
         r->mutable_requirement()->add_all_of("orders_read");
       },
       "requirement"},
      {"undeclared scope",
       [](v1::AuthorizeRequest* r) {
         r->mutable_requirement()->add_all_of("orders_read");
         r->mutable_requirement()->add_all_of("nope");
       },
       "requirement.all_of[1]"},
      {"malformed scope",
       [](v1::AuthorizeRequest* r) {
         r->mutable_requirement()->add_any_of("Bad Scope");
       },
       "requirement.any_of[0]"},
      {"unknown api",
       [](v1::AuthorizeRequest* r) {
         r->mutable_http()->set_api("nope");
         r->mutable_http()->set_method("GET");
         r->mutable_http()->set_path("/");
       },
       "http.api"},
      {"bad method",
       [](v1::AuthorizeRequest* r) {
         r->mutable_http()->set_api("pharmacy");
         r->mutable_http()->set_method("BREW");
         r->mutable_http()->set_path("/");
       },
       "http.method"},
      {"empty path",
       [](v1::AuthorizeRequest* r) {
         r->mutable_http()->set_api("pharmacy");
         r->mutable_http()->set_method("GET");
       },
       "http.path"},
      {"long path",
       [](v1::AuthorizeRequest* r) {
         r->mutable_http()->set_api("pharmacy");
         r->mutable_http()->set_method("GET");
         r->mutable_http()->set_path("/" + std::string(kMaxPathLength, 'p'));
       },
       "http.path"},
      {"path not UTF-8",
       [](v1::AuthorizeRequest* r) {
         r->mutable_http()->set_api("pharmacy");
         r->mutable_http()->set_method("GET");
         r->mutable_http()->set_path("/orders/\xc3");
       },
       "http.path"},
      {"path with NUL",
       [](v1::AuthorizeRequest* r) {
         r->mutable_http()->set_api("pharmacy");
         r->mutable_http()->set_method("GET");
         r->mutable_http()->set_path(std::string("/orders/\0", 9));
       },
       "http.path"},
      {"too many scopes",
       [](v1::AuthorizeRequest* r) {
         for (size_t i = 0; i <= kMaxScopesPerRequest; ++i) {
           r->mutable_requirement()->add_any_of("orders_read");
         }
       },
       "requirement.any_of"},
      {"trace id not UTF-8",
       [](v1::AuthorizeRequest* r) {
         r->set_trace_id("\xff");
         r->mutable_requirement()->add_all_of("orders_read");
       },
       "trace_id"},
      {"bad organization",
       [](v1::AuthorizeRequest* r) {
         r->set_organization_id(std::string("org\0x", 5));
         r->mutable_requirement()->add_all_of("orders_read");
       },
       "organization_id"},
  };
  for (const Case& c : cases) {
    v1::AuthorizeRequest request;
    request.set_api_key(key.secret());
    c.mutate(&request);
    const absl::Status s = AuthorizeStatus(request);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(s.message(), HasSubstr(c.field)) << c.name;
  }
}

TEST_F(DecisionEngineTest, CacheMissFallsBackToTheStore) {
  // A record committed straight to the store, bypassing the Registry: the
  // cache does not hold it.
  storage::KeyRecord record;
  record.mutable_key()->set_key_id("key_elsewhere");
  record.mutable_key()->set_organization_id("org_a");
  record.mutable_key()->add_apis("pharmacy");
  record.mutable_key()->add_grants()->set_scope("orders_read");
  record.mutable_key()->set_status(v1::ACTIVE);
  record.add_secrets()->set_sha256(
      std::string(HashSecret("rx_ph_elsewhere").view()));
  storage::Mutation m;
  m.revision = env_.store.Revision().value() + 1;
  m.put_keys.push_back(record);
  ASSERT_TRUE(env_.store.Commit(m).ok());
  const size_t cached = env_.state.cache().size();
  const auto r =
      env_.Http("rx_ph_elsewhere", "pharmacy", "GET", "/v1/pharmacy/orders/");
  EXPECT_TRUE(r.allowed());
  EXPECT_EQ(r.key_id(), "key_elsewhere");
  // A miss never fills the cache (it could resurrect an erased secret).
  EXPECT_EQ(env_.state.cache().size(), cached);
}

TEST_F(DecisionEngineTest, PolicyChangesApplyToExistingKeys) {
  const auto key = env_.CreateKey({"pharmacy"}, {}, {"order-management"});
  const std::string path = "/v1/pharmacy/orders/o/status";
  EXPECT_TRUE(env_.Http(key.secret(), "pharmacy", "PATCH", path).allowed());
  std::string changed(kTestPolicyJson);
  const std::string from =
      R"("name": "order-management", "scopes": ["orders_read", "orders_write"])";
  changed.replace(changed.find(from), from.size(),
                  R"("name": "order-management", "scopes": ["orders_read"])");
  env_.PutPolicyJson(changed);
  const auto r = env_.Http(key.secret(), "pharmacy", "PATCH", path);
  EXPECT_EQ(r.reason(), v1::INSUFFICIENT_SCOPE);
  EXPECT_EQ(r.revision(), env_.state.revision());
}

TEST_F(DecisionEngineTest, MinRevisionBeyondEveryKnownRevisionIsOutOfRange) {
  // An unauthenticated caller asking for min_revision 2^63 used to park a
  // gRPC callback thread until its deadline; eight of them stalled the
  // server. Nothing can ever reach it: the answer comes at once.
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  v1::AuthorizeRequest request;
  request.set_api_key("x");
  request.mutable_requirement()->set_authenticated_only(true);
  request.set_min_revision(uint64_t{1} << 63);
  v1::AuthorizeResponse r;
  const DecisionEngine::Outcome outcome = env_.engine.TryAuthorize(request, &r);
  ASSERT_TRUE(outcome.ready());
  EXPECT_EQ(outcome.status.code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(
      outcome.status.message(),
      HasSubstr(absl::StrCat("min_revision: revision ", uint64_t{1} << 63,
                             " is beyond the latest revision of this "
                             "server (",
                             env_.state.revision(), ")")));
  // The applied revision itself is decided at once.
  request.set_api_key(key.secret());
  request.set_min_revision(env_.state.revision());
  EXPECT_TRUE(env_.engine.TryAuthorize(request, &r).ready());
  EXPECT_TRUE(r.allowed());
  // So is a batch naming an unreachable revision in any entry.
  v1::BatchAuthorizeRequest batch;
  *batch.add_requests() = request;
  batch.add_requests()->set_min_revision(env_.state.revision() + 1);
  v1::BatchAuthorizeResponse out;
  const DecisionEngine::Outcome batched =
      env_.engine.TryBatchAuthorize(batch, &out);
  ASSERT_TRUE(batched.ready());
  EXPECT_EQ(batched.status.code(), absl::StatusCode::kOutOfRange);
  EXPECT_THAT(batched.status.message(), HasSubstr("requests[1].min_revision"));
}

// On a cluster replica (a horizon probe set) a min_revision beyond what it
// has heard of may have been written on another replica a moment ago: it is
// awaited, and the probe's read of the cluster settles it.
TEST_F(DecisionEngineTest, MinRevisionBeyondTheHorizonOfAReplicaIsProbed) {
  struct Probe final : ServingState::HorizonProbe {
    void ProbeSoon() override { ++probes; }
    int probes = 0;
  } probe;
  env_.state.SetHorizonProbe(&probe);
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  v1::AuthorizeRequest request;
  request.set_api_key(key.secret());
  request.mutable_requirement()->add_all_of("orders_read");
  request.set_min_revision(env_.state.horizon() + 1000);
  v1::AuthorizeResponse r;
  const DecisionEngine::Outcome outcome = env_.engine.TryAuthorize(request, &r);
  ASSERT_FALSE(outcome.ready());
  EXPECT_EQ(outcome.await_revision, request.min_revision());
  // The blocking form: the read finds the cluster behind the request.
  absl::Status blocked;
  std::thread caller(
      [&] { blocked = env_.engine.Authorize(request, &r, absl::Seconds(30)); });
  while (env_.state.parked_waits() == 0) std::this_thread::yield();
  env_.state.EndHorizonRead(env_.state.BeginHorizonRead(),
                            env_.state.revision());
  caller.join();
  EXPECT_EQ(blocked.code(), absl::StatusCode::kOutOfRange) << blocked;
  EXPECT_GE(probe.probes, 1);
  env_.state.SetHorizonProbe(nullptr);
}

TEST_F(DecisionEngineTest, MinRevisionNotYetAppliedIsAwaitedThenDecided) {
  const auto key = env_.CreateKey({"pharmacy"}, {});
  const uint64_t next = env_.state.revision() + 1;
  // A replica knows the cluster is at `next` before it applies it.
  env_.state.RaiseHorizon(next);
  v1::AuthorizeRequest request;
  request.set_api_key(key.secret());
  request.mutable_requirement()->add_all_of("orders_read");
  request.set_min_revision(next);
  v1::AuthorizeResponse r;
  const DecisionEngine::Outcome waiting = env_.engine.TryAuthorize(request, &r);
  ASSERT_FALSE(waiting.ready());
  EXPECT_EQ(waiting.await_revision, next);
  // Parked without a thread; the grant's publication runs the decision.
  absl::Status decided = absl::UnknownError("not run");
  v1::AuthorizeResponse waited;
  env_.state.WhenApplied(next, [&](absl::Status applied) {
    decided = applied.ok() ? env_.engine.TryAuthorize(request, &waited).status
                           : applied;
  });
  EXPECT_EQ(env_.state.parked_waits(), 1u);
  v1::GrantScopesRequest grant;
  grant.set_key_id(key.key().key_id());
  grant.add_scopes("orders_read");
  ASSERT_TRUE(env_.registry.GrantScopes(grant, CoreTestEnv::kActor).ok());
  EXPECT_TRUE(decided.ok()) << decided;
  EXPECT_TRUE(waited.allowed());
  EXPECT_GE(waited.revision(), next);
  EXPECT_EQ(env_.state.parked_waits(), 0u);
}

TEST_F(DecisionEngineTest, RotatedSecretWorksDuringGracePeriodOnly) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  v1::RotateKeyRequest rotate;
  rotate.set_key_id(key.key().key_id());
  rotate.mutable_grace_period()->set_seconds(600);
  auto rotated = env_.registry.RotateKey(rotate, CoreTestEnv::kActor);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_NE(rotated->secret(), key.secret());
  EXPECT_EQ(rotated->key().key_id(), key.key().key_id());
  const std::string path = "/v1/pharmacy/orders/";
  EXPECT_TRUE(env_.Http(key.secret(), "pharmacy", "GET", path).allowed());
  EXPECT_TRUE(env_.Http(rotated->secret(), "pharmacy", "GET", path).allowed());
  env_.clock.Advance(absl::Seconds(600));
  EXPECT_EQ(env_.Http(key.secret(), "pharmacy", "GET", path).reason(),
            v1::KEY_INVALID);
  EXPECT_TRUE(env_.Http(rotated->secret(), "pharmacy", "GET", path).allowed());
}

TEST_F(DecisionEngineTest, BatchAnswersMatchSingleAnswersInOrder) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  v1::BatchAuthorizeRequest batch;
  const std::vector<std::pair<std::string, std::string>> targets = {
      {"GET", "/v1/pharmacy/orders/"},
      {"PATCH", "/v1/pharmacy/orders/x/status"},
      {"GET", "/v1/pharmacy/missing"}};
  for (const auto& [method, path] : targets) {
    auto* r = batch.add_requests();
    r->set_api_key(key.secret());
    r->set_trace_id("t1");
    r->mutable_http()->set_api("pharmacy");
    r->mutable_http()->set_method(method);
    r->mutable_http()->set_path(path);
  }
  v1::BatchAuthorizeResponse out;
  ASSERT_TRUE(env_.engine.BatchAuthorize(batch, &out).ok());
  ASSERT_EQ(out.responses_size(), 3);
  for (int i = 0; i < 3; ++i) {
    v1::AuthorizeResponse single;
    ASSERT_TRUE(AuthorizeStatus(batch.requests(i), &single).ok());
    EXPECT_EQ(out.responses(i).SerializeAsString(), single.SerializeAsString())
        << i;
  }
  EXPECT_EQ(out.responses(1).reason(), v1::INSUFFICIENT_SCOPE);
  EXPECT_EQ(out.responses(2).reason(), v1::ROUTE_NOT_FOUND);
}

// Moves the clock on after each decision it sees, and keeps the latencies.
class ClockMovingObserver final : public DecisionObserver {
 public:
  ClockMovingObserver(FakeClock* clock, absl::Duration step)
      : clock_(clock), step_(step) {}
  void OnCacheLookup(bool) override {}
  void OnDecision(absl::string_view, const v1::AuthorizeRequest&,
                  const v1::AuthorizeResponse&,
                  absl::Duration latency) override {
    latencies.push_back(latency);
    clock_->Advance(step_);
  }
  std::vector<absl::Duration> latencies;

 private:
  FakeClock* const clock_;
  const absl::Duration step_;
};

// A batch is decided at one instant, read once: a key that expires while
// the batch is decided is decided as at the batch's start for every entry,
// never allowed for some entries and denied for others. Each entry's
// latency is its own (they chain), not the time since the batch began.
TEST_F(DecisionEngineTest, BatchIsDecidedAtOneInstant) {
  v1::CreateKeyRequest create;
  create.set_organization_id("org_a");
  create.add_apis("pharmacy");
  create.add_scopes("orders_read");
  *create.mutable_expire_time() =
      ToProtoTime(env_.clock.Now() + absl::Minutes(1));
  auto key = env_.registry.CreateKey(create, CoreTestEnv::kActor);
  ASSERT_TRUE(key.ok()) << key.status();
  ClockMovingObserver observer(&env_.clock, absl::Minutes(2));
  DecisionEngine engine(&env_.state, &env_.store, &env_.clock, &env_.usage,
                        &observer);
  v1::BatchAuthorizeRequest batch;
  for (int i = 0; i < 3; ++i) {
    auto* r = batch.add_requests();
    r->set_api_key(key->secret());
    r->mutable_http()->set_api("pharmacy");
    r->mutable_http()->set_method("GET");
    r->mutable_http()->set_path("/v1/pharmacy/orders/");
  }
  v1::BatchAuthorizeResponse out;
  ASSERT_TRUE(engine.BatchAuthorize(batch, &out).ok());
  ASSERT_EQ(out.responses_size(), 3);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(out.responses(i).allowed()) << i;
  EXPECT_THAT(
      observer.latencies,
      ElementsAre(absl::ZeroDuration(), absl::Minutes(2), absl::Minutes(2)));
  // The clock moved on 6 minutes: the next batch is decided then.
  ASSERT_TRUE(engine.BatchAuthorize(batch, &out).ok());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(out.responses(i).reason(), v1::KEY_EXPIRED) << i;
  }
}

// Batches hash every key up front: each entry must still be decided with
// its own key, whatever the mix of known, unknown, empty and revoked keys.
TEST_F(DecisionEngineTest, BatchOfDifferentKeysMatchesSingleAnswers) {
  const auto reader = env_.CreateKey({"pharmacy"}, {"orders_read"});
  const auto writer = env_.CreateKey({"pharmacy"}, {"orders_write"});
  const auto revoked = env_.CreateKey({"pharmacy"}, {"orders_read"});
  v1::RevokeKeyRequest revoke;
  revoke.set_key_id(revoked.key().key_id());
  ASSERT_TRUE(env_.registry.RevokeKey(revoke, CoreTestEnv::kActor).ok());
  const std::vector<std::string> secrets = {reader.secret(),  "",
                                            writer.secret(),  "rx_ph_unknown",
                                            revoked.secret(), writer.secret(),
                                            reader.secret()};
  v1::BatchAuthorizeRequest batch;
  constexpr int kRepeats = 6;  // 42 entries: across prefetch windows
  for (int i = 0; i < kRepeats * static_cast<int>(secrets.size()); ++i) {
    const std::string& secret = secrets[i % secrets.size()];
    auto* r = batch.add_requests();
    r->set_api_key(secret);
    r->set_trace_id("t1");
    r->mutable_http()->set_api("pharmacy");
    r->mutable_http()->set_method("GET");
    r->mutable_http()->set_path("/v1/pharmacy/orders/o_1");
  }
  v1::BatchAuthorizeResponse out;
  ASSERT_TRUE(env_.engine.BatchAuthorize(batch, &out).ok());
  ASSERT_EQ(out.responses_size(), kRepeats * static_cast<int>(secrets.size()));
  for (int i = 0; i < out.responses_size(); ++i) {
    v1::AuthorizeResponse single;
    ASSERT_TRUE(AuthorizeStatus(batch.requests(i), &single).ok());
    EXPECT_EQ(out.responses(i).SerializeAsString(), single.SerializeAsString())
        << i;
  }
  EXPECT_EQ(out.responses(0).key_id(), reader.key().key_id());
  EXPECT_TRUE(out.responses(0).allowed());
  EXPECT_EQ(out.responses(1).reason(), v1::KEY_INVALID);
  EXPECT_EQ(out.responses(2).reason(), v1::INSUFFICIENT_SCOPE);
  EXPECT_EQ(out.responses(2).key_id(), writer.key().key_id());
  EXPECT_EQ(out.responses(3).reason(), v1::KEY_INVALID);
  EXPECT_EQ(out.responses(4).reason(), v1::KEY_REVOKED);
  EXPECT_EQ(out.responses(6).key_id(), reader.key().key_id());
  EXPECT_EQ(out.responses(37).key_id(), writer.key().key_id());  // 37 % 7 = 2
}

// BatchAuthorizeRequest.compact: the same decisions, without the per-entry
// identity, trace id, message and route (issue #18: what a batch entry
// costs to build and send).
TEST_F(DecisionEngineTest, CompactBatchCarriesTheSameDecisionsOnly) {
  const auto reader = env_.CreateKey({"pharmacy"}, {"orders_read"});
  const auto partial = env_.CreateKey({"management"}, {"order:read"});
  const auto revoked = env_.CreateKey({"pharmacy"}, {"orders_read"});
  v1::RevokeKeyRequest revoke;
  revoke.set_key_id(revoked.key().key_id());
  ASSERT_TRUE(env_.registry.RevokeKey(revoke, CoreTestEnv::kActor).ok());
  v1::BatchAuthorizeRequest batch;
  *batch.add_requests() = CoreTestEnv::HttpRequest(
      reader.secret(), "pharmacy", "GET", "/v1/pharmacy/orders/");
  *batch.add_requests() = CoreTestEnv::HttpRequest(
      partial.secret(), "management", "GET", "/orders/o1");  // redacted
  *batch.add_requests() = CoreTestEnv::HttpRequest(
      reader.secret(), "pharmacy", "PATCH", "/v1/pharmacy/orders/x/status");
  *batch.add_requests() = CoreTestEnv::HttpRequest(
      revoked.secret(), "pharmacy", "GET", "/v1/pharmacy/orders/");
  *batch.add_requests() = CoreTestEnv::HttpRequest(
      "rx_ph_unknown", "pharmacy", "GET", "/v1/pharmacy/orders/");
  *batch.add_requests() = CoreTestEnv::HttpRequest(
      reader.secret(), "pharmacy", "GET", "/v1/pharmacy/missing");
  batch.mutable_requests(2)->set_trace_id("t1");  // not echoed either
  v1::BatchAuthorizeResponse full;
  ASSERT_TRUE(env_.engine.BatchAuthorize(batch, &full).ok());
  batch.set_compact(true);
  v1::BatchAuthorizeResponse compact;
  ASSERT_TRUE(env_.engine.BatchAuthorize(batch, &compact).ok());
  ASSERT_EQ(compact.responses_size(), batch.requests_size());
  ASSERT_EQ(full.responses_size(), batch.requests_size());
  for (int i = 0; i < batch.requests_size(); ++i) {
    const v1::AuthorizeResponse& f = full.responses(i);
    const v1::AuthorizeResponse& c = compact.responses(i);
    EXPECT_EQ(c.allowed(), f.allowed()) << i;
    EXPECT_EQ(c.reason(), f.reason()) << i;
    EXPECT_EQ(c.http_status(), f.http_status()) << i;
    EXPECT_THAT(c.missing_scopes(), ElementsAreArray(f.missing_scopes())) << i;
    EXPECT_THAT(c.redactions(), ElementsAreArray(f.redactions())) << i;
    EXPECT_EQ(c.revision(), f.revision()) << i;
    EXPECT_FALSE(f.trace_id().empty()) << i;  // the full answer has one
    EXPECT_THAT(c.trace_id(), IsEmpty()) << i;
    EXPECT_THAT(c.message(), IsEmpty()) << i;
    EXPECT_THAT(c.key_id(), IsEmpty()) << i;
    EXPECT_THAT(c.organization_id(), IsEmpty()) << i;
    EXPECT_THAT(c.app_id(), IsEmpty()) << i;
    EXPECT_THAT(c.matched_route(), IsEmpty()) << i;
  }
  EXPECT_TRUE(compact.responses(0).allowed());
  EXPECT_THAT(compact.responses(1).redactions(), ElementsAre("prescription"));
  EXPECT_EQ(compact.responses(2).reason(), v1::INSUFFICIENT_SCOPE);
  EXPECT_THAT(compact.responses(2).missing_scopes(), Not(IsEmpty()));
  EXPECT_EQ(compact.responses(3).reason(), v1::KEY_REVOKED);
  EXPECT_EQ(compact.responses(4).reason(), v1::KEY_INVALID);
  EXPECT_EQ(compact.responses(5).reason(), v1::ROUTE_NOT_FOUND);
  // The full answers say what the compact ones leave out.
  EXPECT_EQ(full.responses(0).key_id(), reader.key().key_id());
  EXPECT_FALSE(full.responses(2).message().empty());
  EXPECT_FALSE(full.responses(0).matched_route().empty());
}

TEST_F(DecisionEngineTest, BatchRejectsMoreThanTheLimitAndBadEntries) {
  v1::BatchAuthorizeRequest batch;
  for (int i = 0; i <= kMaxBatchSize; ++i) {
    batch.add_requests()->mutable_requirement()->add_all_of("orders_read");
  }
  v1::BatchAuthorizeResponse out;
  absl::Status s = env_.engine.BatchAuthorize(batch, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("requests"));
  batch.mutable_requests()->DeleteSubrange(0, 2);
  batch.mutable_requests(7)->clear_target();
  out.Clear();
  s = env_.engine.BatchAuthorize(batch, &out);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("requests[7].target"));
}

TEST_F(DecisionEngineTest, DescribeKeyListsSortedEffectiveScopes) {
  const auto key =
      env_.CreateKey({"pharmacy"}, {"stock_write"}, {"order-management"});
  v1::DescribeKeyRequest request;
  request.set_api_key(key.secret());
  v1::DescribeKeyResponse r;
  ASSERT_TRUE(env_.engine.DescribeKey(request, &r).ok());
  EXPECT_THAT(r.scopes(),
              ElementsAre("orders_read", "orders_write", "stock_write"));
  EXPECT_EQ(r.key().key_id(), key.key().key_id());
  EXPECT_EQ(r.revision(), env_.state.revision());
  request.set_organization_id("org_other");
  EXPECT_EQ(env_.engine.DescribeKey(request, &r).code(),
            absl::StatusCode::kPermissionDenied);
  request.set_api_key("rx_ph_unknown");
  request.clear_organization_id();
  const absl::Status s = env_.engine.DescribeKey(request, &r);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(s.message(), "Invalid or expired API key");
}

// If the store cannot be read while a new policy recompiles the cache, the
// keys keep their old compilation; decisions then compile them against the
// new policy themselves, failing closed while the store is unreadable.
TEST_F(DecisionEngineTest, KeyLeftOnTheOldPolicyIsRecompiledAtDecision) {
  const auto key = env_.CreateKey({"pharmacy"}, {}, {"order-management"});
  const std::string path = "/v1/pharmacy/orders/o_1/status";
  ASSERT_TRUE(env_.Http(key.secret(), "pharmacy", "PATCH", path).allowed());

  const std::string narrowed = PolicyWithNarrowedBundle();
  env_.store.SetFailing(storage::FaultInjectingStore::Op::kRead, true);
  env_.PutPolicyJson(narrowed);

  const v1::AuthorizeRequest request =
      CoreTestEnv::HttpRequest(key.secret(), "pharmacy", "PATCH", path);
  v1::AuthorizeResponse response;
  EXPECT_EQ(AuthorizeStatus(request, &response).code(),
            absl::StatusCode::kUnavailable);
  EXPECT_FALSE(response.allowed());

  env_.store.SetFailing(storage::FaultInjectingStore::Op::kRead, false);
  EXPECT_EQ(env_.Http(key.secret(), "pharmacy", "PATCH", path).reason(),
            v1::INSUFFICIENT_SCOPE);
  EXPECT_TRUE(
      env_.Http(key.secret(), "pharmacy", "GET", "/v1/pharmacy/orders/o_1")
          .allowed());
}

// --key_cache_capacity: a cache of 2 digests in front of many keys.
class BoundedCacheTest : public ::testing::Test {
 protected:
  static constexpr size_t kCapacity = 2;
  BoundedCacheTest() : env_(kCapacity) {}
  void SetUp() override { env_.PutPolicyJson(kTestPolicyJson); }

  v1::AuthorizeResponse ReadOrder(const std::string& secret) {
    return env_.Http(secret, "pharmacy", "GET", "/v1/pharmacy/orders/o_1");
  }

  CoreTestEnv env_;
};

TEST_F(BoundedCacheTest, KeysBeyondCapacityAreDecidedFromTheStore) {
  std::vector<v1::CreateKeyResponse> keys;
  for (int i = 0; i < 10; ++i) {
    keys.push_back(env_.CreateKey(
        {"pharmacy"}, {i % 2 == 0 ? "orders_read" : "stock_write"}));
  }
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < 10; ++i) {
      const auto r = ReadOrder(keys[i].secret());
      EXPECT_EQ(r.allowed(), i % 2 == 0) << i;
      EXPECT_EQ(r.reason(), i % 2 == 0 ? v1::ALLOWED : v1::INSUFFICIENT_SCOPE);
      EXPECT_EQ(r.key_id(), keys[i].key().key_id());
    }
  }
  EXPECT_EQ(env_.state.cache().size(), kCapacity);
  EXPECT_GT(env_.state.cache().evictions(), 0u);
  EXPECT_EQ(ReadOrder("rx_ph_not-a-key").reason(), v1::KEY_INVALID);

  // DescribeKey of a key the cache does not hold: from the record it read.
  env_.PushOut(keys[0].secret());
  v1::DescribeKeyRequest describe;
  describe.set_api_key(keys[0].secret());
  v1::DescribeKeyResponse described;
  ASSERT_TRUE(env_.engine.DescribeKey(describe, &described).ok());
  EXPECT_EQ(described.key().key_id(), keys[0].key().key_id());
  EXPECT_THAT(described.scopes(), ElementsAre("orders_read"));
}

TEST_F(BoundedCacheTest, ChangesToUncachedKeysTakeEffect) {
  const auto key = env_.CreateKey({"pharmacy"}, {"stock_write"});
  env_.PushOut(key.secret());
  v1::GrantScopesRequest grant;
  grant.set_key_id(key.key().key_id());
  grant.add_scopes("orders_read");
  ASSERT_TRUE(env_.registry.GrantScopes(grant, CoreTestEnv::kActor).ok());
  env_.PushOut(key.secret());
  EXPECT_TRUE(ReadOrder(key.secret()).allowed());

  v1::RevokeKeyRequest revoke;
  revoke.set_key_id(key.key().key_id());
  ASSERT_TRUE(env_.registry.RevokeKey(revoke, CoreTestEnv::kActor).ok());
  EXPECT_EQ(ReadOrder(key.secret()).reason(), v1::KEY_REVOKED);
  env_.PushOut(key.secret());
  EXPECT_EQ(ReadOrder(key.secret()).reason(), v1::KEY_REVOKED);
}

TEST_F(BoundedCacheTest, PolicyChangeReachesCachedAndUncachedKeys) {
  const auto cached = env_.CreateKey({"pharmacy"}, {}, {"order-management"});
  const auto uncached = env_.CreateKey({"pharmacy"}, {}, {"order-management"});
  env_.PushOut(uncached.secret());
  const std::string path = "/v1/pharmacy/orders/o_1/status";
  ASSERT_TRUE(env_.Http(cached.secret(), "pharmacy", "PATCH", path).allowed());
  ASSERT_TRUE(env_.Cached(cached.secret()));

  const std::string narrowed = PolicyWithNarrowedBundle();
  env_.PutPolicyJson(narrowed);

  for (const auto* key : {&cached, &uncached}) {
    EXPECT_EQ(env_.Http(key->secret(), "pharmacy", "PATCH", path).reason(),
              v1::INSUFFICIENT_SCOPE);
    EXPECT_TRUE(
        env_.Http(key->secret(), "pharmacy", "GET", "/v1/pharmacy/orders/o_1")
            .allowed());
  }
}

// A decision that read a key from the store just before a rotation removed
// that secret must not put the old secret back into the cache.
TEST_F(BoundedCacheTest, StoreReadOvertakenByAWriterIsNotCached) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  env_.PushOut(key.secret());
  bool rotated = false;
  env_.store.SetSecretReadHook([&] {
    if (rotated) return;
    rotated = true;
    v1::RotateKeyRequest rotate;  // no grace: the old secret stops at once
    rotate.set_key_id(key.key().key_id());
    ASSERT_TRUE(env_.registry.RotateKey(rotate, CoreTestEnv::kActor).ok());
  });
  // Read before the rotation returned: either answer is linearizable.
  ReadOrder(key.secret());
  ASSERT_TRUE(rotated);
  EXPECT_FALSE(env_.Cached(key.secret()));
  EXPECT_EQ(ReadOrder(key.secret()).reason(), v1::KEY_INVALID);
}

// Group commit makes a write visible in the store before it is durable. A
// decision that finds such a record waits for it to be applied; if the sync
// fails it never decides on it.
TEST_F(BoundedCacheTest, UnsyncedRecordIsNeverDecidedOn) {
  const auto key = env_.CreateKey({"pharmacy"}, {"stock_write"});
  env_.PushOut(key.secret());
  env_.store.SetFailing(storage::FaultInjectingStore::Op::kSync, true);
  v1::GrantScopesRequest grant;
  grant.set_key_id(key.key().key_id());
  grant.add_scopes("orders_read");
  EXPECT_EQ(
      env_.registry.GrantScopes(grant, CoreTestEnv::kActor).status().code(),
      absl::StatusCode::kUnavailable);

  const v1::AuthorizeRequest request = CoreTestEnv::HttpRequest(
      key.secret(), "pharmacy", "GET", "/v1/pharmacy/orders/o_1");
  v1::AuthorizeResponse response;
  // No deadline: the failed sync itself ends the wait (the test would hang
  // if the decision waited for a revision that can no longer be applied).
  const absl::Status status = env_.engine.Authorize(request, &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_FALSE(response.allowed());
  EXPECT_FALSE(env_.Cached(key.secret()));
}

TEST_F(BoundedCacheTest, DecisionWaitsForAnUnsyncedRecordToBeApplied) {
  const auto key = env_.CreateKey({"pharmacy"}, {"stock_write"});
  env_.PushOut(key.secret());
  absl::Notification decision_read;
  HeldSync held(&env_.store);
  held.Arm();
  std::thread writer([&] { env_.Grant(key.key().key_id(), {"orders_read"}); });
  held.AwaitHeld();  // written, not yet durable
  env_.store.SetSecretReadHook([&] {
    if (!decision_read.HasBeenNotified()) decision_read.Notify();
  });
  v1::AuthorizeResponse response;
  std::thread decision([&] { response = ReadOrder(key.secret()); });
  decision_read.WaitForNotification();
  held.Release();
  decision.join();
  writer.join();
  EXPECT_TRUE(response.allowed());
  EXPECT_TRUE(env_.Cached(key.secret()));
}

}  // namespace
}  // namespace scopekeeper

namespace scopekeeper {
namespace {

// While decisions are held (a restore under review, a stale replica) the
// data plane answers UNAVAILABLE, never a decision; admin writes go on.
TEST(DecisionEngineHoldTest, HeldDecisionsAreUnavailableUntilReleased) {
  CoreTestEnv env;
  env.PutPolicyJson(kTestPolicyJson);
  const auto key = env.CreateKey({"pharmacy"}, {"orders_read"});
  env.state.holds().Hold("hold_decisions", "restored; review the audit");

  const v1::AuthorizeRequest request = CoreTestEnv::HttpRequest(
      key.secret(), "pharmacy", "GET", "/v1/pharmacy/orders/o_1");
  v1::AuthorizeResponse response;
  const absl::Status held = env.engine.Authorize(request, &response);
  EXPECT_TRUE(absl::IsUnavailable(held)) << held;
  EXPECT_THAT(held.message(),
              HasSubstr("decisions are held (hold_decisions): restored"));
  EXPECT_FALSE(response.allowed());
  v1::BatchAuthorizeRequest batch;
  *batch.add_requests() = request;
  v1::BatchAuthorizeResponse batch_response;
  EXPECT_TRUE(
      absl::IsUnavailable(env.engine.BatchAuthorize(batch, &batch_response)));
  EXPECT_EQ(batch_response.responses_size(), 0);
  v1::DescribeKeyRequest describe;
  describe.set_api_key(key.secret());
  v1::DescribeKeyResponse described;
  EXPECT_TRUE(
      absl::IsUnavailable(env.engine.DescribeKey(describe, &described)));

  // The operator re-applies a revocation made after the backup, then
  // releases: the first decision already sees it.
  v1::RevokeKeyRequest revoke;
  revoke.set_key_id(key.key().key_id());
  ASSERT_TRUE(env.registry.RevokeKey(revoke, CoreTestEnv::kActor).ok());
  env.state.holds().Release("hold_decisions");
  ASSERT_TRUE(env.engine.Authorize(request, &response).ok());
  EXPECT_EQ(response.reason(), v1::KEY_REVOKED);
}

// A cluster replica's engine: decisions only while Freshness confirms.
TEST(DecisionEngineFreshnessTest, StaleReplicaFailsClosedOnEveryDecisionRpc) {
  CoreTestEnv env;
  env.PutPolicyJson(kTestPolicyJson);
  const auto key = env.CreateKey({"pharmacy"}, {"orders_read"});
  Freshness freshness(&env.clock, absl::Seconds(5));
  DecisionEngine engine(&env.state, &env.store, &env.clock, &env.usage,
                        NoDecisionObserver(), &freshness);
  const v1::AuthorizeRequest request = CoreTestEnv::HttpRequest(
      key.secret(), "pharmacy", "GET", "/v1/pharmacy/orders/o_1");
  v1::BatchAuthorizeRequest batch;
  *batch.add_requests() = request;
  v1::DescribeKeyRequest describe;
  describe.set_api_key(key.secret());
  auto statuses = [&] {
    v1::AuthorizeResponse a;
    v1::BatchAuthorizeResponse b;
    v1::DescribeKeyResponse d;
    return std::vector<absl::StatusCode>{
        engine.Authorize(request, &a).code(),
        engine.BatchAuthorize(batch, &b).code(),
        engine.DescribeKey(describe, &d).code()};
  };
  const std::vector<absl::StatusCode> unavailable(
      3, absl::StatusCode::kUnavailable);
  const std::vector<absl::StatusCode> ok(3, absl::StatusCode::kOk);
  EXPECT_EQ(statuses(), unavailable);  // never confirmed
  freshness.Confirm(env.clock.Now());
  EXPECT_EQ(statuses(), ok);
  env.clock.Advance(absl::Seconds(5) + absl::Milliseconds(1));
  EXPECT_EQ(statuses(), unavailable);
  freshness.Confirm(env.clock.Now());
  EXPECT_EQ(statuses(), ok);
}

// A call parked for its min_revision is decided when the revision arrives,
// by the same Try*() call: if the replica went stale meanwhile, that call
// fails closed too.
TEST(DecisionEngineFreshnessTest, ParkedCallStillFailsClosedWhenStaleOnWake) {
  CoreTestEnv env;
  env.PutPolicyJson(kTestPolicyJson);
  const auto key = env.CreateKey({"pharmacy"}, {"orders_read"});
  Freshness freshness(&env.clock, absl::Seconds(5));
  freshness.Confirm(env.clock.Now());
  DecisionEngine engine(&env.state, &env.store, &env.clock, &env.usage,
                        NoDecisionObserver(), &freshness);
  const uint64_t next = env.state.revision() + 1;
  env.state.RaiseHorizon(next);
  v1::AuthorizeRequest request = CoreTestEnv::HttpRequest(
      key.secret(), "pharmacy", "GET", "/v1/pharmacy/orders/o_1");
  request.set_min_revision(next);
  v1::AuthorizeResponse response;
  const DecisionEngine::Outcome waiting =
      engine.TryAuthorize(request, &response);
  ASSERT_FALSE(waiting.ready());
  absl::Status decided = absl::UnknownError("not run");
  env.state.WhenApplied(next, [&](absl::Status applied) {
    decided =
        applied.ok() ? engine.TryAuthorize(request, &response).status : applied;
  });
  env.clock.Advance(absl::Seconds(6));  // no confirmation while parked
  v1::GrantScopesRequest grant;
  grant.set_key_id(key.key().key_id());
  grant.add_scopes("orders_write");
  ASSERT_TRUE(env.registry.GrantScopes(grant, CoreTestEnv::kActor).ok());
  EXPECT_TRUE(absl::IsUnavailable(decided)) << decided;
  EXPECT_FALSE(response.allowed());
}

}  // namespace
}  // namespace scopekeeper
