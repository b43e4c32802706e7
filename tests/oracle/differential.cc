#include "tests/oracle/differential.h"

#include <algorithm>
#include <map>
#include <memory>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/util/json_util.h"
#include "tests/oracle/reference_model.h"

namespace scopekeeper::oracle {
namespace {

using google::protobuf::Message;

std::string Json(const Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return out;
}

std::string List(const google::protobuf::RepeatedPtrField<std::string>& v) {
  return "[" + absl::StrJoin(v, ", ") + "]";
}

std::string CodeName(absl::StatusCode code) {
  return absl::StatusCodeToString(code);
}

void Shift(absl::Duration shift, google::protobuf::Timestamp* t) {
  t->set_seconds(t->seconds() + absl::ToInt64Seconds(shift));
}

// IsUuidV4() is true for "xxxxxxxx-xxxx-4xxx-[89ab]xxx-xxxxxxxxxxxx".
bool IsUuidV4(const std::string& s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const bool dash = i == 8 || i == 13 || i == 18 || i == 23;
    if (dash != (s[i] == '-')) return false;
    if (!dash && !absl::ascii_isxdigit(s[i])) return false;
    if (!dash && absl::ascii_isupper(s[i])) return false;
  }
  return s[14] == '4' && absl::StrContains("89ab", s[19]);
}

// The state of one play besides the model: what the target generated.
class Player {
 public:
  Player(Target& target, PlayStats* stats)
      : target_(target), stats_(stats), shift_(target.Now() - kScenarioStart) {
    model_.SetNow(target.Now());
  }

  std::optional<Disagreement> Run(const Scenario& scenario) {
    const auto& steps = scenario.steps;
    for (size_t i = 0; i < steps.size(); ++i) {
      step_ = i;
      if (steps[i].kind == StepKind::kAuthorize) {
        size_t end = i;
        while (end < steps.size() && end - i < 1000 &&
               steps[end].kind == StepKind::kAuthorize) {
          ++end;
        }
        if (Decide(steps, i, end)) return found_;
        i = end - 1;
      } else if (Operate(steps[i])) {
        return found_;
      }
    }
    return std::nullopt;
  }

 private:
  // Disagree() records a disagreement at the current step; returns true.
  bool Disagree(std::string what, std::string target_value,
                std::string model_value, std::string target_answer = "",
                std::string model_answer = "") {
    found_ = Disagreement{static_cast<int>(step_),  std::move(what),
                          std::move(target_value),  std::move(model_value),
                          std::move(target_answer), std::move(model_answer)};
    return true;
  }

  const std::string& KeyId(int slot) {
    static const std::string kNone;
    return slot >= 0 && slot < static_cast<int>(key_ids_.size())
               ? key_ids_[slot]
               : kNone;
  }

  std::string Secret(const KeyRef& ref) {
    if (ref.slot < 0) return ref.literal;
    if (KeyId(ref.slot).empty()) return "sk_never_issued";
    const std::vector<std::string>& secrets = secrets_[ref.slot];
    const size_t i =
        ref.secret < 0 || ref.secret >= static_cast<int>(secrets.size())
            ? secrets.size() - 1
            : ref.secret;
    std::string s = secrets[i];
    if (ref.alter >= 0 && !s.empty()) {
      char& c = s[ref.alter % s.size()];
      c = c == 'a' ? 'b' : 'a';
    }
    return s;
  }

  // CheckCode() compares the target's status with the model's code.
  bool CheckCode(const char* op, const absl::Status& status,
                 absl::StatusCode model) {
    ++stats_->operations;
    if (status.code() == model) return false;
    return Disagree(absl::StrCat(op, ".status"), CodeName(status.code()),
                    CodeName(model), status.ToString());
  }

  // CheckKey() compares a key an operation returned with the model's.
  bool CheckKey(const char* op, int slot, const v1::Key& key) {
    last_write_ = std::max(last_write_, key.revision());
    if (key.key_id() != KeyId(slot)) {
      return Disagree(absl::StrCat(op, ".key_id"), key.key_id(), KeyId(slot));
    }
    std::vector<std::string> want = model_.EffectiveScopes(key.key_id());
    std::vector<std::string> got(key.effective_scopes().begin(),
                                 key.effective_scopes().end());
    if (got != want) {
      return Disagree(absl::StrCat(op, ".effective_scopes"),
                      absl::StrJoin(got, ", "), absl::StrJoin(want, ", "),
                      Json(key));
    }
    return false;
  }

  bool Operate(const Step& step) {
    const int slot = step.slot;
    if (step.kind != StepKind::kCreateKey &&
        step.kind != StepKind::kAdvanceClock &&
        step.kind != StepKind::kPutPolicy && step.kind != StepKind::kPutApp &&
        step.kind != StepKind::kApproveInstallation && KeyId(slot).empty()) {
      return false;  // a key operation on a key that does not exist
    }
    switch (step.kind) {
      case StepKind::kAdvanceClock:
        target_.AdvanceClock(step.advance);
        model_.SetNow(target_.Now());
        return false;
      case StepKind::kPutPolicy: {
        const auto& request =
            static_cast<const v1::PutPolicyRequest&>(*step.request);
        auto r = target_.PutPolicy(request);
        if (CheckCode("PutPolicy", r.status(),
                      model_.PutPolicy(request.policy())))
          return true;
        if (r.ok()) last_write_ = std::max(last_write_, r->revision());
        return false;
      }
      case StepKind::kPutApp: {
        const auto& request =
            static_cast<const v1::PutAppRequest&>(*step.request);
        auto r = target_.PutApp(request);
        return CheckCode("PutApp", r.status(), model_.PutApp(request));
      }
      case StepKind::kApproveInstallation: {
        const auto& request =
            static_cast<const v1::ApproveInstallationRequest&>(*step.request);
        const std::string before =
            model_.InstallationId(request.organization_id(), request.app_id());
        auto r = target_.ApproveInstallation(request);
        if (CheckCode("ApproveInstallation", r.status(),
                      model_.ApproveInstallation(
                          request, r.ok() ? r->installation_id() : ""))) {
          return true;
        }
        if (r.ok() && !before.empty() && r->installation_id() != before) {
          return Disagree("ApproveInstallation.installation_id",
                          r->installation_id(), before);
        }
        return false;
      }
      case StepKind::kCreateKey: {
        v1::CreateKeyRequest request =
            static_cast<const v1::CreateKeyRequest&>(*step.request);
        if (request.has_expire_time()) {
          Shift(shift_, request.mutable_expire_time());
        }
        if (!step.bind_app.empty()) {
          const std::string id = model_.InstallationId(
              step.bind_org.empty() ? request.organization_id() : step.bind_org,
              step.bind_app);
          request.set_installation_id(id.empty() ? "inst_none" : id);
        }
        auto r = target_.CreateKey(request);
        const absl::StatusCode want =
            model_.CreateKey(request, r.ok() ? r->key().key_id() : "",
                             r.ok() ? r->secret() : "");
        if (CheckCode("CreateKey", r.status(), want)) return true;
        if (!r.ok()) return false;
        if (slot >= static_cast<int>(key_ids_.size())) {
          key_ids_.resize(slot + 1);
          secrets_.resize(slot + 1);
        }
        key_ids_[slot] = r->key().key_id();
        secrets_[slot] = {r->secret()};
        last_write_ = std::max(last_write_, r->revision());
        const std::string want_prefix = model_.SecretPrefix(request) + "_";
        if (!absl::StartsWith(r->secret(), want_prefix)) {
          return Disagree("CreateKey.secret_prefix",
                          r->secret().substr(0, want_prefix.size()),
                          want_prefix);
        }
        return CheckKey("CreateKey", slot, r->key());
      }
      case StepKind::kGrantScopes: {
        v1::GrantScopesRequest request =
            static_cast<const v1::GrantScopesRequest&>(*step.request);
        request.set_key_id(KeyId(slot));
        if (request.has_expire_time()) {
          Shift(shift_, request.mutable_expire_time());
        }
        auto r = target_.GrantScopes(request);
        if (CheckCode("GrantScopes", r.status(), model_.GrantScopes(request))) {
          return true;
        }
        return r.ok() && CheckKey("GrantScopes", slot, *r);
      }
      case StepKind::kRevokeScopes: {
        v1::RevokeScopesRequest request =
            static_cast<const v1::RevokeScopesRequest&>(*step.request);
        request.set_key_id(KeyId(slot));
        auto r = target_.RevokeScopes(request);
        if (CheckCode("RevokeScopes", r.status(),
                      model_.RevokeScopes(request))) {
          return true;
        }
        return r.ok() && CheckKey("RevokeScopes", slot, *r);
      }
      case StepKind::kRevokeKey: {
        v1::RevokeKeyRequest request =
            static_cast<const v1::RevokeKeyRequest&>(*step.request);
        request.set_key_id(KeyId(slot));
        auto r = target_.RevokeKey(request);
        if (CheckCode("RevokeKey", r.status(), model_.RevokeKey(request))) {
          return true;
        }
        return r.ok() && CheckKey("RevokeKey", slot, *r);
      }
      case StepKind::kRotateKey: {
        v1::RotateKeyRequest request =
            static_cast<const v1::RotateKeyRequest&>(*step.request);
        request.set_key_id(KeyId(slot));
        auto r = target_.RotateKey(request);
        if (CheckCode("RotateKey", r.status(),
                      model_.RotateKey(request, r.ok() ? r->secret() : ""))) {
          return true;
        }
        if (!r.ok()) return false;
        secrets_[slot].push_back(r->secret());
        last_write_ = std::max(last_write_, r->revision());
        return CheckKey("RotateKey", slot, r->key());
      }
      case StepKind::kAuthorize:
        break;
    }
    return false;
  }

  // Decide() compares the decisions of steps [begin, end).
  bool Decide(const std::vector<Step>& steps, size_t begin, size_t end) {
    std::vector<v1::AuthorizeRequest> requests;
    for (size_t i = begin; i < end; ++i) {
      v1::AuthorizeRequest r =
          static_cast<const v1::AuthorizeRequest&>(*steps[i].request);
      r.set_api_key(Secret(steps[i].key));
      if (steps[i].wait_for_writes) r.set_min_revision(last_write_);
      requests.push_back(std::move(r));
    }
    std::vector<ReferenceModel::Decision> decisions;
    int first_wrong = -1;  // the first request that is INVALID_ARGUMENT
    for (const auto& r : requests) {
      decisions.push_back(model_.Authorize(r));
      if (first_wrong < 0 && decisions.back().code != absl::StatusCode::kOk) {
        first_wrong = decisions.size() - 1;
      }
    }
    const Target::Answers answers = target_.Authorize(requests);
    if (answers.batch.has_value()) {
      // One malformed entry fails the whole batch, naming its index.
      const absl::Status& batch = *answers.batch;
      const std::string want =
          first_wrong < 0 ? "OK"
                          : absl::StrCat(CodeName(decisions[first_wrong].code),
                                         ": requests[", first_wrong, "].");
      const std::string got = batch.ok() ? "OK"
                                         : absl::StrCat(CodeName(batch.code()),
                                                        ": ", batch.message());
      if (!absl::StartsWith(got, want)) {
        step_ = begin + std::max(first_wrong, 0);
        return Disagree("BatchAuthorize.status", got, want);
      }
    }
    for (size_t i = 0; i < requests.size(); ++i) {
      step_ = begin + i;
      ++stats_->decisions;
      if (i >= answers.each.size()) {
        return Disagree("Authorize.answers", "missing", "one per request");
      }
      if (Compare(requests[i], decisions[i], answers.each[i])) return true;
    }
    return false;
  }

  bool Compare(const v1::AuthorizeRequest& request,
               const ReferenceModel::Decision& want,
               const absl::StatusOr<v1::AuthorizeResponse>& got) {
    ++stats_->outcomes[want.code == absl::StatusCode::kOk
                           ? static_cast<int>(want.response.reason())
                           : 0];
    if (want.response.redactions_size() > 0) ++stats_->redacted;
    // Disagree() with both whole answers (rendered only on a disagreement).
    auto disagree = [&](std::string what, std::string gv, std::string wv) {
      return Disagree(std::move(what), std::move(gv), std::move(wv),
                      got.ok() ? Json(*got) : got.status().ToString(),
                      want.code == absl::StatusCode::kOk ? Json(want.response)
                                                         : CodeName(want.code));
    };
    if (!got.ok() || want.code != absl::StatusCode::kOk) {
      if (got.status().code() == want.code) return false;
      return disagree("Authorize.status", CodeName(got.status().code()),
                      CodeName(want.code));
    }
    const v1::AuthorizeResponse& g = *got;
    const v1::AuthorizeResponse& w = want.response;
    auto differ = [&](const char* field, const std::string& gv,
                      const std::string& wv) {
      return gv != wv && disagree(absl::StrCat("Authorize.", field), gv, wv);
    };
    auto differ_list = [&](const char* field, const auto& gv, const auto& wv) {
      return !std::equal(gv.begin(), gv.end(), wv.begin(), wv.end()) &&
             differ(field, List(gv), List(wv));
    };
    if (differ("allowed", g.allowed() ? "true" : "false",
               w.allowed() ? "true" : "false") ||
        (g.reason() != w.reason() &&
         differ("reason", v1::Reason_Name(g.reason()),
                v1::Reason_Name(w.reason()))) ||
        (g.http_status() != w.http_status() &&
         differ("http_status", absl::StrCat(g.http_status()),
                absl::StrCat(w.http_status()))) ||
        differ("message", g.message(), w.message()) ||
        differ_list("missing_scopes", g.missing_scopes(), w.missing_scopes()) ||
        differ("key_id", g.key_id(), w.key_id()) ||
        differ("organization_id", g.organization_id(), w.organization_id()) ||
        differ("app_id", g.app_id(), w.app_id()) ||
        differ("matched_route", g.matched_route(), w.matched_route()) ||
        differ_list("redactions", g.redactions(), w.redactions())) {
      return true;
    }
    if (request.trace_id().empty() ? !IsUuidV4(g.trace_id())
                                   : g.trace_id() != request.trace_id()) {
      return disagree(
          "Authorize.trace_id", g.trace_id(),
          request.trace_id().empty() ? "a UUID v4" : request.trace_id());
    }
    if (g.revision() < last_write_) {
      return disagree("Authorize.revision", absl::StrCat(g.revision()),
                      absl::StrCat(">= ", last_write_));
    }
    return false;
  }

  Target& target_;
  PlayStats* stats_;
  const absl::Duration shift_;
  ReferenceModel model_;
  std::vector<std::string> key_ids_;               // by slot
  std::vector<std::vector<std::string>> secrets_;  // by slot, oldest first
  uint64_t last_write_ = 0;
  size_t step_ = 0;
  Disagreement found_;
};

}  // namespace

std::string Disagreement::Signature() const {
  if (absl::EndsWith(what, ".status")) {
    // The field an error names ("CODE: field[i]: ..."), indices dropped.
    std::string field;
    const size_t colon = target_answer.find(": ");
    if (colon != std::string::npos) {
      for (char c : target_answer.substr(colon + 2)) {
        if (c == ':' || c == ' ') break;
        if (!absl::ascii_isdigit(c)) field += c;
      }
    }
    return absl::StrCat(what, ": ", target_value, " (", field, ") vs ",
                        model_value);
  }
  if (what == "Authorize.reason" || what == "Authorize.allowed") {
    return absl::StrCat(what, ": ", target_value, " vs ", model_value);
  }
  return what;
}

std::optional<Disagreement> Play(const Scenario& scenario, Target& target,
                                 PlayStats* stats) {
  PlayStats ignored;
  return Player(target, stats != nullptr ? stats : &ignored).Run(scenario);
}

std::string Outcomes(const PlayStats& stats) {
  int64_t total = 0;
  for (int64_t n : stats.outcomes) total += n;
  std::string out;
  for (size_t k = 0; k < stats.outcomes.size(); ++k) {
    absl::StrAppend(&out, out.empty() ? "" : ", ",
                    k == 0 ? "INVALID_ARGUMENT"
                           : v1::Reason_Name(static_cast<v1::Reason>(k)),
                    " ",
                    absl::StrFormat("%.1f%%", 100.0 * stats.outcomes[k] /
                                                  std::max<int64_t>(total, 1)));
  }
  absl::StrAppend(&out, "; allowed with redactions ", stats.redacted);
  return out;
}

uint64_t ScenarioSeed(uint64_t run_seed, int64_t index) {
  // SplitMix64 of the pair: neighbouring runs share no scenario.
  uint64_t z = run_seed * 0x9E3779B97F4A7C15ULL + static_cast<uint64_t>(index);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

RunResult RunDifferential(const RunOptions& options,
                          const TargetFactory& factory) {
  return RunDifferential(
      options, [&](int64_t) -> const TargetFactory& { return factory; });
}

RunResult RunDifferential(
    const RunOptions& options,
    const std::function<const TargetFactory&(int64_t)>& factory_for) {
  RunResult result;
  const absl::Time start = absl::Now();
  for (int64_t i = 0;
       (options.max_scenarios <= 0 || i < options.max_scenarios) &&
       (options.max_decisions <= 0 || result.decisions < options.max_decisions);
       ++i) {
    const uint64_t seed = ScenarioSeed(options.seed, i);
    Scenario scenario = Generate(seed, options.generator);
    const TargetFactory& factory = factory_for(i);
    std::unique_ptr<Target> target = factory();
    PlayStats stats;
    std::optional<Disagreement> found = Play(scenario, *target, &stats);
    target.reset();
    ++result.scenarios;
    result.decisions += stats.decisions;
    result.operations += stats.operations;
    for (size_t k = 0; k < stats.outcomes.size(); ++k) {
      result.totals.outcomes[k] += stats.outcomes[k];
    }
    result.totals.redacted += stats.redacted;
    if (found.has_value()) {
      ++result.disagreements;
      if (static_cast<int>(result.reports.size()) < options.max_reports) {
        if (options.minimize) {
          scenario = Minimize(std::move(scenario), &*found, factory);
        }
        result.reports.push_back(FormatCase(scenario, *found));
        result.report_seeds.push_back(seed);
      }
      if (options.stop_at_first) break;
    }
    if (options.progress && options.progress_every > 0 &&
        result.scenarios % options.progress_every == 0) {
      options.progress(result.scenarios, result.decisions);
    }
  }
  result.elapsed = absl::Now() - start;
  return result;
}

}  // namespace scopekeeper::oracle
