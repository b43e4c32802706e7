#include "server/registry/registry.h"

#include <regex>
#include <set>

#include "base/time_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/policy/key_secret.h"
#include "server/policy/names.h"
#include "server/policy/policy.h"
#include "server/testing/core_test_env.h"

namespace scopekeeper {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

class RegistryTest : public ::testing::Test {
 protected:
  void SetUp() override { env_.PutPolicyJson(kTestPolicyJson); }

  v1::CreateKeyRequest ValidCreate() {
    v1::CreateKeyRequest r;
    r.set_organization_id("org_a");
    r.set_name("orders sync");
    r.add_apis("pharmacy");
    r.add_scopes("orders_read");
    return r;
  }

  CoreTestEnv env_;
};

TEST_F(RegistryTest, CreateKeyReturnsSecretOnceAndStoresOnlyItsHash) {
  auto created = env_.registry.CreateKey(ValidCreate(), CoreTestEnv::kActor);
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string& secret = created->secret();
  EXPECT_TRUE(std::regex_match(secret, std::regex("rx_ph_[0-9A-Za-z]{32}")))
      << secret;
  EXPECT_EQ(created->key().display_prefix(), secret.substr(0, 9));
  EXPECT_TRUE(std::regex_match(created->key().key_id(),
                               std::regex("key_[0-9a-f]{24}")));
  EXPECT_EQ(created->key().status(), v1::ACTIVE);
  EXPECT_THAT(created->key().effective_scopes(), ElementsAre("orders_read"));
  EXPECT_EQ(created->key().revision(), created->revision());

  auto record = env_.store.GetKeyById(created->key().key_id());
  ASSERT_TRUE(record.ok() && record->has_value());
  const std::string serialized = (*record)->SerializeAsString();
  EXPECT_THAT(serialized, Not(HasSubstr(secret)));
  EXPECT_THAT(serialized, Not(HasSubstr(secret.substr(9))));
  ASSERT_EQ((*record)->secrets_size(), 1);
  EXPECT_EQ((*record)->secrets(0).sha256(), HashSecret(secret).view());
  // The audit event of the write is there, without the secret.
  auto events = env_.store.ListAuditEvents({}, 100);
  ASSERT_TRUE(events.ok());
  ASSERT_FALSE(events->empty());
  const v1::AuditEvent& event = events->back();
  EXPECT_EQ(event.action(), "CreateKey");
  EXPECT_EQ(event.actor(), CoreTestEnv::kActor);
  EXPECT_EQ(event.key_id(), created->key().key_id());
  EXPECT_EQ(event.revision(), created->revision());
  EXPECT_THAT(event.detail(), Not(HasSubstr(secret)));
}

TEST_F(RegistryTest, KeyWithoutApiUsesDefaultPrefixAndSecretsAreUnique) {
  v1::CreateKeyRequest r = ValidCreate();
  r.clear_apis();
  std::set<std::string> secrets;
  for (int i = 0; i < 20; ++i) {
    auto created = env_.registry.CreateKey(r, CoreTestEnv::kActor);
    ASSERT_TRUE(created.ok());
    EXPECT_EQ(created->secret().substr(0, 3), "sk_");
    secrets.insert(created->secret());
  }
  EXPECT_EQ(secrets.size(), 20u);
}

TEST_F(RegistryTest, CreateKeyWithARequestIdCreatesOneKeyPerId) {
  v1::CreateKeyRequest request = ValidCreate();
  request.set_request_id("0f8e2c7a-5b1d-4c3e-9a6f-2d4b8c1e7f3a");
  auto first = env_.registry.CreateKey(request, CoreTestEnv::kActor);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_FALSE(first->replayed());
  EXPECT_FALSE(first->secret().empty());
  EXPECT_TRUE(
      std::regex_match(first->key().key_id(), std::regex("key_[0-9a-f]{24}")));
  // The answer was lost; the call is sent again.
  auto again = env_.registry.CreateKey(request, CoreTestEnv::kActor);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->replayed());
  EXPECT_EQ(again->secret(), "");
  EXPECT_EQ(again->key().key_id(), first->key().key_id());
  EXPECT_EQ(again->revision(), first->revision());
  auto events = env_.store.ListAuditEvents({}, 100);
  ASSERT_TRUE(events.ok());
  int creations = 0;
  for (const v1::AuditEvent& e : *events) {
    creations += e.action() == "CreateKey" ? 1 : 0;
  }
  EXPECT_EQ(creations, 1);
  // Another organization's id space is its own; another id is a new key.
  request.set_organization_id("org_b");
  auto other_org = env_.registry.CreateKey(request, CoreTestEnv::kActor);
  ASSERT_TRUE(other_org.ok());
  EXPECT_FALSE(other_org->replayed());
  EXPECT_NE(other_org->key().key_id(), first->key().key_id());
  request.set_request_id("bad id!");
  EXPECT_THAT(
      env_.registry.CreateKey(request, CoreTestEnv::kActor).status().message(),
      HasSubstr("request_id"));
}

TEST_F(RegistryTest, CreateKeyRejectsBadInputNamingTheField) {
  struct Case {
    std::function<void(v1::CreateKeyRequest*)> mutate;
    absl::StatusCode code;
    std::string field;
  };
  const std::vector<Case> cases = {
      {[](auto* r) { r->clear_organization_id(); },
       absl::StatusCode::kInvalidArgument, "organization_id"},
      {[](auto* r) { r->set_organization_id("org a"); },
       absl::StatusCode::kInvalidArgument, "organization_id"},
      {[](auto* r) { r->add_apis("nope"); }, absl::StatusCode::kInvalidArgument,
       "apis[1]"},
      {[](auto* r) { r->add_scopes("undeclared"); },
       absl::StatusCode::kInvalidArgument, "scopes[1]"},
      {[](auto* r) { r->add_scopes("Not:Valid"); },
       absl::StatusCode::kInvalidArgument, "scopes[1]"},
      {[](auto* r) { r->add_bundles("nope"); },
       absl::StatusCode::kInvalidArgument, "bundles[0]"},
      {[](auto* r) { r->set_name(std::string("a\0b", 3)); },
       absl::StatusCode::kInvalidArgument, "name"},
      {[](auto* r) { r->set_name("\xff\xfe"); },
       absl::StatusCode::kInvalidArgument, "name"},
      {[](auto* r) { r->set_name(std::string(300, 'n')); },
       absl::StatusCode::kInvalidArgument, "name"},
      {[](auto* r) {
         for (size_t i = 0; i <= kMaxScopesPerRequest; ++i) {
           r->add_scopes("orders_read");
         }
       },
       absl::StatusCode::kInvalidArgument, "scopes"},
      {[](auto* r) {
         for (int i = 0; i <= kMaxApisPerKey; ++i) r->add_apis("pharmacy");
       },
       absl::StatusCode::kInvalidArgument, "apis"},
      {[](auto* r) { r->mutable_expire_time()->set_seconds(1); },
       absl::StatusCode::kInvalidArgument, "expire_time"},
      {[](auto* r) { r->set_installation_id("inst_x"); },
       absl::StatusCode::kNotFound, "installation_id"},
  };
  const uint64_t revision = env_.state.revision();
  for (size_t i = 0; i < cases.size(); ++i) {
    v1::CreateKeyRequest r = ValidCreate();
    cases[i].mutate(&r);
    auto created = env_.registry.CreateKey(r, CoreTestEnv::kActor);
    EXPECT_EQ(created.status().code(), cases[i].code) << i;
    EXPECT_THAT(created.status().message(), HasSubstr(cases[i].field)) << i;
  }
  EXPECT_EQ(env_.state.revision(), revision);  // nothing was written
  EXPECT_EQ(env_.store.Revision().value(), revision);
}

TEST_F(RegistryTest, GetKeyUnknownIsNotFound) {
  v1::GetKeyRequest r;
  r.set_key_id("key_000000000000000000000000");
  EXPECT_EQ(env_.registry.GetKey(r).status().code(),
            absl::StatusCode::kNotFound);
  r.set_key_id("");
  EXPECT_EQ(env_.registry.GetKey(r).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RegistryTest, GrantAndRevokeScopesAndBundles) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  v1::GrantScopesRequest grant;
  grant.set_key_id(key.key().key_id());
  grant.add_scopes("stock_write");
  grant.add_bundles("order-management");
  auto granted = env_.registry.GrantScopes(grant, CoreTestEnv::kActor);
  ASSERT_TRUE(granted.ok()) << granted.status();
  EXPECT_THAT(granted->effective_scopes(),
              ElementsAre("orders_read", "orders_write", "stock_write"));
  EXPECT_GT(granted->revision(), key.revision());

  // Revoking a directly granted scope that a bundle also brings keeps it.
  v1::RevokeScopesRequest revoke;
  revoke.set_key_id(key.key().key_id());
  revoke.add_scopes("orders_read");
  auto revoked = env_.registry.RevokeScopes(revoke, CoreTestEnv::kActor);
  ASSERT_TRUE(revoked.ok()) << revoked.status();
  EXPECT_THAT(revoked->effective_scopes(),
              ElementsAre("orders_read", "orders_write", "stock_write"));
  EXPECT_EQ(revoked->grants_size(), 1);
  revoke.clear_scopes();
  revoke.add_bundles("order-management");
  revoked = env_.registry.RevokeScopes(revoke, CoreTestEnv::kActor);
  ASSERT_TRUE(revoked.ok());
  EXPECT_THAT(revoked->effective_scopes(), ElementsAre("stock_write"));

  grant.clear_bundles();
  grant.clear_scopes();
  EXPECT_EQ(
      env_.registry.GrantScopes(grant, CoreTestEnv::kActor).status().code(),
      absl::StatusCode::kInvalidArgument);
  grant.add_scopes("undeclared");
  const auto bad = env_.registry.GrantScopes(grant, CoreTestEnv::kActor);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("scopes[0]"));
}

TEST_F(RegistryTest, RevokeKeyIsIdempotent) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  v1::RevokeKeyRequest r;
  r.set_key_id(key.key().key_id());
  r.set_reason("no longer in use");
  auto first = env_.registry.RevokeKey(r, CoreTestEnv::kActor);
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->status(), v1::REVOKED);
  EXPECT_EQ(first->revoke_reason(), "no longer in use");
  EXPECT_EQ(first->revoke_time().seconds(),
            absl::ToUnixSeconds(env_.clock.Now()));
  const uint64_t revision = env_.state.revision();
  auto second = env_.registry.RevokeKey(r, CoreTestEnv::kActor);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->SerializeAsString(), first->SerializeAsString());
  EXPECT_EQ(env_.state.revision(), revision);
  // A revoked key cannot be granted anything.
  v1::GrantScopesRequest grant;
  grant.set_key_id(key.key().key_id());
  grant.add_scopes("orders_write");
  EXPECT_EQ(
      env_.registry.GrantScopes(grant, CoreTestEnv::kActor).status().code(),
      absl::StatusCode::kFailedPrecondition);
}

TEST_F(RegistryTest, RevokedAndExpiredKeysCannotBeChangedUsefully) {
  const std::string revoked_id =
      env_.CreateKey({"pharmacy"}, {"orders_read"}).key().key_id();
  v1::RevokeKeyRequest revoke;
  revoke.set_key_id(revoked_id);
  ASSERT_TRUE(env_.registry.RevokeKey(revoke, CoreTestEnv::kActor).ok());

  v1::CreateKeyRequest expiring = ValidCreate();
  *expiring.mutable_expire_time() =
      ToProtoTime(env_.clock.Now() + absl::Hours(1));
  auto created = env_.registry.CreateKey(expiring, CoreTestEnv::kActor);
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string expired_id = created->key().key_id();
  env_.clock.Advance(absl::Hours(2));
  const uint64_t revision = env_.state.revision();

  v1::RevokeScopesRequest take;
  take.add_scopes("orders_read");
  v1::RotateKeyRequest rotate;
  v1::GrantScopesRequest grant;
  grant.add_scopes("orders_write");
  for (const std::string& id : {revoked_id, expired_id}) {
    SCOPED_TRACE(id);
    grant.set_key_id(id);
    rotate.set_key_id(id);
    const auto granted = env_.registry.GrantScopes(grant, CoreTestEnv::kActor);
    EXPECT_EQ(granted.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(granted.status().message(),
                HasSubstr(id == revoked_id ? "is revoked" : "expired at"));
    // A new secret for an expired key would be refused anyway.
    EXPECT_EQ(
        env_.registry.RotateKey(rotate, CoreTestEnv::kActor).status().code(),
        absl::StatusCode::kFailedPrecondition);
  }
  take.set_key_id(revoked_id);
  EXPECT_EQ(
      env_.registry.RevokeScopes(take, CoreTestEnv::kActor).status().code(),
      absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(env_.state.revision(), revision);  // nothing written
  // Taking scopes from an expired key is allowed (cleanup).
  take.set_key_id(expired_id);
  EXPECT_TRUE(env_.registry.RevokeScopes(take, CoreTestEnv::kActor).ok());
}

TEST_F(RegistryTest, ListKeysPagesFiltersByOrganizationAndHidesRevoked) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    ids.push_back(env_.CreateKey({"pharmacy"}, {}).key().key_id());
  }
  v1::CreateKeyRequest other = ValidCreate();
  other.set_organization_id("org_b");
  ASSERT_TRUE(env_.registry.CreateKey(other, CoreTestEnv::kActor).ok());
  v1::RevokeKeyRequest revoke;
  revoke.set_key_id(ids[2]);
  ASSERT_TRUE(env_.registry.RevokeKey(revoke, CoreTestEnv::kActor).ok());
  std::sort(ids.begin(), ids.end());

  v1::ListKeysRequest request;
  request.set_organization_id("org_a");
  request.set_page_size(2);
  std::vector<std::string> seen;
  int pages = 0;
  do {
    auto page = env_.registry.ListKeys(request);
    ASSERT_TRUE(page.ok()) << page.status();
    EXPECT_LE(page->keys_size(), 2);
    for (const auto& k : page->keys()) {
      EXPECT_EQ(k.organization_id(), "org_a");
      EXPECT_NE(k.status(), v1::REVOKED);
      seen.push_back(k.key_id());
    }
    request.set_page_token(page->next_page_token());
    ++pages;
  } while (!request.page_token().empty() && pages < 10);
  EXPECT_EQ(pages, 2);
  EXPECT_EQ(seen.size(), 4u);
  EXPECT_TRUE(std::is_sorted(seen.begin(), seen.end()));

  request.clear_page_token();
  request.set_page_size(0);
  request.set_include_revoked(true);
  auto all = env_.registry.ListKeys(request);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->keys_size(), 5);
  EXPECT_THAT(all->next_page_token(), IsEmpty());

  request.set_page_size(-1);
  EXPECT_EQ(env_.registry.ListKeys(request).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(RegistryTest, InvalidPolicyIsRejectedAndTheOldOneStaysInForce) {
  const uint64_t revision = env_.state.revision();
  v1::Policy bad = env_.registry.GetPolicy();
  bad.mutable_apis(0)->mutable_routes(0)->mutable_requirement()->add_all_of(
      "undeclared:scope");
  auto result = env_.registry.PutPolicy(bad, CoreTestEnv::kActor);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(result.status().message(), HasSubstr("pharmacy"));
  EXPECT_THAT(result.status().message(), HasSubstr("undeclared:scope"));
  EXPECT_EQ(env_.state.revision(), revision);
  EXPECT_FALSE(env_.registry.PolicyEquals(bad));
  auto stored = env_.store.GetPolicy();
  ASSERT_TRUE(stored.ok() && stored->has_value());
  EXPECT_TRUE(env_.registry.PolicyEquals(**stored));
}

TEST_F(RegistryTest, RevisionsIncreaseAndLoadRestoresTheServingState) {
  const auto a = env_.CreateKey({"pharmacy"}, {"orders_read"});
  const auto b = env_.CreateKey({"pharmacy"}, {"orders_read"});
  EXPECT_EQ(b.revision(), a.revision() + 1);
  v1::RevokeKeyRequest revoke;
  revoke.set_key_id(b.key().key_id());
  ASSERT_TRUE(env_.registry.RevokeKey(revoke, CoreTestEnv::kActor).ok());

  // A second server over the same store sees everything after Load().
  ServingState state;
  UsageTracker usage(&env_.store);
  Registry registry(&env_.store, &state, &env_.clock, &usage);
  ASSERT_TRUE(registry.Load().ok());
  EXPECT_EQ(state.revision(), env_.state.revision());
  EXPECT_TRUE(registry.PolicyEquals(env_.registry.GetPolicy()));
  EXPECT_EQ(state.cache().size(), 2u);
  DecisionEngine engine(&state, &env_.store, &env_.clock, &usage);
  v1::AuthorizeRequest request;
  request.mutable_requirement()->add_all_of("orders_read");
  v1::AuthorizeResponse response;
  request.set_api_key(a.secret());
  ASSERT_TRUE(engine.Authorize(request, &response).ok());
  EXPECT_TRUE(response.allowed());
  request.set_api_key(b.secret());
  ASSERT_TRUE(engine.Authorize(request, &response).ok());
  EXPECT_EQ(response.reason(), v1::KEY_REVOKED);
}

TEST_F(RegistryTest, RotateKeyWithoutGraceStopsTheOldSecretAtOnce) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  v1::RotateKeyRequest rotate;
  rotate.set_key_id(key.key().key_id());
  auto rotated = env_.registry.RotateKey(rotate, CoreTestEnv::kActor);
  ASSERT_TRUE(rotated.ok()) << rotated.status();
  EXPECT_EQ(env_.Http(key.secret(), "pharmacy", "GET", "/v1/pharmacy/orders/")
                .reason(),
            v1::KEY_INVALID);
  EXPECT_TRUE(
      env_.Http(rotated->secret(), "pharmacy", "GET", "/v1/pharmacy/orders/")
          .allowed());
  auto record = env_.store.GetKeyBySecretHash(HashSecret(key.secret()).view());
  ASSERT_TRUE(record.ok());
  EXPECT_FALSE(record->has_value());  // index entry removed
  rotate.mutable_grace_period()->set_seconds(-5);
  EXPECT_EQ(
      env_.registry.RotateKey(rotate, CoreTestEnv::kActor).status().code(),
      absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace scopekeeper
