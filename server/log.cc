#include "server/log.h"

#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace scopekeeper {

void Log(LogLevel level, absl::string_view message) {
  absl::string_view name = level == LogLevel::kInfo      ? "info"
                           : level == LogLevel::kWarning ? "warning"
                                                         : "error";
  const std::string line = absl::StrCat(
      "ts=",
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                       absl::UTCTimeZone()),
      " level=", name, " msg=\"",
      absl::StrReplaceAll(message,
                          {{"\\", "\\\\"}, {"\"", "\\\""}, {"\n", "\\n"}}),
      "\"\n");
  // One write per line so concurrent lines never interleave.
  (void)!write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace scopekeeper
