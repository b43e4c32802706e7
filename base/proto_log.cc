#include "base/proto_log.h"

#include <mutex>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/log_throttle.h"
#include "google/protobuf/stubs/logging.h"

namespace scopekeeper {
namespace {

thread_local ProtobufErrorCapture* current_capture = nullptr;

void Handle(google::protobuf::LogLevel level, const char* file, int line,
            const std::string& message) {
  if (current_capture != nullptr) {
    current_capture->Capture(message);
    return;
  }
  LogLevel ours = LogLevel::kError;  // ERROR, FATAL
  if (level == google::protobuf::LOGLEVEL_INFO) ours = LogLevel::kInfo;
  if (level == google::protobuf::LOGLEVEL_WARNING) ours = LogLevel::kWarning;
  if (!LogEnabled(ours)) return;
  // At most one line a second from each place in libprotobuf: a caller who
  // can make it complain cannot flood the log.
  static LogThrottle* const throttle =
      new LogThrottle(SystemClock::Get(), absl::Seconds(1));
  uint64_t suppressed = 0;
  if (!throttle->Admit(absl::StrCat(file == nullptr ? "" : file, ":", line),
                       &suppressed)) {
    return;
  }
  const std::string count = absl::StrCat(suppressed);
  if (suppressed == 0) {
    LogLibraryLine(ours, "protobuf", file, line, message);
  } else {
    LogLibraryLine(ours, "protobuf", file, line, message,
                   {{"suppressed", count}});
  }
}

}  // namespace

void RouteProtobufLogs() {
  static std::once_flag once;
  std::call_once(once, [] { google::protobuf::SetLogHandler(&Handle); });
}

ProtobufErrorCapture::ProtobufErrorCapture() : outer_(current_capture) {
  RouteProtobufLogs();  // a capture needs the handler
  current_capture = this;
}

ProtobufErrorCapture::~ProtobufErrorCapture() { current_capture = outer_; }

}  // namespace scopekeeper
