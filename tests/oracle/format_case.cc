// FormatCase(): a scenario and its disagreement as JSON for a human.
#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "tests/oracle/differential.h"

namespace scopekeeper::oracle {
namespace {

std::string Json(const google::protobuf::Message& m) {
  std::string out;
  (void)google::protobuf::util::MessageToJsonString(m, &out);
  return out;
}

std::string Quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (static_cast<unsigned char>(c) < 0x20) {
      absl::StrAppend(&out, "\\u00", absl::Hex(c, absl::kZeroPad2));
      continue;
    }
    out += c;
  }
  return out + "\"";
}

// A JSON value: itself when it is already JSON, else a quoted string.
std::string Value(const std::string& s) {
  return !s.empty() && (s[0] == '{' || s[0] == '[') ? s : Quote(s);
}

std::string KeyJson(const KeyRef& key) {
  if (key.slot < 0)
    return absl::StrCat("{\"literal\": ", Quote(key.literal), "}");
  std::string out = absl::StrCat("{\"slot\": ", key.slot);
  if (key.secret >= 0) absl::StrAppend(&out, ", \"secret\": ", key.secret);
  if (key.alter >= 0) absl::StrAppend(&out, ", \"alterChar\": ", key.alter);
  return out + "}";
}

}  // namespace

const char* StepKindName(StepKind kind) {
  switch (kind) {
    case StepKind::kPutPolicy:
      return "PutPolicy";
    case StepKind::kPutApp:
      return "PutApp";
    case StepKind::kApproveInstallation:
      return "ApproveInstallation";
    case StepKind::kCreateKey:
      return "CreateKey";
    case StepKind::kGrantScopes:
      return "GrantScopes";
    case StepKind::kRevokeScopes:
      return "RevokeScopes";
    case StepKind::kRevokeKey:
      return "RevokeKey";
    case StepKind::kRotateKey:
      return "RotateKey";
    case StepKind::kAdvanceClock:
      return "AdvanceClock";
    case StepKind::kAuthorize:
      return "Authorize";
  }
  return "?";
}

std::string FormatCase(const Scenario& scenario, const Disagreement& found) {
  std::string out = absl::StrCat(
      "{\n  \"seed\": ", scenario.seed,
      ",\n  \"disagreement\": {\"step\": ", found.step,
      ", \"what\": ", Quote(found.what),
      ", \"target\": ", Quote(found.target_value),
      ", \"model\": ", Quote(found.model_value), "},\n  \"steps\": [\n");
  absl::Duration t;
  for (size_t i = 0;
       i < scenario.steps.size() && static_cast<int>(i) <= found.step; ++i) {
    const Step& step = scenario.steps[i];
    if (step.kind == StepKind::kAdvanceClock) t += step.advance;
    absl::StrAppend(&out, "    {\"step\": ", i, ", \"t\": \"+",
                    absl::ToInt64Seconds(t), "s\", \"", StepKindName(step.kind),
                    "\": ");
    if (step.kind == StepKind::kAdvanceClock) {
      absl::StrAppend(&out, "\"", absl::ToInt64Seconds(step.advance), "s\"");
    } else {
      absl::StrAppend(&out, Json(*step.request));
    }
    if (step.kind == StepKind::kAuthorize) {
      absl::StrAppend(&out, ", \"key\": ", KeyJson(step.key));
      if (step.wait_for_writes) {
        absl::StrAppend(&out, ", \"minRevision\": \"last write\"");
      }
    } else if (step.slot >= 0) {
      absl::StrAppend(&out, ", \"slot\": ", step.slot);
    }
    if (!step.bind_app.empty()) {
      absl::StrAppend(&out, ", \"bindApp\": ", Quote(step.bind_app));
    }
    if (!step.bind_org.empty()) {
      absl::StrAppend(&out, ", \"bindOrg\": ", Quote(step.bind_org));
    }
    absl::StrAppend(&out, "}", static_cast<int>(i) < found.step ? "," : "",
                    "\n");
  }
  absl::StrAppend(&out,
                  "  ],\n  \"targetAnswer\": ", Value(found.target_answer),
                  ",\n  \"modelAnswer\": ", Value(found.model_answer), "\n}\n");
  return out;
}

}  // namespace scopekeeper::oracle
