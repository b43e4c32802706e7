#include "server/key_cache.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

std::shared_ptr<const CompiledKey> MakeKey(const std::string& id,
                                           uint64_t generation = 1) {
  auto record = std::make_shared<storage::KeyRecord>();
  record->mutable_key()->set_key_id(id);
  auto key = std::make_shared<CompiledKey>();
  key->SetRecord(record);
  key->policy_generation = generation;
  return key;
}

TEST(KeyCacheTest, FindUpsertErase) {
  KeyCache cache;
  const SecretDigest d = HashSecret("s1");
  KeyCache::Entry e;
  EXPECT_FALSE(cache.Find(d, &e));
  cache.Upsert(d, {MakeKey("k1"), absl::InfiniteFuture()});
  ASSERT_TRUE(cache.Find(d, &e));
  EXPECT_EQ(e.key->key_id(), "k1");
  cache.Upsert(d, {MakeKey("k2"), absl::InfiniteFuture()});
  ASSERT_TRUE(cache.Find(d, &e));
  EXPECT_EQ(e.key->key_id(), "k2");
  EXPECT_EQ(cache.size(), 1u);
  cache.Erase(d);
  EXPECT_FALSE(cache.Find(d, &e));
  EXPECT_EQ(cache.size(), 0u);
}

TEST(KeyCacheTest, RecompileCompilesEachKeyOnceAcrossItsSecrets) {
  KeyCache cache;
  auto key = MakeKey("k", 1);
  cache.Upsert(HashSecret("old"), {key, absl::InfiniteFuture()});
  cache.Upsert(HashSecret("new"), {key, absl::InfiniteFuture()});
  int calls = 0;
  cache.Recompile([&](const std::shared_ptr<const CompiledKey>& k) {
    ++calls;
    return MakeKey(std::string(k->key_id()), 2);
  });
  EXPECT_EQ(calls, 1);
  KeyCache::Entry a, b;
  ASSERT_TRUE(cache.Find(HashSecret("old"), &a));
  ASSERT_TRUE(cache.Find(HashSecret("new"), &b));
  EXPECT_EQ(a.key.get(), b.key.get());
  EXPECT_EQ(a.key->policy_generation, 2u);
}

// Readers never see a torn or missing entry while a writer replaces it.
TEST(KeyCacheTest, ConcurrentReadersSeeOnlyCompleteEntries) {
  KeyCache cache;
  const SecretDigest d = HashSecret("hot");
  cache.Upsert(d, {MakeKey("v0"), absl::InfiniteFuture()});
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&] {
      KeyCache::Entry e;
      while (!stop.load()) {
        if (!cache.Find(d, &e) || e.key == nullptr || e.key->key_id().empty()) {
          bad.fetch_add(1);
        }
      }
    });
  }
  for (int i = 1; i <= 2000; ++i) {
    cache.Upsert(d, {MakeKey("v" + std::to_string(i)), absl::InfiniteFuture()});
  }
  stop.store(true);
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad.load(), 0);
  KeyCache::Entry e;
  ASSERT_TRUE(cache.Find(d, &e));
  EXPECT_EQ(e.key->key_id(), "v2000");
}

}  // namespace
}  // namespace scopekeeper
