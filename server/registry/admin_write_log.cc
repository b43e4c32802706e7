#include "server/registry/admin_write_log.h"

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/redact.h"

namespace scopekeeper {
namespace {

// Subjects and paths are longer than ids.
constexpr size_t kMaxLoggedValue = 256;

}  // namespace

void LogAdminWrite(const AdminWrite& write, const absl::Status& outcome) {
  const LogLevel level = outcome.ok() ? LogLevel::kInfo : LogLevel::kWarning;
  if (!LogEnabled(level)) return;
  // Owned copies of every value, so the fields can point at them.
  std::vector<std::pair<std::string, std::string>> fields;
  fields.emplace_back("action", std::string(write.action));
  fields.emplace_back("actor", Redact(write.actor, kMaxLoggedValue));
  for (const auto& [name, value] : write.objects) {
    if (!value.empty()) {
      fields.emplace_back(std::string(name), Redact(value, kMaxLoggedValue));
    }
  }
  if (!write.organization_id.empty()) {
    fields.emplace_back("organization_id", Redact(write.organization_id));
  }
  if (write.revision != 0) {
    fields.emplace_back("revision", absl::StrCat(write.revision));
  }
  fields.emplace_back(
      "outcome",
      outcome.ok() ? "ok" : absl::StatusCodeToString(outcome.code()));
  if (!outcome.ok()) {
    // Error messages quote caller values through Quote() already.
    fields.emplace_back(
        "error",
        RedactSecretShapedRuns(outcome.message().substr(0, kMaxLoggedValue)));
  }
  std::vector<LogField> view(fields.begin(), fields.end());
  WriteLogLine(level, LogLine(level, "admin write", view));
}

}  // namespace scopekeeper
