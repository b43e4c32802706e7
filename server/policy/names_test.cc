#include "server/policy/names.h"

#include "absl/strings/escaping.h"
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

}  // namespace
}  // namespace scopekeeper
