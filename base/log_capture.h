// LogCapture: for tests, collects every log line written while it lives
// instead of sending it to stderr.
//
//   LogCapture log;
//   DoSomething();
//   EXPECT_THAT(log.Lines(), Contains(HasSubstr("msg=\"admin write\"")));
//
// Thread-safe. REQUIRES: no other thread logs while it is being destroyed.
#ifndef SCOPEKEEPER_BASE_LOG_CAPTURE_H_
#define SCOPEKEEPER_BASE_LOG_CAPTURE_H_

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/string_view.h"
#include "base/log.h"
#include "base/mutex.h"

namespace scopekeeper {

class LogCapture final : public LogSink {
 public:
  LogCapture() : previous_(SetLogSink(this)) {}
  ~LogCapture() override { SetLogSink(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  void Write(absl::string_view line) override ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    lines_.emplace_back(line);
  }

  // Lines() are the lines written so far, each ending in '\n'.
  std::vector<std::string> Lines() const ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    return lines_;
  }

  // LinesContaining() are the lines holding `text`.
  std::vector<std::string> LinesContaining(absl::string_view text) const {
    std::vector<std::string> out;
    for (std::string& line : Lines()) {
      if (absl::StrContains(line, text)) out.push_back(std::move(line));
    }
    return out;
  }

 private:
  LogSink* const previous_;
  mutable Mutex mu_;
  std::vector<std::string> lines_ ABSL_GUARDED_BY(mu_);
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_BASE_LOG_CAPTURE_H_
