#include "server/decision/decision_log.h"

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/redact.h"

namespace scopekeeper {

DecisionLog::DecisionLog(double sample_rate,
                         std::function<void(const std::string&)> sink)
    : sample_rate_(std::clamp(sample_rate, 0.0, 1.0)), sink_(std::move(sink)) {
  if (!sink_) {
    sink_ = [](const std::string& line) {
      WriteLogLine(LogLevel::kInfo, line);
    };
  }
}

void DecisionLog::MaybeLog(absl::string_view api,
                           const v1::AuthorizeRequest& request,
                           const v1::AuthorizeResponse& response,
                           absl::Duration latency) {
  if (sample_rate_ <= 0) return;
  if (sample_rate_ < 1) {
    thread_local absl::BitGen gen;
    if (!absl::Bernoulli(gen, sample_rate_)) return;
  }
  const std::string http_status = absl::StrCat(response.http_status());
  const std::string revision = absl::StrCat(response.revision());
  const std::string latency_us =
      absl::StrCat(absl::ToInt64Microseconds(latency));
  sink_(LogLine(LogLevel::kInfo, "decision",
                {{"trace_id", LoggableTraceId(response.trace_id())},
                 {"api", api},
                 {"method", request.has_http() ? request.http().method() : ""},
                 {"route", response.matched_route()},
                 {"allowed", response.allowed() ? "true" : "false"},
                 {"reason", v1::Reason_Name(response.reason())},
                 {"http_status", http_status},
                 {"key_id", response.key_id()},
                 {"organization_id", response.organization_id()},
                 {"revision", revision},
                 {"latency_us", latency_us}}));
}

}  // namespace scopekeeper
