#include "server/decision/key_table.h"

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

KeyTable::KeyPtr MakeKey(const std::string& id) {
  auto key = std::make_shared<CompiledKey>();
  key->SetIds(id, "org");
  return key;
}

// A digest whose first 8 bytes (the fingerprint's source) are `prefix` and
// whose remaining bytes are `rest`.
SecretDigest DigestWith(uint64_t prefix, uint8_t rest) {
  SecretDigest d;
  __builtin_memcpy(d.bytes.data(), &prefix, sizeof(prefix));
  for (size_t i = sizeof(prefix); i < d.bytes.size(); ++i) d.bytes[i] = rest;
  return d;
}

std::string IdAt(const KeyTable& table, size_t i) {
  return std::string(table.key(i)->key_id());
}

TEST(KeyTableTest, SetFindReplaceErase) {
  KeyTable table;
  const SecretDigest d = HashSecret("a");
  EXPECT_EQ(table.Find(d), KeyTable::kNotFound);
  KeyTable::KeyPtr replaced;
  EXPECT_TRUE(table.Set(d, MakeKey("k1"), absl::InfiniteFuture(), &replaced));
  EXPECT_EQ(replaced, nullptr);
  size_t i = table.Find(d);
  ASSERT_NE(i, KeyTable::kNotFound);
  EXPECT_EQ(IdAt(table, i), "k1");
  EXPECT_EQ(table.secret_expire_time(i), absl::InfiniteFuture());

  const absl::Time expiry = absl::FromUnixNanos(1'800'000'000'123'456'789);
  EXPECT_FALSE(table.Set(d, MakeKey("k2"), expiry, &replaced));
  ASSERT_NE(replaced, nullptr);
  EXPECT_EQ(replaced->key_id(), "k1");
  i = table.Find(d);
  EXPECT_EQ(IdAt(table, i), "k2");
  EXPECT_EQ(table.secret_expire_time(i), expiry);
  EXPECT_EQ(table.size(), 1u);

  EXPECT_EQ(table.EraseAt(i)->key_id(), "k2");
  EXPECT_EQ(table.Find(d), KeyTable::kNotFound);
  EXPECT_EQ(table.size(), 0u);
}

// Equal fingerprints (equal first 8 bytes, even the low bit ignored) never
// make a hit: only the full digest does.
TEST(KeyTableTest, FingerprintCollisionsAreConfirmedAgainstTheFullDigest) {
  KeyTable table;
  const SecretDigest stored = DigestWith(0x1234567890abcdef, 0xAA);
  const SecretDigest same_prefix = DigestWith(0x1234567890abcdef, 0xAB);
  const SecretDigest low_bit_differs = DigestWith(0x1234567890abcdee, 0xAA);
  ASSERT_EQ(KeyTable::Fingerprint(stored), KeyTable::Fingerprint(same_prefix));
  ASSERT_EQ(KeyTable::Fingerprint(stored),
            KeyTable::Fingerprint(low_bit_differs));
  KeyTable::KeyPtr replaced;
  table.Set(stored, MakeKey("stored"), absl::InfiniteFuture(), &replaced);
  EXPECT_EQ(table.Find(same_prefix), KeyTable::kNotFound);
  EXPECT_EQ(table.Find(low_bit_differs), KeyTable::kNotFound);

  // Both colliding digests stored: each finds its own key, and erasing one
  // leaves the other.
  table.Set(same_prefix, MakeKey("same_prefix"), absl::InfiniteFuture(),
            &replaced);
  EXPECT_EQ(replaced, nullptr);
  table.Set(low_bit_differs, MakeKey("low_bit"), absl::InfiniteFuture(),
            &replaced);
  EXPECT_EQ(table.size(), 3u);
  EXPECT_EQ(IdAt(table, table.Find(stored)), "stored");
  EXPECT_EQ(IdAt(table, table.Find(same_prefix)), "same_prefix");
  EXPECT_EQ(IdAt(table, table.Find(low_bit_differs)), "low_bit");
  table.EraseAt(table.Find(stored));
  EXPECT_EQ(table.Find(stored), KeyTable::kNotFound);
  EXPECT_EQ(IdAt(table, table.Find(same_prefix)), "same_prefix");
  EXPECT_EQ(IdAt(table, table.Find(low_bit_differs)), "low_bit");
}

TEST(KeyTableTest, ExpiryRoundTripsAndSaturatesTowardThePast) {
  KeyTable table;
  KeyTable::KeyPtr replaced;
  const SecretDigest past = HashSecret("past");
  const SecretDigest far = HashSecret("far");
  const SecretDigest ancient = HashSecret("ancient");
  table.Set(past, MakeKey("p"), absl::InfinitePast(), &replaced);
  table.Set(far, MakeKey("f"), absl::UnixEpoch() + absl::Hours(24 * 365 * 400),
            &replaced);
  table.Set(ancient, MakeKey("a"),
            absl::UnixEpoch() - absl::Hours(24 * 365 * 400), &replaced);
  EXPECT_EQ(table.secret_expire_time(table.Find(past)), absl::InfinitePast());
  // Beyond 2262: never expires in any time this process can see.
  EXPECT_GT(table.secret_expire_time(table.Find(far)),
            absl::UnixEpoch() + absl::Hours(24 * 365 * 290));
  // Before 1678: expired.
  EXPECT_LT(table.secret_expire_time(table.Find(ancient)),
            absl::UnixEpoch() - absl::Hours(24 * 365 * 290));
}

// Many digests in few home slots (equal fingerprints): long probe runs that
// wrap around the table's end, grown through several sizes, erased in a
// random order -- every remaining digest stays findable after each step.
TEST(KeyTableTest, ProbeRunsSurviveGrowthAndErasureInAnyOrder) {
  std::mt19937_64 rng(18);
  for (int round = 0; round < 20; ++round) {
    KeyTable table;
    std::map<int, SecretDigest> live;
    KeyTable::KeyPtr replaced;
    const int n = 200;
    for (int i = 0; i < n; ++i) {
      // Four fingerprints only, one of them homing at the table's end.
      const uint64_t prefixes[] = {0, ~uint64_t{0}, uint64_t{1} << 63, 42};
      SecretDigest d = DigestWith(prefixes[rng() % 4], 0);
      for (size_t b = 8; b < 32; ++b) d.bytes[b] = static_cast<uint8_t>(rng());
      if (table.Find(d) != KeyTable::kNotFound) continue;
      table.Set(d, MakeKey(std::to_string(i)), absl::InfiniteFuture(),
                &replaced);
      live[i] = d;
    }
    EXPECT_EQ(table.size(), live.size());
    EXPECT_LT(table.size() * 5, table.capacity() * 4 + 5);  // load <= 4/5
    std::vector<int> order;
    for (const auto& [i, d] : live) order.push_back(i);
    std::shuffle(order.begin(), order.end(), rng);
    for (int victim : order) {
      const size_t at = table.Find(live[victim]);
      ASSERT_NE(at, KeyTable::kNotFound);
      EXPECT_EQ(table.EraseAt(at)->key_id(), std::to_string(victim));
      live.erase(victim);
      for (const auto& [i, d] : live) {
        const size_t found = table.Find(d);
        ASSERT_NE(found, KeyTable::kNotFound) << "lost " << i;
        ASSERT_EQ(IdAt(table, found), std::to_string(i));
      }
    }
    EXPECT_EQ(table.size(), 0u);
  }
}

TEST(KeyTableTest, OccupiedVisitsEveryEntryOnce) {
  KeyTable table;
  for (size_t i : table.Occupied()) ADD_FAILURE() << "empty table: " << i;
  KeyTable::KeyPtr replaced;
  for (int i = 0; i < 1000; ++i) {
    table.Set(HashSecret(std::to_string(i)), MakeKey(std::to_string(i)),
              absl::InfiniteFuture(), &replaced);
  }
  std::map<std::string, int> seen;
  for (size_t i : table.Occupied()) {
    ++seen[IdAt(table, i)];
    EXPECT_EQ(table.digest(i), HashSecret(IdAt(table, i)));
  }
  EXPECT_EQ(seen.size(), 1000u);
  for (const auto& [id, count] : seen) EXPECT_EQ(count, 1) << id;
}

TEST(KeyTableTest, ReferenceBitsMoveWithTheirEntries) {
  KeyTable table;
  table.set_track_references();
  KeyTable::KeyPtr replaced;
  std::vector<SecretDigest> digests;
  for (int i = 0; i < 100; ++i) {
    digests.push_back(HashSecret(std::to_string(i)));
    table.Set(digests.back(), MakeKey(std::to_string(i)),
              absl::InfiniteFuture(), &replaced);
    if (i % 2 == 0) table.MarkReferenced(table.Find(digests.back()));
  }
  // Erasures shift entries; growth above rehashed them.
  for (int i = 0; i < 100; i += 3) table.EraseAt(table.Find(digests[i]));
  for (int i = 0; i < 100; ++i) {
    if (i % 3 == 0) continue;
    const size_t at = table.Find(digests[i]);
    ASSERT_NE(at, KeyTable::kNotFound);
    EXPECT_EQ(table.TakeReferenced(at), i % 2 == 0) << i;
    EXPECT_FALSE(table.TakeReferenced(at));
  }
}

}  // namespace
}  // namespace scopekeeper
