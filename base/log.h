// One-line structured logs to stderr, in one of two formats:
//   logfmt (default):
//     ts=2026-11-23T01:02:03.456Z level=info msg="listening on 127.0.0.1:50051"
//   JSON lines (for log shippers):
//     {"ts":"2026-11-23T01:02:03.456Z","level":"info","msg":"listening on …"}
// Every line of the process goes through one writer: Scopekeeper's own, and
// (see server/grpc/library_logs.h) gRPC's and protobuf's, so the stream has
// one format. Lines below the configured level are dropped.
// Never pass secrets (API keys, admin tokens) to these functions; caller
// values go through base/redact.h first.
#ifndef SCOPEKEEPER_BASE_LOG_H_
#define SCOPEKEEPER_BASE_LOG_H_

#include <string>
#include <utility>

#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace scopekeeper {

enum class LogLevel { kInfo, kWarning, kError };
enum class LogFormat { kLogfmt, kJson };

// Flag syntax (absl flags): "info", "warning", "error" / "logfmt", "json".
bool AbslParseFlag(absl::string_view text, LogLevel* level, std::string* error);
std::string AbslUnparseFlag(LogLevel level);
bool AbslParseFlag(absl::string_view text, LogFormat* format,
                   std::string* error);
std::string AbslUnparseFlag(LogFormat format);

// SetLogLevel() drops later lines below `level`; SetLogFormat() chooses the
// format of later lines. Process-wide; thread-safe (set them in main() before
// the server starts, so every line has the same format).
void SetLogLevel(LogLevel level);
void SetLogFormat(LogFormat format);
LogLevel GetLogLevel();
LogFormat GetLogFormat();
// LogEnabled() is true when a line at `level` would be written.
bool LogEnabled(LogLevel level);

using LogField = std::pair<absl::string_view, absl::string_view>;

// LogLine() formats one line in the current format: ts, level, msg, then
// `fields` in order (logfmt: key=value, quoted and escaped when needed;
// JSON: string members), ending in '\n'.
std::string LogLine(LogLevel level, absl::string_view message,
                    absl::Span<const LogField> fields = {});

// Log() writes one line, if `level` is enabled; thread-safe (one write(2)
// per line, so concurrent lines never interleave).
void Log(LogLevel level, absl::string_view message);
void Log(LogLevel level, absl::string_view message,
         absl::Span<const LogField> fields);
inline void LogInfo(absl::string_view m) { Log(LogLevel::kInfo, m); }
inline void LogWarning(absl::string_view m) { Log(LogLevel::kWarning, m); }
inline void LogError(absl::string_view m) { Log(LogLevel::kError, m); }

// LogLibraryLine() writes a line from a library's own logger (gRPC,
// protobuf), if `level` is enabled: its trailing newlines trimmed, then
// logger=<logger> source=<file's base name>:<line> and `extra`.
void LogLibraryLine(LogLevel level, absl::string_view logger, const char* file,
                    int line, absl::string_view message,
                    absl::Span<const LogField> extra = {});

// WriteLogLine() writes a line made by LogLine() (at `level`, which decides
// whether it is written) to the current sink.
void WriteLogLine(LogLevel level, absl::string_view line);

// LogSink receives every written line in place of stderr (for tests; see
// base/log_capture.h). Implementations must be thread-safe.
class LogSink {
 public:
  virtual ~LogSink() = default;
  virtual void Write(absl::string_view line) = 0;
};
// SetLogSink() sends later lines to `sink` (not owned; it must outlive its
// use), or back to stderr with nullptr. Returns the previous sink.
LogSink* SetLogSink(LogSink* sink);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_BASE_LOG_H_
