#include "base/log.h"

#include <unistd.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace scopekeeper {

namespace {

std::string Escape(absl::string_view value) {
  return absl::StrReplaceAll(value,
                             {{"\\", "\\\\"}, {"\"", "\\\""}, {"\n", "\\n"}});
}

// A value needs quotes when empty or when it holds a space, '=' or '"'.
bool NeedsQuotes(absl::string_view value) {
  return value.empty() ||
         value.find_first_of(" =\"\\\n\t") != absl::string_view::npos;
}

void Write(const std::string& line) {
  // One write per line so concurrent lines never interleave.
  (void)!write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace

std::string LogLine(LogLevel level, absl::string_view message,
                    std::initializer_list<LogField> fields) {
  absl::string_view name = level == LogLevel::kInfo      ? "info"
                           : level == LogLevel::kWarning ? "warning"
                                                         : "error";
  std::string line =
      absl::StrCat("ts=",
                   absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                    absl::UTCTimeZone()),
                   " level=", name, " msg=\"", Escape(message), "\"");
  for (const auto& [key, value] : fields) {
    if (NeedsQuotes(value)) {
      absl::StrAppend(&line, " ", key, "=\"", Escape(value), "\"");
    } else {
      absl::StrAppend(&line, " ", key, "=", value);
    }
  }
  line.push_back('\n');
  return line;
}

void Log(LogLevel level, absl::string_view message) {
  Write(LogLine(level, message));
}

void Log(LogLevel level, absl::string_view message,
         std::initializer_list<LogField> fields) {
  Write(LogLine(level, message, fields));
}

}  // namespace scopekeeper
