#include "base/log.h"

#include <string>

#include "base/log_capture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;
using ::testing::StartsWith;

// Restores the process-wide settings a test changes.
class LogTest : public ::testing::Test {
 protected:
  ~LogTest() override {
    SetLogLevel(LogLevel::kInfo);
    SetLogFormat(LogFormat::kLogfmt);
  }
};

TEST_F(LogTest, LogfmtQuotesOnlyWhatNeedsIt) {
  const std::string line = LogLine(LogLevel::kWarning, "say \"hi\"\n",
                                   {{"plain", "abc"},
                                    {"spaced", "a b"},
                                    {"empty", ""},
                                    {"eq", "a=b"},
                                    {"ctl", "a\tb\rc"}});
  EXPECT_THAT(line, MatchesRegex("ts=[0-9-]+T[0-9:.]+Z level=warning .*\n"));
  EXPECT_THAT(line, HasSubstr(" msg=\"say \\\"hi\\\"\\n\" plain=abc "
                              "spaced=\"a b\" empty=\"\" eq=\"a=b\" "
                              "ctl=\"a\tb\\rc\"\n"));
}

TEST_F(LogTest, JsonLinesAreOneValidObjectEach) {
  SetLogFormat(LogFormat::kJson);
  const std::string line =
      LogLine(LogLevel::kError, "quote \" backslash \\ newline \n bell \a",
              {{"utf8", "caf\xc3\xa9"}, {"bad", "x\xff\xc3y"}, {"k", "v"}});
  EXPECT_THAT(line, MatchesRegex("\\{\"ts\":\"[0-9-]+T[0-9:.]+Z\","
                                 "\"level\":\"error\",.*\\}\n"));
  EXPECT_THAT(line, HasSubstr("\"msg\":\"quote \\\" backslash \\\\ newline "
                              "\\n bell \\u0007\""));
  EXPECT_THAT(line, HasSubstr("\"utf8\":\"caf\xc3\xa9\""));
  // Invalid UTF-8 (a lone 0xff, a truncated sequence) becomes U+FFFD.
  EXPECT_THAT(line, HasSubstr("\"bad\":\"x\\ufffd\\ufffdy\""));
  EXPECT_THAT(line, HasSubstr(",\"k\":\"v\"}\n"));
}

TEST_F(LogTest, LinesBelowTheLevelAreDropped) {
  LogCapture capture;
  SetLogLevel(LogLevel::kWarning);
  LogInfo("info line");
  LogWarning("warning line");
  Log(LogLevel::kError, "error line", {{"k", "v"}});
  WriteLogLine(LogLevel::kInfo, "raw info\n");
  const auto lines = capture.Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], HasSubstr("level=warning msg=\"warning line\"\n"));
  EXPECT_THAT(lines[1], HasSubstr("level=error msg=\"error line\" k=v\n"));
  EXPECT_FALSE(LogEnabled(LogLevel::kInfo));
  EXPECT_TRUE(LogEnabled(LogLevel::kError));
}

TEST_F(LogTest, FlagSyntax) {
  LogLevel level;
  LogFormat format;
  std::string error;
  EXPECT_TRUE(AbslParseFlag("WARNING", &level, &error));
  EXPECT_EQ(level, LogLevel::kWarning);
  EXPECT_EQ(AbslUnparseFlag(LogLevel::kError), "error");
  EXPECT_FALSE(AbslParseFlag("debug", &level, &error));
  EXPECT_EQ(error, "must be info, warning or error");
  EXPECT_TRUE(AbslParseFlag("json", &format, &error));
  EXPECT_EQ(format, LogFormat::kJson);
  EXPECT_EQ(AbslUnparseFlag(LogFormat::kLogfmt), "logfmt");
  EXPECT_FALSE(AbslParseFlag("text", &format, &error));
}

TEST_F(LogTest, CaptureRestoresThePreviousSink) {
  LogCapture outer;
  {
    LogCapture inner;
    LogInfo("to inner");
    EXPECT_THAT(inner.Lines(), ElementsAre(HasSubstr("to inner")));
  }
  LogInfo("to outer");
  EXPECT_THAT(outer.Lines(), ElementsAre(StartsWith("ts=")));
  EXPECT_THAT(outer.Lines(), ElementsAre(HasSubstr("to outer")));
}

}  // namespace
}  // namespace scopekeeper
