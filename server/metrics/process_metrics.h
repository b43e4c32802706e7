// Process metrics: the standard process_* series every Prometheus client
// library exports (names and meanings as client_golang's process
// collector), read from Linux's /proc at scrape time.
//
//   process_cpu_seconds_total       user + system CPU time
//   process_resident_memory_bytes   resident set size
//   process_virtual_memory_bytes    virtual memory size
//   process_open_fds                open file descriptors
//   process_max_fds                 the soft limit on open descriptors
//   process_start_time_seconds      start time, Unix seconds
#ifndef SCOPEKEEPER_SERVER_METRICS_PROCESS_METRICS_H_
#define SCOPEKEEPER_SERVER_METRICS_PROCESS_METRICS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace scopekeeper {

struct ProcessStats {
  double cpu_seconds = 0;
  int64_t resident_memory_bytes = 0;
  int64_t virtual_memory_bytes = 0;
  int64_t open_fds = 0;
  int64_t max_fds = 0;
  double start_time_seconds = 0;
};

// ParseProcessStats() computes the stats from the text of /proc/self/stat,
// /proc/stat (its btime line) and /proc/self/limits, the number of entries
// of /proc/self/fd, and the system's clock ticks per second and page size.
// INVALID_ARGUMENT when a text is not in the kernel's format.
absl::StatusOr<ProcessStats> ParseProcessStats(absl::string_view self_stat,
                                               absl::string_view proc_stat,
                                               absl::string_view limits,
                                               int64_t open_fds,
                                               int64_t ticks_per_second,
                                               int64_t page_size);

// ReadProcessStats() reads this process's stats under `proc` (normally
// "/proc"; tests give a directory of their own).
absl::StatusOr<ProcessStats> ReadProcessStats(
    const std::string& proc = "/proc");

// RenderProcessStats() appends the process_* families.
void RenderProcessStats(const ProcessStats& stats, std::string* out);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_METRICS_PROCESS_METRICS_H_
