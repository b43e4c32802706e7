#include "server/metrics/rpc_metrics.h"

#include <string>
#include <utility>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAuthorize[] =
    "grpc_type=\"unary\",grpc_service=\"scopekeeper.v1.Authorizer\","
    "grpc_method=\"Authorize\"";

RpcMetrics TwoMethods() {
  return RpcMetrics({{"scopekeeper.v1.Authorizer", "Authorize", "unary"},
                     {"scopekeeper.v1.Admin", "Watch", "server_stream"}});
}

TEST(RpcMetricsTest, EverySeriesExistsFromStart) {
  const RpcMetrics metrics = TwoMethods();
  std::string out;
  metrics.Render(&out);
  EXPECT_THAT(out, HasSubstr("# TYPE grpc_server_handled_total counter\n"));
  EXPECT_THAT(out,
              HasSubstr("# TYPE grpc_server_handling_seconds histogram\n"));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("grpc_server_started_total{",
                                          kAuthorize, "} 0\n")));
  for (const char* code :
       {"OK", "Canceled", "InvalidArgument", "DeadlineExceeded", "Unavailable",
        "Unauthenticated"}) {
    EXPECT_THAT(out,
                HasSubstr(absl::StrCat("grpc_server_handled_total{", kAuthorize,
                                       ",grpc_code=\"", code, "\"} 0\n")));
  }
  EXPECT_THAT(out, HasSubstr("grpc_server_handling_seconds_count{grpc_type=\""
                             "server_stream\",grpc_service=\"scopekeeper.v1."
                             "Admin\",grpc_method=\"Watch\"} 0\n"));
}

// RpcMetrics::Call, for handlers that count their own calls: started when
// made, handled once at Done(), CANCELLED if never done; a moved-from Call
// counts nothing.
TEST(RpcMetricsTest, CallCountsOnceAndCancelledWhenNotDone) {
  RpcMetrics metrics = TwoMethods();
  const int authorize = metrics.Find("/scopekeeper.v1.Authorizer/Authorize");
  {
    RpcMetrics::Call call = metrics.Start(authorize);
    RpcMetrics::Call moved = std::move(call);
    moved.Done(0);
    moved.Done(3);  // ignored
  }
  { RpcMetrics::Call abandoned = metrics.Start(authorize); }
  { RpcMetrics::Call none; }
  std::string out;
  metrics.Render(&out);
  EXPECT_THAT(out, HasSubstr(absl::StrCat("grpc_server_started_total{",
                                          kAuthorize, "} 2\n")));
  EXPECT_THAT(out,
              HasSubstr(absl::StrCat("grpc_server_handled_total{", kAuthorize,
                                     ",grpc_code=\"OK\"} 1\n")));
  EXPECT_THAT(out,
              HasSubstr(absl::StrCat("grpc_server_handled_total{", kAuthorize,
                                     ",grpc_code=\"Canceled\"} 1\n")));
  EXPECT_THAT(out,
              HasSubstr(absl::StrCat("grpc_server_handled_total{", kAuthorize,
                                     ",grpc_code=\"InvalidArgument\"} 0\n")));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("grpc_server_handling_seconds_count{",
                                          kAuthorize, "} 2\n")));
}

TEST(RpcMetricsTest, CountsByMethodAndCodeAndTimesHandling) {
  RpcMetrics metrics = TwoMethods();
  const int authorize = metrics.Find("/scopekeeper.v1.Authorizer/Authorize");
  metrics.Started(authorize);
  metrics.Handled(authorize, 0, absl::Microseconds(40));
  metrics.Started(authorize);
  metrics.Handled(authorize, 16, absl::Milliseconds(2));
  std::string out;
  metrics.Render(&out);
  EXPECT_THAT(out, HasSubstr(absl::StrCat("grpc_server_started_total{",
                                          kAuthorize, "} 2\n")));
  EXPECT_THAT(out,
              HasSubstr(absl::StrCat("grpc_server_handled_total{", kAuthorize,
                                     ",grpc_code=\"OK\"} 1\n")));
  EXPECT_THAT(out,
              HasSubstr(absl::StrCat("grpc_server_handled_total{", kAuthorize,
                                     ",grpc_code=\"Unauthenticated\"} "
                                     "1\n")));
  EXPECT_THAT(out,
              HasSubstr(absl::StrCat("grpc_server_handling_seconds_bucket{",
                                     kAuthorize, ",le=\"5e-05\"} 1\n")));
  EXPECT_THAT(out,
              HasSubstr(absl::StrCat("grpc_server_handling_seconds_bucket{",
                                     kAuthorize, ",le=\"0.0025\"} 2\n")));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("grpc_server_handling_seconds_count{",
                                          kAuthorize, "} 2\n")));
}

// A path a caller made up never becomes a label value.
TEST(RpcMetricsTest, UnknownMethodsShareOneSeries) {
  RpcMetrics metrics = TwoMethods();
  const int unknown = metrics.Find("/evil.Service/{injected=\"x\"}");
  EXPECT_EQ(unknown, metrics.Find("/other/Path"));
  EXPECT_NE(unknown, metrics.Find("/scopekeeper.v1.Admin/Watch"));
  metrics.Started(unknown);
  metrics.Handled(unknown, 12, absl::Microseconds(5));
  std::string out;
  metrics.Render(&out);
  EXPECT_THAT(out, HasSubstr("grpc_server_handled_total{grpc_type=\"unary\","
                             "grpc_service=\"unknown\",grpc_method=\"unknown\","
                             "grpc_code=\"Unimplemented\"} 1\n"));
  EXPECT_THAT(out, Not(HasSubstr("evil")));
}

TEST(RpcMetricsTest, GoCodeNames) {
  EXPECT_EQ(RpcMetrics::GoCodeName(0), "OK");
  EXPECT_EQ(RpcMetrics::GoCodeName(1), "Canceled");
  EXPECT_EQ(RpcMetrics::GoCodeName(8), "ResourceExhausted");
  EXPECT_EQ(RpcMetrics::GoCodeName(16), "Unauthenticated");
  EXPECT_EQ(RpcMetrics::GoCodeName(99), "Unknown");
}

}  // namespace
}  // namespace scopekeeper
