#include "server/auth/refusal_reporter.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/log.h"
#include "base/redact.h"

namespace scopekeeper {
namespace {

constexpr size_t kMaxLoggedSubject = 256;

}  // namespace

void RefusalReporter::OnRefused(AuthRefusal reason,
                                const std::vector<std::string>& peer_subjects) {
  counts_[static_cast<int>(reason)].fetch_add(1, std::memory_order_relaxed);
  const absl::string_view name = AuthRefusalName(reason);
  uint64_t suppressed = 0;
  if (!LogEnabled(LogLevel::kWarning) || !throttle_.Admit(name, &suppressed)) {
    return;
  }
  std::vector<std::string> subjects;
  for (const std::string& subject : peer_subjects) {
    subjects.push_back(Redact(subject, kMaxLoggedSubject));
  }
  const std::string subject = absl::StrJoin(subjects, ";");
  const std::string count = absl::StrCat(suppressed);
  std::vector<LogField> fields = {{"service", service_}, {"reason", name}};
  if (!subject.empty()) fields.emplace_back("subject", subject);
  fields.emplace_back("suppressed", count);
  Log(LogLevel::kWarning, "credential refused", fields);
}

}  // namespace scopekeeper
