#include "server/grpc/library_logs.h"

#include <grpc/support/log.h>

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
using ::testing::StartsWith;

class LibraryLogsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    gpr_log_verbosity_init();  // what grpc_init() does: errors by default
    RouteLibraryLogs();
  }
  ~LibraryLogsTest() override {
    SetLogFormat(LogFormat::kLogfmt);
    SetLogLevel(LogLevel::kInfo);
  }
  LogCapture log_;
};

TEST_F(LibraryLogsTest, GrpcLinesAreOursInLogfmt) {
  gpr_log("src/core/tsi/ssl_transport_security.cc", 1420,
          GPR_LOG_SEVERITY_ERROR, "Handshake failed with fatal error %s.",
          "SSL_ERROR_SSL");
  EXPECT_THAT(log_.Lines(),
              ElementsAre(AllOf(
                  StartsWith("ts="),
                  HasSubstr(" level=error msg=\"Handshake failed with fatal "
                            "error SSL_ERROR_SSL.\" logger=grpc "
                            "source=ssl_transport_security.cc:1420\n"))));
}

TEST_F(LibraryLogsTest, ProtobufLinesAreOursInJson) {
  SetLogFormat(LogFormat::kJson);
  GOOGLE_LOG(WARNING) << "field \"x\" is deprecated";
  GOOGLE_LOG(ERROR) << "cannot parse";
  const auto lines = log_.Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[0], StartsWith("{\"ts\":\""));
  EXPECT_THAT(lines[0],
              HasSubstr("\"level\":\"warning\",\"msg\":\"field \\\"x\\\" is "
                        "deprecated\",\"logger\":\"protobuf\",\"source\":"
                        "\"library_logs_test.cc:"));
  EXPECT_THAT(lines[1], HasSubstr("\"level\":\"error\",\"msg\":\"cannot "
                                  "parse\",\"logger\":\"protobuf\""));
}

TEST_F(LibraryLogsTest, TheLevelAppliesToLibraryLinesToo) {
  SetLogLevel(LogLevel::kError);
  GOOGLE_LOG(WARNING) << "dropped";
  gpr_log_message("x.cc", 1, GPR_LOG_SEVERITY_INFO, "dropped too");
  EXPECT_THAT(log_.Lines(), IsEmpty());
  gpr_log_message("x.cc", 2, GPR_LOG_SEVERITY_ERROR, "kept");
  EXPECT_THAT(log_.Lines(), ElementsAre(HasSubstr("msg=\"kept\"")));
}

}  // namespace
}  // namespace scopekeeper
