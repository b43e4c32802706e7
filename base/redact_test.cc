#include "base/redact.h"

#include <string>

#include "absl/strings/escaping.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

TEST(RedactTest, QuoteTruncatesAndEscapes) {
  EXPECT_EQ(Quote("a\nb"), "\"a\\nb\"");
  std::string long_value;
  while (long_value.size() < 100) long_value += "ab-";
  EXPECT_EQ(Quote(long_value), "\"" + long_value.substr(0, 64) + "\"...");
  EXPECT_EQ(Quote(std::string(64, 'x')), "\"<redacted>\"");
}

TEST(RedactTest, RedactIsQuoteWithoutTheQuotes) {
  EXPECT_EQ(Redact("a\nb"), "a\\nb");
  EXPECT_EQ(Redact("org rxs_ph_0123456789ABCDEFGHIJKLMNOPQRSTUV"),
            "org rxs_ph_<redacted>");
  std::string long_value;
  while (long_value.size() < 100) long_value += "ab-";
  EXPECT_EQ(Redact(long_value), long_value.substr(0, 64) + "...");
  EXPECT_EQ(Redact(long_value, 200), long_value);
}

TEST(RedactTest, QuoteNeverEchoesSecretShapedRuns) {
  const std::string secret = "rxs_ph_0123456789ABCDEFGHIJKLMNOPQRSTUV";
  EXPECT_EQ(Quote("org " + secret), "\"org rxs_ph_<redacted>\"");
  // Ids and names are shorter than a secret's random part: shown as is.
  EXPECT_EQ(Quote("key_ee7592132a5f976b714ba884"),
            "\"key_ee7592132a5f976b714ba884\"");
  EXPECT_EQ(Quote("wallet_pass_push_notification:write"),
            "\"wallet_pass_push_notification:write\"");
}

TEST(RedactTest, QuoteRedactsASecretStraddlingTheCut) {
  // 50 bytes of padding, then a key: the cut at 64 would have shown the
  // first 14 characters of its random part.
  const std::string value =
      std::string(50, '-') + "0123456789ABCDEFGHIJKLMNOPQRSTUV";
  EXPECT_EQ(Quote(value), "\"" + std::string(50, '-') + "<redacted>\"");
}

TEST(RedactTest, QuoteNeverJoinsAnEscapeIntoASecretShapedRun) {
  // Found by //fuzz:key_secret_fuzzer: "\x82" escapes to the letters "x82",
  // which with 26 letters after it made a 29-character run in the output.
  const std::string value = "\x82" + std::string(26, 'Y');
  EXPECT_EQ(Quote(value), "\"\\<redacted>\"");
  // And a cut never splits an escape.
  const std::string escapes = std::string(21, '\x01') + "tail";
  EXPECT_EQ(Quote(escapes),
            "\"" + absl::CHexEscape(std::string(16, '\x01')) + "\"...");
}

TEST(RedactTest, HttpMethodShapedSecretIsRedacted) {
  // A key pasted into http.method used to come back with 25 of its random
  // characters: a short cut must not reveal part of a run either.
  EXPECT_EQ(Quote("rxs_ph_SWRB317qT2xYzA9bC8dE7fG6hJ5kL4"),
            "\"rxs_ph_<redacted>\"");
}

TEST(RedactTest, TraceIdShapes) {
  EXPECT_TRUE(IsTraceIdShaped("4bf92f3577b34da6a3ce929d0e0e4736"));
  EXPECT_TRUE(IsTraceIdShaped("0AF7651916CD43DD8448EB211C80319C"));
  EXPECT_TRUE(IsTraceIdShaped("123e4567-e89b-42d3-a456-556642440000"));
  EXPECT_FALSE(IsTraceIdShaped(""));
  EXPECT_FALSE(IsTraceIdShaped("req-42"));
  EXPECT_FALSE(IsTraceIdShaped("rxs_ph_0123456789ABCDEFGHIJKLMNOPQRSTUV"));
  EXPECT_FALSE(IsTraceIdShaped("123e4567-e89b-42d3-a456_556642440000"));
  EXPECT_FALSE(IsTraceIdShaped("g23e4567e89b42d3a456556642440000"));
  EXPECT_EQ(LoggableTraceId("4bf92f3577b34da6a3ce929d0e0e4736"),
            "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(LoggableTraceId("rxs_ph_0123456789ABCDEFGHIJKLMNOPQRSTUV"),
            "(not-a-trace-id)");
}

}  // namespace
}  // namespace scopekeeper
