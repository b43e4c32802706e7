#include "server/decision/decision_log.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

v1::AuthorizeRequest Request() {
  v1::AuthorizeRequest r;
  r.set_api_key("rxs_mg_s3cretS3cretS3cret");
  r.mutable_http()->set_api("management");
  r.mutable_http()->set_method("GET");
  r.mutable_http()->set_path("/patients/?email=ann@example.com");
  return r;
}

v1::AuthorizeResponse Denied() {
  v1::AuthorizeResponse r;
  r.set_reason(v1::INSUFFICIENT_SCOPE);
  r.set_http_status(403);
  r.set_matched_route("GET /patients/");
  r.set_key_id("key_1");
  r.set_organization_id("org_1");
  r.set_trace_id("4bf92f3577b34da6a3ce929d0e0e4736");
  r.set_revision(12);
  return r;
}

TEST(DecisionLogTest, LogsTheDecisionButNeverTheKeyOrPath) {
  std::vector<std::string> lines;
  DecisionLog log(1.0, [&](const std::string& l) { lines.push_back(l); });
  log.MaybeLog("management", Request(), Denied(), absl::Microseconds(7));
  ASSERT_EQ(lines.size(), 1u);
  const std::string& line = lines[0];
  EXPECT_THAT(line, HasSubstr("level=info msg=\"decision\" "
                              "trace_id=4bf92f3577b34da6a3ce929d0e0e4736 "
                              "api=management method=GET "
                              "route=\"GET /patients/\" allowed=false "
                              "reason=INSUFFICIENT_SCOPE http_status=403 "
                              "key_id=key_1 organization_id=org_1 revision=12 "
                              "latency_us=7\n"));
  EXPECT_THAT(line, Not(HasSubstr("s3cret")));
  EXPECT_THAT(line, Not(HasSubstr("ann@example.com")));
}

TEST(DecisionLogTest, LogsOnlyTraceIdShapedTraceIds) {
  // A caller controls trace_id: one holding a key (or any other text) is
  // replaced in the log, never written.
  std::vector<std::string> lines;
  DecisionLog log(1.0, [&](const std::string& l) { lines.push_back(l); });
  v1::AuthorizeResponse response = Denied();
  response.set_trace_id("rxs_ph_SWRB317qT2xYzA9bC8dE7fG6hJ5kL4mN");
  log.MaybeLog("management", Request(), response, absl::Microseconds(7));
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_THAT(lines[0], HasSubstr("trace_id=(not-a-trace-id) "));
  EXPECT_THAT(lines[0], Not(HasSubstr("SWRB317q")));
}

TEST(DecisionLogTest, SampleRateZeroLogsNothingAndOneLogsAll) {
  int count = 0;
  DecisionLog none(0.0, [&](const std::string&) { ++count; });
  DecisionLog all(1.5, [&](const std::string&) { ++count; });  // clamped
  for (int i = 0; i < 100; ++i)
    none.MaybeLog("management", Request(), Denied(), {});
  EXPECT_EQ(count, 0);
  for (int i = 0; i < 100; ++i)
    all.MaybeLog("management", Request(), Denied(), {});
  EXPECT_EQ(count, 100);
}

TEST(DecisionLogTest, PartialRateLogsSome) {
  int count = 0;
  DecisionLog half(0.5, [&](const std::string&) { ++count; });
  for (int i = 0; i < 2000; ++i)
    half.MaybeLog("management", Request(), Denied(), {});
  // Binomial(2000, 0.5): outside [800, 1200] has probability < 1e-18.
  EXPECT_GT(count, 800);
  EXPECT_LT(count, 1200);
}

}  // namespace
}  // namespace scopekeeper
