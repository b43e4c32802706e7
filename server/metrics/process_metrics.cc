#include "server/metrics/process_metrics.h"

#include <dirent.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace scopekeeper {
namespace {

absl::StatusOr<std::string> ReadWhole(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::UnavailableError(absl::StrCat("cannot read ", path));
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::StatusOr<int64_t> CountEntries(const std::string& dir) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr)
    return absl::UnavailableError(absl::StrCat("cannot list ", dir));
  int64_t n = 0;
  while (const dirent* e = readdir(d)) {
    const absl::string_view name = e->d_name;
    if (name != "." && name != "..") ++n;
  }
  closedir(d);
  return n;  // as client_golang: includes the descriptor listing them
}

template <typename T>
void Sample(absl::string_view name, absl::string_view type,
            absl::string_view help, T value, std::string* out) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type,
                  "\n", name, " ", value, "\n");
}

}  // namespace

absl::StatusOr<ProcessStats> ParseProcessStats(absl::string_view self_stat,
                                               absl::string_view proc_stat,
                                               absl::string_view limits,
                                               int64_t open_fds,
                                               int64_t ticks_per_second,
                                               int64_t page_size) {
  // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so
  // the fields are counted from the last ')'.
  const size_t paren = self_stat.rfind(')');
  if (paren == absl::string_view::npos || ticks_per_second <= 0) {
    return absl::InvalidArgumentError("/proc/self/stat: no \"(comm)\"");
  }
  const std::vector<absl::string_view> f =
      absl::StrSplit(self_stat.substr(paren + 1), ' ', absl::SkipWhitespace());
  // f[0] is field 3 (state): field n of proc(5) is f[n - 3].
  uint64_t utime, stime, starttime, vsize;
  int64_t rss;
  if (f.size() < 22 || !absl::SimpleAtoi(f[11], &utime) ||
      !absl::SimpleAtoi(f[12], &stime) ||
      !absl::SimpleAtoi(f[19], &starttime) ||
      !absl::SimpleAtoi(f[20], &vsize) || !absl::SimpleAtoi(f[21], &rss)) {
    return absl::InvalidArgumentError("/proc/self/stat: unexpected fields");
  }
  int64_t boot_time = -1;
  for (absl::string_view line : absl::StrSplit(proc_stat, '\n')) {
    if (absl::ConsumePrefix(&line, "btime ")) {
      if (!absl::SimpleAtoi(line, &boot_time)) boot_time = -1;
    }
  }
  if (boot_time < 0) return absl::InvalidArgumentError("/proc/stat: no btime");
  int64_t max_fds = -1;
  for (absl::string_view line : absl::StrSplit(limits, '\n')) {
    if (absl::ConsumePrefix(&line, "Max open files")) {
      const std::vector<absl::string_view> v =
          absl::StrSplit(line, ' ', absl::SkipWhitespace());
      if (v.empty() || !absl::SimpleAtoi(v[0], &max_fds)) max_fds = -1;
    }
  }
  if (max_fds < 0) {
    return absl::InvalidArgumentError("/proc/self/limits: no Max open files");
  }
  ProcessStats stats;
  stats.cpu_seconds = static_cast<double>(utime + stime) /
                      static_cast<double>(ticks_per_second);
  stats.resident_memory_bytes = rss * page_size;
  stats.virtual_memory_bytes = static_cast<int64_t>(vsize);
  stats.open_fds = open_fds;
  stats.max_fds = max_fds;
  stats.start_time_seconds =
      static_cast<double>(boot_time) +
      static_cast<double>(starttime) / static_cast<double>(ticks_per_second);
  return stats;
}

absl::StatusOr<ProcessStats> ReadProcessStats(const std::string& proc) {
  absl::StatusOr<std::string> self_stat = ReadWhole(proc + "/self/stat");
  if (!self_stat.ok()) return self_stat.status();
  absl::StatusOr<std::string> proc_stat = ReadWhole(proc + "/stat");
  if (!proc_stat.ok()) return proc_stat.status();
  absl::StatusOr<std::string> limits = ReadWhole(proc + "/self/limits");
  if (!limits.ok()) return limits.status();
  absl::StatusOr<int64_t> fds = CountEntries(proc + "/self/fd");
  if (!fds.ok()) return fds.status();
  return ParseProcessStats(*self_stat, *proc_stat, *limits, *fds,
                           sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE));
}

void RenderProcessStats(const ProcessStats& stats, std::string* out) {
  Sample("process_cpu_seconds_total", "counter",
         "Total user and system CPU time spent in seconds.",
         absl::StrFormat("%.2f", stats.cpu_seconds), out);
  Sample("process_open_fds", "gauge", "Number of open file descriptors.",
         stats.open_fds, out);
  Sample("process_max_fds", "gauge", "Maximum number of open file descriptors.",
         stats.max_fds, out);
  Sample("process_virtual_memory_bytes", "gauge",
         "Virtual memory size in bytes.", stats.virtual_memory_bytes, out);
  Sample("process_resident_memory_bytes", "gauge",
         "Resident memory size in bytes.", stats.resident_memory_bytes, out);
  Sample("process_start_time_seconds", "gauge",
         "Start time of the process since unix epoch in seconds.",
         absl::StrFormat("%.2f", stats.start_time_seconds), out);
}

}  // namespace scopekeeper
