// The core when its store fails: writes fail UNAVAILABLE and leave the
// serving state untouched; decisions that need the store fail closed.
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/testing/core_test_env.h"

namespace scopekeeper {
namespace {

using Op = storage::FaultInjectingStore::Op;

class StoreFaultsTest : public ::testing::Test {
 protected:
  void SetUp() override { env_.PutPolicyJson(kTestPolicyJson); }
  CoreTestEnv env_;
};

TEST_F(StoreFaultsTest, FailedWritesAreUnavailableAndNeverReachTheCache) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  const std::string path = "/v1/pharmacy/orders/o_1/status";
  const uint64_t revision = env_.state.revision();
  env_.store.SetFailing(Op::kWrite, true);

  v1::GrantScopesRequest grant;
  grant.set_key_id(key.key().key_id());
  grant.add_scopes("orders_write");
  EXPECT_EQ(
      env_.registry.GrantScopes(grant, CoreTestEnv::kActor).status().code(),
      absl::StatusCode::kUnavailable);
  // The grant the store did not take is not served.
  EXPECT_EQ(env_.Http(key.secret(), "pharmacy", "PATCH", path).reason(),
            v1::INSUFFICIENT_SCOPE);

  v1::RevokeKeyRequest revoke;
  revoke.set_key_id(key.key().key_id());
  EXPECT_EQ(
      env_.registry.RevokeKey(revoke, CoreTestEnv::kActor).status().code(),
      absl::StatusCode::kUnavailable);
  v1::CreateKeyRequest create;
  create.set_organization_id("org_a");
  EXPECT_EQ(
      env_.registry.CreateKey(create, CoreTestEnv::kActor).status().code(),
      absl::StatusCode::kUnavailable);
  EXPECT_EQ(env_.state.revision(), revision);
  EXPECT_EQ(env_.state.cache().size(), 1u);

  // The store recovers: writes are taken again once the committer next
  // tries to recover it (at most once a second), and the revision was not
  // used up.
  env_.store.SetFailing(Op::kWrite, false);
  EXPECT_EQ(
      env_.registry.GrantScopes(grant, CoreTestEnv::kActor).status().code(),
      absl::StatusCode::kUnavailable);
  env_.clock.Advance(absl::Seconds(1));
  const auto granted = env_.registry.GrantScopes(grant, CoreTestEnv::kActor);
  ASSERT_TRUE(granted.ok()) << granted.status();
  EXPECT_EQ(granted->revision(), revision + 1);
  EXPECT_TRUE(env_.Http(key.secret(), "pharmacy", "PATCH", path).allowed());
}

TEST_F(StoreFaultsTest, UncachedKeysFailClosedWhenTheStoreIsDown) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  env_.store.SetFailing(Op::kRead, true);
  // A cached key is decided from memory: the store is not needed.
  EXPECT_TRUE(env_.Http(key.secret(), "pharmacy", "GET", "/v1/pharmacy/orders/")
                  .allowed());
  // An unknown key needs the store: UNAVAILABLE, never an answer.
  v1::AuthorizeRequest request;
  request.set_api_key("rx_ph_not_a_cached_key");
  request.mutable_requirement()->add_all_of("orders_read");
  v1::AuthorizeResponse response;
  const absl::Status status = env_.engine.Authorize(request, &response);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(response.allowed());
  // Storage details do not leak to the data plane.
  EXPECT_THAT(std::string(status.message()),
              ::testing::Not(::testing::HasSubstr("injected")));
}

}  // namespace
}  // namespace scopekeeper
