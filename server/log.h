// One-line structured (logfmt) logs to stderr:
//   ts=2026-11-23T01:02:03.456Z level=info msg="listening on 127.0.0.1:50051"
// Never pass secrets (API keys, admin tokens) to these functions.
#ifndef SCOPEKEEPER_SERVER_LOG_H_
#define SCOPEKEEPER_SERVER_LOG_H_

#include "absl/strings/string_view.h"

namespace scopekeeper {

enum class LogLevel { kInfo, kWarning, kError };

// Log() writes one line; thread-safe (one write(2) per line).
void Log(LogLevel level, absl::string_view message);
inline void LogInfo(absl::string_view m) { Log(LogLevel::kInfo, m); }
inline void LogWarning(absl::string_view m) { Log(LogLevel::kWarning, m); }
inline void LogError(absl::string_view m) { Log(LogLevel::kError, m); }

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_LOG_H_
