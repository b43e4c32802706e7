#include "server/decision/key_cache.h"

#include <atomic>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

std::shared_ptr<const CompiledKey> MakeKey(const std::string& id,
                                           uint64_t generation = 1) {
  auto key = std::make_shared<CompiledKey>();
  key->SetIds(id, "org");
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

TEST(KeyCacheTest, EraseIfDropsExactlyTheSelectedDigests) {
  KeyCache cache(/*capacity=*/64);
  std::vector<SecretDigest> digests;
  for (int i = 0; i < 20; ++i) {
    digests.push_back(HashSecret("s" + std::to_string(i)));
    cache.Upsert(digests.back(), {MakeKey("k"), absl::InfiniteFuture()});
  }
  const KeyCache::Epoch epoch = cache.WriteEpoch(digests[0]);
  cache.EraseIf([&](const SecretDigest& d) { return d.bytes[0] % 2 == 0; });
  int kept = 0;
  for (const SecretDigest& d : digests) {
    EXPECT_EQ(cache.Contains(d), d.bytes[0] % 2 != 0);
    kept += cache.Contains(d) ? 1 : 0;
  }
  EXPECT_EQ(cache.size(), static_cast<size_t>(kept));
  // A writer change: readers' inserts read before it are refused.
  EXPECT_NE(cache.WriteEpoch(digests[0]), epoch);
}

TEST(KeyCacheTest, ReplaceIfReplacesOnlyTheExpectedKey) {
  KeyCache cache;
  const SecretDigest d = HashSecret("s");
  auto first = MakeKey("k", 1);
  cache.Upsert(d, {first, absl::InfiniteFuture()});
  auto newer = MakeKey("k", 2);
  cache.Upsert(d, {newer, absl::InfiniteFuture()});  // a writer got there
  EXPECT_FALSE(cache.ReplaceIf(d, first.get(), {MakeKey("k", 3)}));
  KeyCache::Entry e;
  ASSERT_TRUE(cache.Find(d, &e));
  EXPECT_EQ(e.key->policy_generation, 2u);
  EXPECT_TRUE(cache.ReplaceIf(d, newer.get(), {MakeKey("k", 3)}));
  ASSERT_TRUE(cache.Find(d, &e));
  EXPECT_EQ(e.key->policy_generation, 3u);
  EXPECT_FALSE(cache.ReplaceIf(HashSecret("absent"), nullptr, {MakeKey("x")}));
  EXPECT_EQ(cache.size(), 1u);
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

KeyCache::Entry EntryFor(const std::string& id) {
  return {MakeKey(id), absl::InfiniteFuture()};
}

std::string CachedId(const KeyCache& cache, const std::string& secret) {
  KeyCache::Entry e;
  if (!cache.Find(HashSecret(secret), &e)) return "";
  return std::string(e.key->key_id());
}

TEST(KeyCacheTest, BulkLoaderInsertsEverythingByFinish) {
  KeyCache cache;
  {
    KeyCache::BulkLoader loader(&cache);
    for (int i = 0; i < 20000; ++i) {
      loader.Add(HashSecret("s" + std::to_string(i)),
                 EntryFor("k" + std::to_string(i)));
    }
    loader.Finish();
    EXPECT_EQ(cache.size(), 20000u);
    KeyCache::BulkLoader empty(&cache);  // finishes in its destructor
  }
  EXPECT_EQ(CachedId(cache, "s0"), "k0");
  EXPECT_EQ(CachedId(cache, "s19999"), "k19999");
}

TEST(KeyCacheTest, CompleteCacheNeverEvictsAndIgnoresReaderInserts) {
  KeyCache cache;
  EXPECT_FALSE(cache.bounded());
  for (int i = 0; i < 10000; ++i) {
    cache.Upsert(HashSecret("s" + std::to_string(i)), EntryFor("k"));
  }
  EXPECT_EQ(cache.size(), 10000u);
  EXPECT_EQ(cache.evictions(), 0u);
  const SecretDigest d = HashSecret("absent");
  EXPECT_FALSE(cache.InsertIfUnchanged(d, EntryFor("r"), cache.WriteEpoch(d)));
  EXPECT_EQ(CachedId(cache, "absent"), "");
}

TEST(KeyCacheTest, BoundedCacheHoldsExactlyItsCapacity) {
  for (size_t capacity : {1u, 3u, 5000u, 70000u}) {
    KeyCache cache(capacity);
    ASSERT_TRUE(cache.bounded());
    const size_t inserted = capacity * 2 + 10;
    for (size_t i = 0; i < inserted; ++i) {
      cache.Upsert(HashSecret("s" + std::to_string(i)), EntryFor("k"));
    }
    EXPECT_EQ(cache.size(), capacity) << capacity;
    EXPECT_EQ(cache.evictions(), inserted - capacity) << capacity;
    // The newest insert is never its own victim.
    EXPECT_EQ(CachedId(cache, "s" + std::to_string(inserted - 1)), "k");
  }
}

TEST(KeyCacheTest, EvictionSparesEntriesFoundSinceTheHandPassed) {
  KeyCache cache(3);  // one shard: the order is the insertion order
  cache.Upsert(HashSecret("a"), EntryFor("a"));
  cache.Upsert(HashSecret("b"), EntryFor("b"));
  cache.Upsert(HashSecret("c"), EntryFor("c"));
  EXPECT_EQ(CachedId(cache, "a"), "a");  // a is hot, b is not
  cache.Upsert(HashSecret("d"), EntryFor("d"));
  EXPECT_EQ(CachedId(cache, "b"), "");  // b was the oldest unused
  EXPECT_EQ(CachedId(cache, "c"), "c");
  EXPECT_EQ(CachedId(cache, "d"), "d");
  // "a" had its second chance (and lost its mark when the hand passed);
  // c and d were just found: a goes next.
  cache.Upsert(HashSecret("e"), EntryFor("e"));
  EXPECT_FALSE(cache.Contains(HashSecret("a")));
  EXPECT_TRUE(cache.Contains(HashSecret("e")));
  EXPECT_EQ(cache.size(), 3u);
  EXPECT_EQ(cache.evictions(), 2u);
}

TEST(KeyCacheTest, ErasedDigestsFreeTheirRoom) {
  KeyCache cache(2);
  // Many short-lived digests (rotations): the cache stays usable and never
  // evicts a live entry while there is room.
  cache.Upsert(HashSecret("live"), EntryFor("live"));
  for (int i = 0; i < 10000; ++i) {
    const SecretDigest d = HashSecret("tmp" + std::to_string(i));
    cache.Upsert(d, EntryFor("tmp"));
    cache.Erase(d);
  }
  EXPECT_EQ(cache.evictions(), 0u);
  EXPECT_EQ(cache.size(), 1u);
  EXPECT_EQ(CachedId(cache, "live"), "live");
}

TEST(KeyCacheTest, ReaderInsertLosesToAnyWriterChangeSinceItsEpoch) {
  KeyCache cache(10);
  const SecretDigest d = HashSecret("s");
  // Nothing changed since the epoch: inserted.
  EXPECT_TRUE(
      cache.InsertIfUnchanged(d, EntryFor("read1"), cache.WriteEpoch(d)));
  EXPECT_EQ(CachedId(cache, "s"), "read1");
  // Never overwrites an entry (a writer's is newer than any read).
  EXPECT_FALSE(
      cache.InsertIfUnchanged(d, EntryFor("read2"), cache.WriteEpoch(d)));
  EXPECT_EQ(CachedId(cache, "s"), "read1");

  // A writer's Upsert, Erase or Recompile between the epoch and the insert
  // makes the read stale: not inserted.
  cache.Erase(d);
  KeyCache::Epoch epoch = cache.WriteEpoch(d);
  cache.Upsert(HashSecret("other-in-same-shard"), EntryFor("w"));
  EXPECT_FALSE(cache.InsertIfUnchanged(d, EntryFor("stale"), epoch));
  EXPECT_EQ(CachedId(cache, "s"), "");

  epoch = cache.WriteEpoch(d);
  cache.Erase(d);
  EXPECT_FALSE(cache.InsertIfUnchanged(d, EntryFor("stale"), epoch));

  epoch = cache.WriteEpoch(d);
  cache.Recompile(
      [](const std::shared_ptr<const CompiledKey>& k) { return k; });
  EXPECT_FALSE(cache.InsertIfUnchanged(d, EntryFor("stale"), epoch));
  EXPECT_EQ(CachedId(cache, "s"), "");
}

// Readers filling a small bounded cache while a writer replaces entries:
// no torn entries, the capacity holds, and the writer's last value wins.
TEST(KeyCacheTest, ConcurrentFillAndWritesKeepCapacityAndWriterValues) {
  KeyCache cache(8);
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t) {
    readers.emplace_back([&, t] {
      KeyCache::Entry e;
      for (int i = 0; !stop.load(); ++i) {
        const SecretDigest d =
            HashSecret("r" + std::to_string((i * 7 + t) % 64));
        if (!cache.Find(d, &e)) {
          cache.InsertIfUnchanged(d, EntryFor("reader"), cache.WriteEpoch(d));
        } else {
          ASSERT_NE(e.key, nullptr);
        }
      }
    });
  }
  const SecretDigest hot = HashSecret("hot");
  for (int i = 0; i < 3000; ++i) {
    cache.Upsert(hot, EntryFor("w" + std::to_string(i)));
    EXPECT_LE(cache.size(), 8u);
  }
  stop.store(true);
  for (auto& t : readers) t.join();
  EXPECT_LE(cache.size(), 8u);
  KeyCache::Entry e;
  if (cache.Find(hot, &e)) EXPECT_EQ(e.key->key_id(), "w2999");
}

}  // namespace
}  // namespace scopekeeper
