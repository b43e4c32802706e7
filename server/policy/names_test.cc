#include "server/policy/names.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

using ::testing::HasSubstr;

TEST(NamesTest, ScopeGrammar) {
  for (const char* ok : {"read:patients", "orders_read", "order:read", "a",
                         "wallet_pass_push_notification:write", "x.y-z"}) {
    EXPECT_TRUE(ValidateScopeName("f", ok).ok()) << ok;
  }
  for (const char* bad :
       {"", "Read", "1abc", "_a", "a b", "a/b", "a\xc3\xa9"}) {
    const absl::Status s = ValidateScopeName("grants[3]", bad);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("grants[3]")) << bad;
  }
  EXPECT_TRUE(ValidateScopeName("f", "a" + std::string(127, 'b')).ok());
  EXPECT_FALSE(ValidateScopeName("f", "a" + std::string(128, 'b')).ok());
}

TEST(NamesTest, ApiNamesAndKeyPrefixes) {
  EXPECT_TRUE(ValidateApiName("f", "external-pharmacy").ok());
  EXPECT_FALSE(ValidateApiName("f", "external:pharmacy").ok());
  EXPECT_TRUE(ValidateKeyPrefix("f", "max_prd_ak").ok());
  EXPECT_FALSE(ValidateKeyPrefix("f", "max-prd").ok());
}

TEST(NamesTest, HostNames) {
  EXPECT_TRUE(ValidateHostName("f", "api.rxscale.com").ok());
  EXPECT_TRUE(ValidateHostName("f", "*.rxscale.com").ok());
  EXPECT_TRUE(ValidateHostName("f", "localhost").ok());
  EXPECT_TRUE(ValidateHostName("f", "127.0.0.1").ok());
  EXPECT_THAT(ValidateHostName("apis[0].hosts[1]", "API.rxscale.com").message(),
              HasSubstr("apis[0].hosts[1]: invalid host \"API.rxscale.com\""));
  for (absl::string_view bad :
       {"", "*", "*.", "a..b", ".a", "a.", "a:8080", "-a.com", "a-.com",
        "a_b.com", "*.*.a.com", "a.*.com", "a b"}) {
    EXPECT_FALSE(ValidateHostName("f", bad).ok()) << bad;
  }
  EXPECT_TRUE(ValidateHostName("f", std::string(63, 'a')).ok());
  EXPECT_FALSE(ValidateHostName("f", std::string(64, 'a')).ok());
  std::string long_host;
  for (int i = 0; i < 64; ++i) absl::StrAppend(&long_host, "abc.");
  long_host += "com";  // 259 bytes
  EXPECT_FALSE(ValidateHostName("f", long_host).ok());
}

TEST(NamesTest, Ids) {
  EXPECT_TRUE(ValidateId("f", "org_abc123").ok());
  EXPECT_TRUE(ValidateId("f", "550e8400-e29b-41d4-a716-446655440000").ok());
  EXPECT_THAT(ValidateId("organization_id", "").message(),
              HasSubstr("organization_id: required"));
  EXPECT_FALSE(ValidateId("f", "a b").ok());
  EXPECT_FALSE(ValidateId("f", std::string("a\0b", 3)).ok());
  EXPECT_FALSE(ValidateId("f", std::string(129, 'a')).ok());
}

TEST(NamesTest, TextMustBeValidUtf8WithoutControls) {
  EXPECT_TRUE(ValidateText("f", "Pharmacy sync \xc3\xa9\xe2\x82\xac").ok());
  EXPECT_TRUE(ValidateText("f", "").ok());
  EXPECT_FALSE(ValidateText("f", std::string("a\0b", 3)).ok());
  EXPECT_FALSE(ValidateText("f", "\xc3").ok());              // truncated
  EXPECT_FALSE(ValidateText("f", "\xc0\xaf").ok());          // overlong
  EXPECT_FALSE(ValidateText("f", "\xed\xa0\x80").ok());      // surrogate
  EXPECT_FALSE(ValidateText("f", "\xf4\x90\x80\x80").ok());  // > U+10FFFF
  EXPECT_FALSE(ValidateText("f", "bell\x07").ok());
  EXPECT_FALSE(ValidateText("name", std::string(11, 'a'), 10).ok());
}

// The word-at-a-time fast path must decide every single byte as the
// byte-wise rules do, at every position of a word and of the tail.
TEST(NamesTest, TextAcceptsEachByteExactlyAsTheByteWiseRules) {
  for (int c = 0; c < 256; ++c) {
    const unsigned char u = static_cast<unsigned char>(c);
    // A lone byte is valid text iff it is ASCII, not a control but tab or
    // newline.
    const bool valid =
        u < 0x80 && (u >= 0x20 || u == '\t' || u == '\n') && u != 0x7F;
    for (size_t pos = 0; pos < 19; ++pos) {
      std::string text(19, 'a');
      text[pos] = static_cast<char>(u);
      EXPECT_EQ(ValidateText("f", text, kMaxPathLength).ok(), valid)
          << "byte " << c << " at " << pos;
    }
  }
}

}  // namespace
}  // namespace scopekeeper
