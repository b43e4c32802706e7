#include "server/metrics/process_metrics.h"

#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

using ::testing::HasSubstr;

// A /proc/self/stat whose comm holds a space and a parenthesis: fields are
// counted from the last ')'.
constexpr char kSelfStat[] =
    "4242 (sk (main) x) S 1 4242 4242 0 -1 4194560 1000 0 0 0 "
    "250 150 0 0 20 0 12 0 360000 987654321 5000 18446744073709551615 "
    "1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
constexpr char kProcStat[] =
    "cpu  1 2 3 4\nintr 123\nctxt 456\nbtime 1760000000\nprocesses 99\n";
constexpr char kLimits[] =
    "Limit                     Soft Limit           Hard Limit           "
    "Units     \n"
    "Max cpu time              unlimited            unlimited            "
    "seconds   \n"
    "Max open files            1024                 524288               "
    "files     \n";

TEST(ProcessMetricsTest, ParsesTheKernelsFormats) {
  absl::StatusOr<ProcessStats> stats =
      ParseProcessStats(kSelfStat, kProcStat, kLimits, /*open_fds=*/17,
                        /*ticks_per_second=*/100, /*page_size=*/4096);
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_DOUBLE_EQ(stats->cpu_seconds, 4.0);  // (250 + 150) / 100
  EXPECT_EQ(stats->resident_memory_bytes, 5000 * 4096);
  EXPECT_EQ(stats->virtual_memory_bytes, 987654321);
  EXPECT_EQ(stats->open_fds, 17);
  EXPECT_EQ(stats->max_fds, 1024);
  EXPECT_DOUBLE_EQ(stats->start_time_seconds, 1760000000 + 3600.0);

  std::string out;
  RenderProcessStats(*stats, &out);
  EXPECT_THAT(out, HasSubstr("# TYPE process_cpu_seconds_total counter\n"
                             "process_cpu_seconds_total 4.00\n"));
  EXPECT_THAT(out, HasSubstr("process_resident_memory_bytes 20480000\n"));
  EXPECT_THAT(out, HasSubstr("process_virtual_memory_bytes 987654321\n"));
  EXPECT_THAT(out, HasSubstr("process_open_fds 17\n"));
  EXPECT_THAT(out, HasSubstr("process_max_fds 1024\n"));
  EXPECT_THAT(out, HasSubstr("process_start_time_seconds 1760003600.00\n"));
}

TEST(ProcessMetricsTest, RefusesWhatIsNotTheKernelsFormat) {
  EXPECT_FALSE(
      ParseProcessStats("no parens", kProcStat, kLimits, 1, 100, 4096).ok());
  EXPECT_FALSE(
      ParseProcessStats(kSelfStat, "cpu 1\n", kLimits, 1, 100, 4096).ok());
  EXPECT_FALSE(ParseProcessStats(kSelfStat, kProcStat, "", 1, 100, 4096).ok());
}

// This test process, from the real /proc.
TEST(ProcessMetricsTest, ReadsThisProcess) {
  absl::StatusOr<ProcessStats> stats = ReadProcessStats();
  ASSERT_TRUE(stats.ok()) << stats.status();
  EXPECT_GT(stats->resident_memory_bytes, 0);
  EXPECT_GE(stats->open_fds, 3);  // stdin, stdout, stderr
  EXPECT_GT(stats->max_fds, 0);
  EXPECT_GT(stats->start_time_seconds, 1.5e9);
  EXPECT_LE(stats->start_time_seconds, static_cast<double>(time(nullptr)) + 1);
}

}  // namespace
}  // namespace scopekeeper
