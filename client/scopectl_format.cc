#include "client/scopectl_format.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/proto_yaml.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"

namespace scopekeeper {
namespace {

using ::google::protobuf::util::TimeUtil;

// "-" for an unset timestamp, else RFC 3339 UTC.
std::string Time(const google::protobuf::Timestamp& t) {
  if (t.seconds() == 0 && t.nanos() == 0) return "-";
  return TimeUtil::ToString(t);
}

std::string List(const google::protobuf::RepeatedPtrField<std::string>& v) {
  return v.empty() ? "-" : absl::StrJoin(v, ", ");
}

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

std::string Grants(const v1::Key& key) {
  if (key.grants().empty()) return "-";
  std::vector<std::string> grants;
  for (const v1::Grant& g : key.grants()) {
    grants.push_back(
        g.has_expire_time()
            ? absl::StrCat(g.scope(), " (until ", Time(g.expire_time()), ")")
            : g.scope());
  }
  return absl::StrJoin(grants, ", ");
}

std::string Requirement(const v1::Requirement& r) {
  if (r.authenticated_only()) return "any valid key";
  std::vector<std::string> parts;
  if (!r.all_of().empty()) parts.push_back(absl::StrJoin(r.all_of(), " AND "));
  if (!r.any_of().empty()) {
    parts.push_back(
        absl::StrCat("one of (", absl::StrJoin(r.any_of(), ", "), ")"));
  }
  return parts.empty() ? "-" : absl::StrJoin(parts, " AND ");
}

}  // namespace

bool ParseOutputFormat(const std::string& name, OutputFormat* format) {
  if (name == "table") {
    *format = OutputFormat::kTable;
  } else if (name == "json") {
    *format = OutputFormat::kJson;
  } else if (name == "yaml") {
    *format = OutputFormat::kYaml;
  } else {
    return false;
  }
  return true;
}

std::string ToJson(const google::protobuf::Message& message, bool multiline) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = multiline;
  std::string json;
  // Only fails for messages that cannot occur here (e.g. a Timestamp out of
  // range from a misbehaving server); say so rather than print half a value.
  const auto status =
      google::protobuf::util::MessageToJsonString(message, &json, options);
  if (!status.ok()) {
    return absl::StrCat("{\"error\": \"cannot convert ", message.GetTypeName(),
                        " to JSON\"}");
  }
  if (multiline && !json.empty() && json.back() == '\n') json.pop_back();
  return json;
}

void PrintMessage(const google::protobuf::Message& message, OutputFormat format,
                  std::ostream& out) {
  if (format == OutputFormat::kYaml) {
    out << MessageToYaml(message);
  } else {
    out << ToJson(message, /*multiline=*/true) << "\n";
  }
}

void PrintStreamed(const google::protobuf::Message& message,
                   OutputFormat format, std::ostream& out) {
  if (format == OutputFormat::kYaml) {
    out << "---\n" << MessageToYaml(message);
  } else {
    out << ToJson(message, /*multiline=*/false) << "\n";
  }
}

void TextTable::AddRow(std::vector<std::string> row) {
  rows_.push_back(std::move(row));
}

void TextTable::Print(std::ostream& out) const {
  std::vector<size_t> widths;
  for (const auto& row : rows_) {
    widths.resize(std::max(widths.size(), row.size()), 0);
    for (size_t i = 0; i < row.size(); ++i) {
      widths[i] = std::max(widths[i], row[i].size());
    }
  }
  for (const auto& row : rows_) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(widths[i] - row[i].size() + 2, ' ');
    }
    out << line << "\n";
  }
}

void PrintKey(const v1::Key& key, std::ostream& out) {
  TextTable t;
  t.AddRow({"key_id:", key.key_id()});
  t.AddRow({"organization_id:", OrDash(key.organization_id())});
  t.AddRow({"name:", OrDash(key.name())});
  t.AddRow({"status:", v1::KeyStatus_Name(key.status())});
  t.AddRow({"apis:", List(key.apis())});
  t.AddRow({"environment:", OrDash(key.environment())});
  t.AddRow({"effective_scopes:", List(key.effective_scopes())});
  t.AddRow({"grants:", Grants(key)});
  t.AddRow({"bundles:", List(key.bundles())});
  t.AddRow({"installation_id:", OrDash(key.installation_id())});
  t.AddRow({"display_prefix:", OrDash(key.display_prefix())});
  t.AddRow({"create_time:", Time(key.create_time())});
  t.AddRow({"expire_time:", Time(key.expire_time())});
  if (key.has_revoke_time()) {
    t.AddRow({"revoke_time:", Time(key.revoke_time())});
    t.AddRow({"revoke_reason:", OrDash(key.revoke_reason())});
  }
  t.AddRow({"last_used_time:", Time(key.last_used_time())});
  t.AddRow({"revision:", absl::StrCat(key.revision())});
  t.Print(out);
}

void PrintKeyTable(const std::vector<v1::Key>& keys, std::ostream& out) {
  TextTable t;
  t.AddRow(
      {"KEY_ID", "ORGANIZATION", "NAME", "STATUS", "APIS", "PREFIX", "SCOPES"});
  for (const v1::Key& key : keys) {
    t.AddRow({key.key_id(), OrDash(key.organization_id()), OrDash(key.name()),
              v1::KeyStatus_Name(key.status()), List(key.apis()),
              OrDash(key.display_prefix()), List(key.effective_scopes())});
  }
  t.Print(out);
}

void PrintDecision(const v1::AuthorizeResponse& d, std::ostream& out) {
  TextTable t;
  t.AddRow({"decision:", d.allowed() ? "ALLOWED" : "DENIED"});
  t.AddRow({"reason:", v1::Reason_Name(d.reason())});
  t.AddRow({"http_status:", absl::StrCat(d.http_status())});
  t.AddRow({"message:", OrDash(d.message())});
  if (!d.missing_scopes().empty()) {
    t.AddRow({"missing_scopes:", List(d.missing_scopes())});
  }
  if (!d.redactions().empty()) {
    t.AddRow({"redactions:", List(d.redactions())});
  }
  t.AddRow({"matched_route:", OrDash(d.matched_route())});
  t.AddRow({"key_id:", OrDash(d.key_id())});
  t.AddRow({"organization_id:", OrDash(d.organization_id())});
  if (!d.app_id().empty()) t.AddRow({"app_id:", d.app_id()});
  t.AddRow({"revision:", absl::StrCat(d.revision())});
  t.AddRow({"trace_id:", OrDash(d.trace_id())});
  t.Print(out);
}

void PrintPolicy(const v1::Policy& policy, std::ostream& out) {
  out << "SCOPES (" << policy.scopes_size() << ")\n";
  TextTable scopes;
  for (const v1::ScopeDefinition& s : policy.scopes()) {
    scopes.AddRow({"  " + s.name(), s.description()});
  }
  scopes.Print(out);
  for (const v1::Api& api : policy.apis()) {
    out << "\nAPI " << api.name() << "  key_prefix=" << OrDash(api.key_prefix())
        << "  path_prefix=" << OrDash(api.path_prefix()) << "  ("
        << api.routes_size() << " routes)\n";
    TextTable routes;
    routes.AddRow({"  METHOD", "PATH", "REQUIRES", "REDACTS"});
    for (const v1::Route& r : api.routes()) {
      std::vector<std::string> redacts;
      for (const v1::Redaction& x : r.redactions()) {
        redacts.push_back(
            absl::StrCat(x.field(), " unless ", x.unless_scope()));
      }
      routes.AddRow({"  " + r.method(), r.path(), Requirement(r.requirement()),
                     redacts.empty() ? "-" : absl::StrJoin(redacts, ", ")});
    }
    routes.Print(out);
  }
  out << "\nBUNDLES (" << policy.bundles_size() << ")\n";
  TextTable bundles;
  for (const v1::Bundle& b : policy.bundles()) {
    bundles.AddRow({"  " + b.name(), List(b.scopes())});
  }
  bundles.Print(out);
}

void PrintDescribedKey(const v1::DescribeKeyResponse& described,
                       std::ostream& out) {
  PrintKey(described.key(), out);
  if (described.has_app()) {
    out << "\napp:\n";
    PrintApp(described.app(), out);
  }
}

void PrintApp(const v1::App& app, std::ostream& out) {
  TextTable t;
  t.AddRow({"app_id:", app.app_id()});
  t.AddRow({"slug:", OrDash(app.slug())});
  t.AddRow({"live_version_id:", OrDash(app.live_version_id())});
  t.AddRow({"requested_scopes:", List(app.requested_scopes())});
  t.Print(out);
}

void PrintInstallation(const v1::Installation& i, std::ostream& out) {
  TextTable t;
  t.AddRow({"installation_id:", i.installation_id()});
  t.AddRow({"app_id:", i.app_id()});
  t.AddRow({"organization_id:", i.organization_id()});
  t.AddRow({"approved_scopes:", List(i.approved_scopes())});
  t.AddRow({"pending_scopes:", List(i.pending_scopes())});
  t.AddRow({"approve_time:", Time(i.approve_time())});
  t.Print(out);
}

void PrintBackup(const v1::CreateBackupResponse& backup, std::ostream& out) {
  TextTable t;
  t.AddRow({"path:", backup.path()});
  t.AddRow({"revision:", absl::StrCat(backup.revision())});
  t.Print(out);
}

void PrintDecisionRows(const std::vector<std::string>& labels,
                       const std::vector<v1::AuthorizeResponse>& decisions,
                       std::ostream& out) {
  TextTable t;
  t.AddRow({"LINE", "DECISION", "REASON", "HTTP", "KEY_ID", "MATCHED_ROUTE",
            "MESSAGE"});
  for (size_t i = 0; i < decisions.size(); ++i) {
    const v1::AuthorizeResponse& d = decisions[i];
    t.AddRow({labels[i], d.allowed() ? "ALLOWED" : "DENIED",
              v1::Reason_Name(d.reason()), absl::StrCat(d.http_status()),
              OrDash(d.key_id()), OrDash(d.matched_route()),
              OrDash(d.message())});
  }
  t.Print(out);
}

void PrintAuditEvents(const std::vector<v1::AuditEvent>& events,
                      std::ostream& out) {
  TextTable t;
  t.AddRow({"REVISION", "TIME", "ACTOR", "ACTION", "KEY_ID", "ORGANIZATION",
            "DETAIL"});
  for (const v1::AuditEvent& e : events) {
    t.AddRow({absl::StrCat(e.revision()), Time(e.time()), OrDash(e.actor()),
              e.action(), OrDash(e.key_id()), OrDash(e.organization_id()),
              OrDash(e.detail())});
  }
  t.Print(out);
}

void PrintWatchEvent(const v1::WatchEvent& event, std::ostream& out) {
  const v1::AuditEvent& e = event.event();
  out << event.revision() << "  " << Time(e.time()) << "  "
      << OrDash(e.action()) << "  key=" << OrDash(e.key_id())
      << "  org=" << OrDash(e.organization_id());
  if (event.has_key()) {
    out << "  status=" << v1::KeyStatus_Name(event.key().status());
  }
  if (event.policy_changed()) out << "  policy_changed";
  out << "\n";
}

}  // namespace scopekeeper
