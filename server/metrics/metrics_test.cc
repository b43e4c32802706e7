#include "server/metrics/metrics.h"

#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/version.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(MetricsTest, CountsDecisionsByApiAndReason) {
  Metrics metrics;
  metrics.RecordDecision("external-pharmacy", v1::ALLOWED,
                         absl::Microseconds(3));
  metrics.RecordDecision("external-pharmacy", v1::ALLOWED,
                         absl::Microseconds(3));
  metrics.RecordDecision("management", v1::INSUFFICIENT_SCOPE,
                         absl::Microseconds(30));
  v1::AuthorizeRequest requirement;
  requirement.mutable_requirement()->add_all_of("orders_read");
  v1::AuthorizeResponse invalid;
  invalid.set_reason(v1::KEY_INVALID);
  metrics.OnDecision("", requirement, invalid, absl::Microseconds(1));
  const std::string out = metrics.Render({});
  EXPECT_THAT(out, HasSubstr("scopekeeper_decisions_total{api=\"external-"
                             "pharmacy\",reason=\"ALLOWED\"} 2\n"));
  EXPECT_THAT(out, HasSubstr("scopekeeper_decisions_total{api=\"management\","
                             "reason=\"INSUFFICIENT_SCOPE\"} 1\n"));
  // Explicit requirements have no API: a label value of their own.
  EXPECT_THAT(out,
              HasSubstr("scopekeeper_decisions_total{api=\"(requirement)\","
                        "reason=\"KEY_INVALID\"} 1\n"));
  EXPECT_THAT(out, Not(HasSubstr("api=\"\"")));
  EXPECT_THAT(out, HasSubstr("# TYPE scopekeeper_decisions_total counter\n"));
  EXPECT_THAT(out, Not(HasSubstr("REASON_UNSPECIFIED")));
}

TEST(MetricsTest, HistogramBucketsAreCumulative) {
  Metrics metrics;
  metrics.RecordDecision("a", v1::ALLOWED, absl::Microseconds(3));    // <=5e-6
  metrics.RecordDecision("a", v1::ALLOWED, absl::Microseconds(700));  // <=1e-3
  metrics.RecordDecision("a", v1::ALLOWED, absl::Seconds(3));         // +Inf
  const std::string out = metrics.Render({});
  const std::string name = "scopekeeper_decision_latency_seconds";
  EXPECT_THAT(out, HasSubstr(name + "_bucket{le=\"2.5e-06\"} 0\n"));
  EXPECT_THAT(out, HasSubstr(name + "_bucket{le=\"5e-06\"} 1\n"));
  EXPECT_THAT(out, HasSubstr(name + "_bucket{le=\"0.001\"} 2\n"));
  EXPECT_THAT(out, HasSubstr(name + "_bucket{le=\"1\"} 2\n"));
  EXPECT_THAT(out, HasSubstr(name + "_bucket{le=\"+Inf\"} 3\n"));
  EXPECT_THAT(out, HasSubstr(name + "_count 3\n"));
  EXPECT_THAT(out, HasSubstr(name + "_sum 3.000703000\n"));
}

TEST(MetricsTest, GaugesCacheAndStoreCounters) {
  Metrics metrics;
  metrics.RecordCacheLookup(true);
  metrics.RecordCacheLookup(true);
  metrics.RecordCacheLookup(false);
  metrics.RecordStoreCommit(absl::Milliseconds(2), true, 5);
  metrics.RecordStoreCommit(absl::Milliseconds(2), false, 3);
  Metrics::Gauges gauges;
  gauges.revision = 42;
  gauges.cache_entries = 7;
  gauges.cache_evictions = 3;
  gauges.keys_active = 5;
  gauges.keys_revoked = 2;
  const std::string out = metrics.Render(gauges);
  EXPECT_THAT(out, HasSubstr("scopekeeper_key_cache_lookups_total{result="
                             "\"hit\"} 2\n"));
  EXPECT_THAT(out,
              HasSubstr("scopekeeper_store_committed_mutations_total 5\n"));
  EXPECT_THAT(out, HasSubstr("scopekeeper_key_cache_lookups_total{result="
                             "\"miss\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("scopekeeper_key_cache_entries 7\n"));
  EXPECT_THAT(out, HasSubstr("scopekeeper_key_cache_evictions_total 3\n"));
  EXPECT_THAT(out,
              HasSubstr("scopekeeper_store_commit_latency_seconds_count 2\n"));
  EXPECT_THAT(out, HasSubstr("scopekeeper_store_commit_failures_total 1\n"));
  EXPECT_THAT(out, HasSubstr("scopekeeper_revision 42\n"));
  EXPECT_THAT(out, HasSubstr("scopekeeper_keys{status=\"active\"} 5\n"));
  EXPECT_THAT(out, HasSubstr("scopekeeper_keys{status=\"revoked\"} 2\n"));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("scopekeeper_build_info{version=\"",
                                          ScopekeeperVersion(), "\",commit=\"",
                                          ScopekeeperCommit(), "\"")));
}

TEST(MetricsTest, InstancesAndThreadsDoNotMix) {
  Metrics a;
  Metrics b;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) {
        a.RecordDecision("x", v1::ALLOWED, absl::ZeroDuration());
      }
      b.RecordDecision("x", v1::WRONG_API, absl::ZeroDuration());
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_THAT(a.Render({}), HasSubstr("{api=\"x\",reason=\"ALLOWED\"} 4000\n"));
  EXPECT_THAT(a.Render({}), HasSubstr("{api=\"x\",reason=\"WRONG_API\"} 0\n"));
  EXPECT_THAT(b.Render({}), HasSubstr("{api=\"x\",reason=\"WRONG_API\"} 4\n"));
}

TEST(MetricsTest, ApiNamesBeyondTheCapCountAsOther) {
  Metrics metrics;
  for (int i = 0; i < 300; ++i) {
    metrics.RecordDecision("api" + std::to_string(i), v1::ALLOWED,
                           absl::ZeroDuration());
  }
  const std::string out = metrics.Render({});
  EXPECT_THAT(out, HasSubstr("{api=\"api255\",reason=\"ALLOWED\"} 1\n"));
  EXPECT_THAT(out, Not(HasSubstr("api=\"api256\"")));
  EXPECT_THAT(out, HasSubstr("{api=\"(other)\",reason=\"ALLOWED\"} 44\n"));
}

TEST(MetricsTest, EveryApiOfThePolicyHasSeriesBeforeItsFirstDecision) {
  Metrics metrics;
  Metrics::Gauges gauges;
  gauges.policy_apis = {"management", "external-pharmacy"};
  std::string out = metrics.Render(gauges);
  for (const char* api : {"external-pharmacy", "management", "(requirement)"}) {
    for (const char* reason :
         {"ALLOWED", "KEY_INVALID", "INSUFFICIENT_SCOPE"}) {
      EXPECT_THAT(
          out, HasSubstr(absl::StrCat("scopekeeper_decisions_total{api="
                                      "\"",
                                      api, "\",reason=\"", reason, "\"} 0\n")));
    }
  }
  // In name order, each API once, also after it decided something.
  metrics.RecordDecision("management", v1::ALLOWED, absl::ZeroDuration());
  gauges.policy_apis.push_back("public");  // a policy change adds an API
  out = metrics.Render(gauges);
  EXPECT_THAT(out, HasSubstr("{api=\"management\",reason=\"ALLOWED\"} 1\n"));
  EXPECT_THAT(out, HasSubstr("{api=\"public\",reason=\"ALLOWED\"} 0\n"));
  const size_t first = out.find("{api=\"management\",reason=\"ALLOWED\"}");
  EXPECT_EQ(out.find("{api=\"management\",reason=\"ALLOWED\"}", first + 1),
            std::string::npos);
  EXPECT_LT(out.find("api=\"(requirement)\""),
            out.find("api=\"external-pharmacy\""));
  EXPECT_LT(out.find("api=\"external-pharmacy\""), first);
  EXPECT_LT(first, out.find("api=\"public\""));
}

TEST(MetricsTest, RefusedCredentialsAreRenderedAsGiven) {
  Metrics metrics;
  Metrics::Gauges gauges;
  gauges.auth_refused = {
      {"scopekeeper.v1.Admin", "wrong_token", 3},
      {"scopekeeper.v1.Authorizer", "missing_credential", 0}};
  const std::string out = metrics.Render(gauges);
  EXPECT_THAT(out,
              HasSubstr("# TYPE scopekeeper_auth_refused_total counter\n"));
  EXPECT_THAT(out,
              HasSubstr("scopekeeper_auth_refused_total{service=\"scopekeeper"
                        ".v1.Admin\",reason=\"wrong_token\"} 3\n"));
  EXPECT_THAT(out,
              HasSubstr("scopekeeper_auth_refused_total{service=\"scopekeeper"
                        ".v1.Authorizer\",reason=\"missing_credential\"} "
                        "0\n"));
}

}  // namespace
}  // namespace scopekeeper
