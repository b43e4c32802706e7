#include "server/grpc/library_logs.h"

#include <grpc/support/log.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "base/log.h"
#include "google/protobuf/stubs/logging.h"

namespace scopekeeper {
namespace {

absl::string_view BaseName(const char* file) {
  if (file == nullptr) return "";
  const absl::string_view path(file);
  const size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

void Write(LogLevel level, absl::string_view logger, const char* file, int line,
           absl::string_view message) {
  if (!LogEnabled(level)) return;
  // Libraries end some messages with a newline of their own.
  while (!message.empty() &&
         (message.back() == '\n' || message.back() == ' ')) {
    message.remove_suffix(1);
  }
  const std::string source = absl::StrCat(BaseName(file), ":", line);
  Log(level, message, {{"logger", logger}, {"source", source}});
}

void GrpcLog(gpr_log_func_args* args) {
  const LogLevel level = args->severity == GPR_LOG_SEVERITY_ERROR
                             ? LogLevel::kError
                             : LogLevel::kInfo;
  Write(level, "grpc", args->file, args->line,
        args->message != nullptr ? args->message : "");
}

void ProtobufLog(google::protobuf::LogLevel level, const char* file, int line,
                 const std::string& message) {
  LogLevel ours = LogLevel::kError;  // ERROR, FATAL
  if (level == google::protobuf::LOGLEVEL_INFO) ours = LogLevel::kInfo;
  if (level == google::protobuf::LOGLEVEL_WARNING) ours = LogLevel::kWarning;
  Write(ours, "protobuf", file, line, message);
}

}  // namespace

void RouteLibraryLogs() {
  gpr_set_log_function(&GrpcLog);
  google::protobuf::SetLogHandler(&ProtobufLog);
}

}  // namespace scopekeeper
