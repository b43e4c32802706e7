#include "base/proto_log.h"

#include "base/log.h"
#include "base/log_capture.h"
#include "gmock/gmock.h"
#include "google/protobuf/stubs/logging.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Lt;
using ::testing::Not;
using ::testing::SizeIs;

class ProtoLogTest : public ::testing::Test {
 protected:
  void SetUp() override { RouteProtobufLogs(); }
  LogCapture log_;
};

TEST_F(ProtoLogTest, ALineIsStructuredWithItsSource) {
  GOOGLE_LOG(ERROR) << "cannot parse\n";
  EXPECT_THAT(log_.Lines(),
              ElementsAre(AllOf(HasSubstr("level=error msg=\"cannot parse\" "
                                          "logger=protobuf "
                                          "source=proto_log_test.cc:"),
                                Not(HasSubstr("suppressed")))));
}

TEST_F(ProtoLogTest, AFloodFromOnePlaceIsOneLineASecond) {
  // What a caller sending unparsable messages would cause: 1000 lines from
  // one place in libprotobuf. Each second lets one through, so unless this
  // loop takes ten seconds there are far fewer than ten.
  for (int i = 0; i < 1000; ++i) {
    GOOGLE_LOG(ERROR) << "String field contains invalid UTF-8 data";
  }
  // A different place is not held back by the first.
  GOOGLE_LOG(WARNING) << "another complaint";
  const auto flood = log_.LinesContaining("invalid UTF-8");
  EXPECT_THAT(flood, SizeIs(Lt(10u)));
  EXPECT_THAT(log_.LinesContaining("another complaint"), SizeIs(1));
}

TEST_F(ProtoLogTest, ACaptureKeepsTheFirstLineOfItsThreadOutOfTheLog) {
  {
    ProtobufErrorCapture capture;
    GOOGLE_LOG(ERROR) << "first";
    GOOGLE_LOG(ERROR) << "second";
    EXPECT_EQ(capture.message(), "first");
  }
  EXPECT_THAT(log_.Lines(), IsEmpty());
}

TEST_F(ProtoLogTest, InfoLinesFollowTheLogLevel) {
  SetLogLevel(LogLevel::kWarning);
  GOOGLE_LOG(INFO) << "chatty";
  SetLogLevel(LogLevel::kInfo);
  EXPECT_THAT(log_.Lines(), IsEmpty());
}

}  // namespace
}  // namespace scopekeeper
