#include "server/policy/key_secret.h"

#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

TEST(KeySecretTest, HashIsSha256) {
  EXPECT_EQ(absl::BytesToHexString(HashSecret("abc").view()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(absl::BytesToHexString(HashSecret("").view()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// The digest context is reused per thread: consecutive and concurrent calls
// must not leak state into each other.
TEST(KeySecretTest, HashIsStatelessAcrossCallsAndThreads) {
  const std::string abc =
      "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  std::vector<std::thread> threads;
  std::vector<std::string> results(4);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) HashSecret(std::string(i % 97, 'x'));
      results[t] = absl::BytesToHexString(HashSecret("abc").view());
    });
  }
  for (std::thread& t : threads) t.join();
  for (const std::string& r : results) EXPECT_EQ(r, abc);
  EXPECT_EQ(absl::BytesToHexString(HashSecret("abc").view()), abc);
  EXPECT_EQ(absl::BytesToHexString(HashSecret("abc").view()), abc);
}

TEST(KeySecretTest, SecretsHavePrefixAndEnoughRandomness) {
  std::set<std::string> seen;
  std::set<char> alphabet;
  for (int i = 0; i < 200; ++i) {
    auto s = GenerateSecret("max_prd_ak");
    ASSERT_TRUE(s.ok());
    ASSERT_TRUE(
        std::regex_match(s->secret, std::regex("max_prd_ak_[0-9A-Za-z]{32}")))
        << s->secret;
    EXPECT_EQ(s->display_prefix, s->secret.substr(0, 14));
    seen.insert(s->secret);
    for (char c : s->secret.substr(11)) alphabet.insert(c);
  }
  EXPECT_EQ(seen.size(), 200u);
  // 6400 characters drawn uniformly from 62 cover the alphabet.
  EXPECT_EQ(alphabet.size(), 62u);
}

TEST(KeySecretTest, IdsAreRandomHex) {
  auto a = GenerateId("key");
  auto b = GenerateId("key");
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_TRUE(std::regex_match(*a, std::regex("key_[0-9a-f]{24}"))) << *a;
  EXPECT_NE(*a, *b);
}

TEST(KeySecretTest, ConstantTimeEquals) {
  EXPECT_TRUE(ConstantTimeEquals("same", "same"));
  EXPECT_FALSE(ConstantTimeEquals("same", "sane"));
  EXPECT_FALSE(ConstantTimeEquals("same", "same!"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

TEST(KeySecretTest, DigestRoundTripsAndHashes) {
  const SecretDigest d = HashSecret("x");
  EXPECT_EQ(SecretDigest::FromBytes(d.view()), d);
  EXPECT_FALSE(SecretDigest::FromBytes(d.view()) == HashSecret("y"));
}

}  // namespace
}  // namespace scopekeeper
