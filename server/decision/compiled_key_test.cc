#include "server/decision/compiled_key.h"

#include <string>

#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

// The three ids share one buffer: each must come back whole and apart,
// inline or (longer than the inline room) on the heap.
TEST(CompiledKeyTest, IdsComeBackWholeAndApart) {
  struct Case {
    std::string key_id, organization_id, app_id;
  };
  const std::string id28 = "key_0123456789abcdef01234567";
  const Case cases[] = {
      {id28, "org_abc123", ""},
      {id28, "org_abc123", "app_0123456789abcdef01234567"},
      {id28, std::string(128, 'o'), std::string(128, 'a')},
      {std::string(128, 'k'), "", ""},
      {"", "", ""},
  };
  for (const Case& c : cases) {
    CompiledKey key;
    key.SetIds(c.key_id, c.organization_id, c.app_id);
    EXPECT_EQ(key.key_id(), c.key_id);
    EXPECT_EQ(key.organization_id(), c.organization_id);
    EXPECT_EQ(key.app_id(), c.app_id);
    // Set again, shorter: nothing of the first set stays behind.
    key.SetIds("k", "o");
    EXPECT_EQ(key.key_id(), "k");
    EXPECT_EQ(key.organization_id(), "o");
    EXPECT_EQ(key.app_id(), "");
  }
}

TEST(CompiledKeyTest, StaleKeyKeepsTheIdsAndDecidesNothing) {
  CompiledKey key;
  key.SetIds("key_1", "org_1", "app_1");
  key.has_installation = true;
  const std::shared_ptr<const CompiledKey> stale = StaleKey(key);
  EXPECT_EQ(stale->key_id(), "key_1");
  EXPECT_EQ(stale->organization_id(), "org_1");
  EXPECT_EQ(stale->app_id(), "app_1");
  EXPECT_TRUE(stale->revoked);
  EXPECT_EQ(stale->policy_generation, kStalePolicyGeneration);
}

}  // namespace
}  // namespace scopekeeper
