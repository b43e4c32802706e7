#include "server/decision/usage_tracker.h"

#include <memory>
#include <vector>

#include "base/time_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/testing/core_test_env.h"
#include "storage/fault_injecting_store.h"
#include "storage/memory_store.h"

namespace scopekeeper {
namespace {

using Op = storage::FaultInjectingStore::Op;

std::shared_ptr<CompiledKey> Key(const std::string& id) {
  auto key = std::make_shared<CompiledKey>();
  key->SetIds(id, "org");
  return key;
}

const absl::Time kT0 = absl::FromUnixSeconds(1'800'000'000);  // :00 of a minute

TEST(UsageTrackerTest, RecordsAtMostOncePerKeyPerMinute) {
  storage::MemoryStore memory;
  storage::FaultInjectingStore store(&memory);
  UsageTracker tracker(&store);
  auto a = Key("key_a");
  auto b = Key("key_b");
  for (int i = 0; i < 100; ++i) tracker.Touch(*a, kT0 + absl::Seconds(i % 50));
  tracker.Touch(*b, kT0);
  // Nothing more is noted within the minute: one flush writes two uses.
  ASSERT_TRUE(tracker.Flush().ok());
  EXPECT_EQ(store.calls(Op::kRecordKeyUses), 1);
  ASSERT_TRUE(tracker.Flush().ok());
  EXPECT_EQ(store.calls(Op::kRecordKeyUses), 1);  // nothing new: no write
  EXPECT_EQ(*tracker.LastUse("key_a").value(), kT0);
  EXPECT_EQ(*tracker.LastUse("key_b").value(), kT0);

  // The next minute is recorded again.
  tracker.Touch(*a, kT0 + absl::Minutes(1));
  ASSERT_TRUE(tracker.Flush().ok());
  EXPECT_EQ(store.calls(Op::kRecordKeyUses), 2);
  EXPECT_EQ(*tracker.LastUse("key_a").value(), kT0 + absl::Minutes(1));
  EXPECT_FALSE(tracker.LastUse("key_never").value().has_value());
}

TEST(UsageTrackerTest, NotedUsesAreVisibleBeforeFlushAndKeptWhenItFails) {
  storage::MemoryStore memory;
  storage::FaultInjectingStore store(&memory);
  UsageTracker tracker(&store);
  auto a = Key("key_a");
  tracker.Touch(*a, kT0);
  EXPECT_EQ(*tracker.LastUse("key_a").value(), kT0);
  store.SetFailing(Op::kRecordKeyUses, true);
  EXPECT_FALSE(tracker.Flush().ok());
  store.SetFailing(Op::kRecordKeyUses, false);
  ASSERT_TRUE(tracker.Flush().ok());
  EXPECT_THAT(
      memory.GetKeyLastUse("key_a").value(),
      ::testing::Optional(::testing::Property(
          &google::protobuf::Timestamp::seconds, absl::ToUnixSeconds(kT0))));
}

TEST(UsageTrackerTest, KeysShowLastUseAndListKeysFindsUnusedOnes) {
  CoreTestEnv env;
  env.PutPolicyJson(kTestPolicyJson);
  const auto used = env.CreateKey({"pharmacy"}, {"orders_read"});
  const auto idle = env.CreateKey({"pharmacy"}, {"orders_read"});
  env.clock.Advance(absl::Hours(24 * 30));
  ASSERT_TRUE(env.Http(used.secret(), "pharmacy", "GET", "/v1/pharmacy/orders/")
                  .allowed());
  ASSERT_TRUE(env.usage.Flush().ok());

  v1::GetKeyRequest get;
  get.set_key_id(used.key().key_id());
  const auto key = env.registry.GetKey(get);
  ASSERT_TRUE(key.ok());
  EXPECT_EQ(FromProtoTime(key->last_used_time()), env.clock.Now());

  v1::ListKeysRequest list;
  list.mutable_unused_for()->set_seconds(7 * 24 * 3600);
  const auto unused = env.registry.ListKeys(list);
  ASSERT_TRUE(unused.ok()) << unused.status();
  ASSERT_EQ(unused->keys_size(), 1);
  EXPECT_EQ(unused->keys(0).key_id(), idle.key().key_id());
  EXPECT_FALSE(unused->keys(0).has_last_used_time());

  list.mutable_unused_for()->set_seconds(-1);
  EXPECT_EQ(env.registry.ListKeys(list).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace scopekeeper
