#include "base/log.h"

#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace scopekeeper {

namespace {

std::atomic<LogLevel> min_level{LogLevel::kInfo};
std::atomic<LogFormat> format{LogFormat::kLogfmt};
std::atomic<LogSink*> sink{nullptr};

absl::string_view LevelName(LogLevel level) {
  switch (level) {
    case LogLevel::kInfo:
      return "info";
    case LogLevel::kWarning:
      return "warning";
    case LogLevel::kError:
      return "error";
  }
  return "error";
}

std::string LogfmtEscape(absl::string_view value) {
  return absl::StrReplaceAll(
      value, {{"\\", "\\\\"}, {"\"", "\\\""}, {"\n", "\\n"}, {"\r", "\\r"}});
}

// A value needs quotes when empty or when it holds a space, '=', '"', a
// backslash or a control character.
bool NeedsQuotes(absl::string_view value) {
  if (value.empty()) return true;
  for (char c : value) {
    const auto u = static_cast<unsigned char>(c);
    if (u <= ' ' || c == '=' || c == '"' || c == '\\' || u == 0x7f) return true;
  }
  return false;
}

void AppendLogfmt(absl::string_view key, absl::string_view value,
                  std::string* line) {
  if (NeedsQuotes(value)) {
    absl::StrAppend(line, " ", key, "=\"", LogfmtEscape(value), "\"");
  } else {
    absl::StrAppend(line, " ", key, "=", value);
  }
}

// Length of the valid UTF-8 sequence at s[i], or 0 when it is not one.
size_t Utf8Length(absl::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  size_t len;
  uint32_t min;
  if (b0 < 0x80) return 1;
  if ((b0 & 0xe0) == 0xc0) {
    len = 2;
    min = 0x80;
  } else if ((b0 & 0xf0) == 0xe0) {
    len = 3;
    min = 0x800;
  } else if ((b0 & 0xf8) == 0xf0) {
    len = 4;
    min = 0x10000;
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  uint32_t cp = b0 & (0x7f >> len);
  for (size_t k = 1; k < len; ++k) {
    const auto b = static_cast<unsigned char>(s[i + k]);
    if ((b & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

// AppendJsonString() appends `value` as a JSON string: quotes, backslashes
// and control characters escaped, invalid UTF-8 bytes replaced by U+FFFD,
// so every line is valid JSON whatever a library logged.
void AppendJsonString(absl::string_view value, std::string* out) {
  out->push_back('"');
  for (size_t i = 0; i < value.size();) {
    const char c = value[i];
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out->push_back('\\');
      out->push_back(c);
    } else if (c == '\n') {
      out->append("\\n");
    } else if (c == '\r') {
      out->append("\\r");
    } else if (c == '\t') {
      out->append("\\t");
    } else if (u < 0x20 || u == 0x7f) {
      absl::StrAppendFormat(out, "\\u%04x", u);
    } else if (u >= 0x80) {
      const size_t len = Utf8Length(value, i);
      if (len == 0) {
        out->append("\\ufffd");
        ++i;
        continue;
      }
      out->append(value.data() + i, len);
      i += len;
      continue;
    } else {
      out->push_back(c);
    }
    ++i;
  }
  out->push_back('"');
}

void AppendJsonMember(absl::string_view key, absl::string_view value,
                      std::string* line) {
  line->push_back(',');
  AppendJsonString(key, line);
  line->push_back(':');
  AppendJsonString(value, line);
}

}  // namespace

bool AbslParseFlag(absl::string_view text, LogLevel* level,
                   std::string* error) {
  const std::string t = absl::AsciiStrToLower(text);
  if (t == "info") {
    *level = LogLevel::kInfo;
  } else if (t == "warning") {
    *level = LogLevel::kWarning;
  } else if (t == "error") {
    *level = LogLevel::kError;
  } else {
    *error = "must be info, warning or error";
    return false;
  }
  return true;
}

std::string AbslUnparseFlag(LogLevel level) {
  return std::string(LevelName(level));
}

bool AbslParseFlag(absl::string_view text, LogFormat* out, std::string* error) {
  const std::string t = absl::AsciiStrToLower(text);
  if (t == "logfmt") {
    *out = LogFormat::kLogfmt;
  } else if (t == "json") {
    *out = LogFormat::kJson;
  } else {
    *error = "must be logfmt or json";
    return false;
  }
  return true;
}

std::string AbslUnparseFlag(LogFormat f) {
  return f == LogFormat::kJson ? "json" : "logfmt";
}

void SetLogLevel(LogLevel level) {
  min_level.store(level, std::memory_order_relaxed);
}
void SetLogFormat(LogFormat f) { format.store(f, std::memory_order_relaxed); }
LogLevel GetLogLevel() { return min_level.load(std::memory_order_relaxed); }
LogFormat GetLogFormat() { return format.load(std::memory_order_relaxed); }

bool LogEnabled(LogLevel level) {
  return static_cast<int>(level) >= static_cast<int>(GetLogLevel());
}

std::string LogLine(LogLevel level, absl::string_view message,
                    absl::Span<const LogField> fields) {
  const std::string ts = absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", absl::Now(),
                                          absl::UTCTimeZone());
  std::string line;
  if (GetLogFormat() == LogFormat::kJson) {
    absl::StrAppend(&line, "{\"ts\":\"", ts, "\",\"level\":\"",
                    LevelName(level), "\"");
    AppendJsonMember("msg", message, &line);
    for (const auto& [key, value] : fields) {
      AppendJsonMember(key, value, &line);
    }
    line.append("}\n");
    return line;
  }
  absl::StrAppend(&line, "ts=", ts, " level=", LevelName(level), " msg=\"",
                  LogfmtEscape(message), "\"");
  for (const auto& [key, value] : fields) AppendLogfmt(key, value, &line);
  line.push_back('\n');
  return line;
}

void WriteLogLine(LogLevel level, absl::string_view line) {
  if (!LogEnabled(level)) return;
  LogSink* s = sink.load(std::memory_order_acquire);
  if (s != nullptr) {
    s->Write(line);
    return;
  }
  // One write per line so concurrent lines never interleave.
  (void)!write(STDERR_FILENO, line.data(), line.size());
}

LogSink* SetLogSink(LogSink* new_sink) {
  return sink.exchange(new_sink, std::memory_order_acq_rel);
}

void Log(LogLevel level, absl::string_view message) {
  if (!LogEnabled(level)) return;
  WriteLogLine(level, LogLine(level, message));
}

void Log(LogLevel level, absl::string_view message,
         absl::Span<const LogField> fields) {
  if (!LogEnabled(level)) return;
  WriteLogLine(level, LogLine(level, message, fields));
}

void LogLibraryLine(LogLevel level, absl::string_view logger, const char* file,
                    int line, absl::string_view message,
                    absl::Span<const LogField> extra) {
  if (!LogEnabled(level)) return;
  // Libraries end some messages with a newline of their own.
  while (!message.empty() &&
         (message.back() == '\n' || message.back() == ' ')) {
    message.remove_suffix(1);
  }
  absl::string_view path = file == nullptr ? "" : file;
  const size_t slash = path.rfind('/');
  if (slash != absl::string_view::npos) path.remove_prefix(slash + 1);
  const std::string source = absl::StrCat(path, ":", line);
  std::vector<LogField> fields = {{"logger", logger}, {"source", source}};
  fields.insert(fields.end(), extra.begin(), extra.end());
  Log(level, message, fields);
}

}  // namespace scopekeeper
