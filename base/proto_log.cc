#include "base/proto_log.h"

#include <atomic>
#include <chrono>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "google/protobuf/stubs/logging.h"

namespace scopekeeper {
namespace {

thread_local ProtobufErrorCapture* current_capture = nullptr;

// At most one line per second; the others are counted and reported with the
// next one that is written.
class Throttle {
 public:
  void Log(const std::string& message) {
    const int64_t now = std::chrono::duration_cast<std::chrono::seconds>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
    int64_t dropped = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (now == last_second_) {
        ++dropped_;
        return;
      }
      last_second_ = now;
      dropped = dropped_;
      dropped_ = 0;
    }
    std::string line = absl::StrCat("libprotobuf: ", message);
    if (dropped > 0) {
      absl::StrAppend(&line, " (", dropped, " similar lines dropped)");
    }
    LogWarning(line);
  }

 private:
  std::mutex mu_;
  int64_t last_second_ = -1;  // guarded by mu_
  int64_t dropped_ = 0;       // guarded by mu_
};

void Handle(google::protobuf::LogLevel level, const char* /*filename*/,
            int /*line*/, const std::string& message) {
  if (current_capture != nullptr) {
    current_capture->Capture(message);
    return;
  }
  if (level == google::protobuf::LOGLEVEL_INFO) return;
  static Throttle* const throttle = new Throttle;
  throttle->Log(message);
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
