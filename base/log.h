// One-line structured (logfmt) logs to stderr:
//   ts=2026-11-23T01:02:03.456Z level=info msg="listening on 127.0.0.1:50051"
// Never pass secrets (API keys, admin tokens) to these functions.
#ifndef SCOPEKEEPER_BASE_LOG_H_
#define SCOPEKEEPER_BASE_LOG_H_

#include <initializer_list>
#include <string>
#include <utility>

#include "absl/strings/string_view.h"

namespace scopekeeper {

enum class LogLevel { kInfo, kWarning, kError };

// Log() writes one line; thread-safe (one write(2) per line).
void Log(LogLevel level, absl::string_view message);
inline void LogInfo(absl::string_view m) { Log(LogLevel::kInfo, m); }
inline void LogWarning(absl::string_view m) { Log(LogLevel::kWarning, m); }
inline void LogError(absl::string_view m) { Log(LogLevel::kError, m); }

using LogField = std::pair<absl::string_view, absl::string_view>;

// LogLine() formats one line: ts, level, msg, then `fields` as key=value
// (values quoted and escaped when they need it), ending in '\n'.
std::string LogLine(LogLevel level, absl::string_view message,
                    std::initializer_list<LogField> fields = {});
// Log() with fields: one line with extra key=value pairs.
void Log(LogLevel level, absl::string_view message,
         std::initializer_list<LogField> fields);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_BASE_LOG_H_
