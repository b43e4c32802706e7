#include "tests/oracle/reference_model.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace scopekeeper::oracle {
namespace {

using Code = absl::StatusCode;

constexpr char kInvalidKeyMessage[] = "Invalid or expired API key";

absl::Time ToTime(const google::protobuf::Timestamp& t) {
  return absl::FromUnixSeconds(t.seconds()) + absl::Nanoseconds(t.nanos());
}

// ^[a-z][a-z0-9_.:-]{0,127}$
bool IsScopeName(const std::string& s) {
  if (s.empty() || s.size() > 128 || s[0] < 'a' || s[0] > 'z') return false;
  for (char c : s) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) &&
        !absl::StrContains("_.:-", c)) {
      return false;
    }
  }
  return true;
}

// Identifiers (organization, trace ids): 1..128 of [A-Za-z0-9_.:-].
bool IsId(const std::string& s) {
  if (s.empty() || s.size() > 128) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && !absl::StrContains("_.:-", c)) return false;
  }
  return true;
}

bool IsMethod(const std::string& upper) {
  for (const char* m : {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}) {
    if (upper == m) return true;
  }
  return false;
}

bool IsParam(const std::string& segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

template <typename Container>
bool Contains(const Container& c, const std::string& s) {
  return std::find(c.begin(), c.end(), s) != c.end();
}

// LiteralFirst() is true when template `a` beats template `b`: at the first
// position where one has a literal and the other a {param}, `a` has the
// literal.
bool LiteralFirst(const std::vector<std::string>& a,
                  const std::vector<std::string>& b) {
  for (size_t i = 0; i < a.size() && i < b.size(); ++i) {
    if (IsParam(a[i]) != IsParam(b[i])) return !IsParam(a[i]);
  }
  return false;
}

// The shape of a route: two routes with one shape are duplicates (trailing
// slash and parameter names do not count).
std::string Shape(const v1::Route& route) {
  std::string shape = absl::AsciiStrToUpper(route.method());
  for (const std::string& s :
       Segments(route.path()).value_or(std::vector<std::string>{"<invalid>"})) {
    shape += "/" + (IsParam(s) ? std::string("{}") : s);
  }
  return shape;
}

}  // namespace

std::optional<std::vector<std::string>> Segments(const std::string& path) {
  if (path == "/") return std::vector<std::string>{};
  if (path.empty() || path[0] != '/') return std::nullopt;
  std::string body = path.substr(1);
  if (!body.empty() && body.back() == '/') body.pop_back();
  std::vector<std::string> segments = absl::StrSplit(body, '/');
  for (const std::string& s : segments) {
    if (s.empty() || s == "." || s == "..") return std::nullopt;
  }
  return segments;
}

const v1::Route* MatchRoute(const v1::Api& api, const std::string& method,
                            const std::string& request_path) {
  std::string path = request_path.substr(0, request_path.find('?'));
  // Decided: a trailing slash of the prefix does not count ("/" = none).
  std::string prefix = api.path_prefix();
  if (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  if (!prefix.empty()) {
    // The prefix ends at a segment boundary. Decided: the prefix alone is the
    // API's root.
    if (path == prefix) {
      path = "/";
    } else if (absl::StartsWith(path, prefix + "/")) {
      path = path.substr(prefix.size());
    } else {
      return nullptr;
    }
  }
  const std::optional<std::vector<std::string>> segments = Segments(path);
  if (!segments) return nullptr;
  const v1::Route* best = nullptr;
  std::vector<std::string> best_template;
  for (const v1::Route& route : api.routes()) {
    // Decided: route methods are case-insensitive too.
    if (absl::AsciiStrToUpper(route.method()) !=
        absl::AsciiStrToUpper(method)) {
      continue;
    }
    const std::vector<std::string> t = *Segments(route.path());
    if (t.size() != segments->size()) continue;
    bool matches = true;
    for (size_t i = 0; i < t.size(); ++i) {
      if (!IsParam(t[i]) && t[i] != (*segments)[i]) matches = false;
    }
    if (matches && (best == nullptr || LiteralFirst(t, best_template))) {
      best = &route;
      best_template = t;
    }
  }
  return best;
}

bool ReferenceModel::Declared(const std::string& scope) const {
  for (const v1::ScopeDefinition& s : policy_.scopes()) {
    if (s.name() == scope) return true;
  }
  return false;
}

const v1::Api* ReferenceModel::FindApi(const std::string& name) const {
  for (const v1::Api& api : policy_.apis()) {
    if (api.name() == name) return &api;
  }
  return nullptr;
}

bool ReferenceModel::Expired(const KeyState& key) const {
  // Decided: a key expires at its expire_time (the instant itself counts).
  return key.expire_time.has_value() && now_ >= *key.expire_time;
}

const std::pair<const std::string, ReferenceModel::KeyState>*
ReferenceModel::FindKey(const std::string& secret) const {
  for (const auto& entry : keys_) {
    const KeyState& key = entry.second;
    if (key.secret == secret) return &entry;
    for (const auto& [old_secret, until] : key.old_secrets) {
      if (old_secret == secret && now_ < until) return &entry;
    }
  }
  return nullptr;
}

std::set<std::string> ReferenceModel::Effective(const KeyState& key) const {
  std::set<std::string> scopes;
  for (const auto& [scope, until] : key.grants) {
    if (!until.has_value() || now_ < *until) scopes.insert(scope);
  }
  for (const v1::Bundle& bundle : policy_.bundles()) {
    if (key.bundles.count(bundle.name()) == 0) continue;
    scopes.insert(bundle.scopes().begin(), bundle.scopes().end());
  }
  if (!key.installation_id.empty()) {
    const InstallationState& inst = installations_.at(key.installation_id);
    for (const std::string& s : apps_.at(inst.app_id).requested_scopes()) {
      if (inst.approved.count(s) > 0) scopes.insert(s);
    }
  }
  std::set<std::string> declared;
  for (const std::string& s : scopes) {
    if (Declared(s)) declared.insert(s);
  }
  return declared;
}

template <typename Keep>
std::vector<std::string> ReferenceModel::InPolicyOrder(
    const google::protobuf::RepeatedPtrField<std::string>& scopes,
    Keep keep) const {
  std::vector<std::string> out;
  for (const v1::ScopeDefinition& s : policy_.scopes()) {
    if (Contains(scopes, s.name()) && keep(s.name())) out.push_back(s.name());
  }
  return out;
}

absl::StatusCode ReferenceModel::CheckRequirement(
    const v1::Requirement& r) const {
  const bool has_scopes = r.all_of_size() > 0 || r.any_of_size() > 0;
  if (has_scopes == r.authenticated_only()) return Code::kInvalidArgument;
  for (const auto* list : {&r.all_of(), &r.any_of()}) {
    for (const std::string& s : *list) {
      if (!IsScopeName(s) || !Declared(s)) return Code::kInvalidArgument;
    }
  }
  return Code::kOk;
}

absl::StatusCode ReferenceModel::CheckPolicy(const v1::Policy& policy) const {
  ReferenceModel next;  // checks names against the new policy
  next.policy_ = policy;
  for (const v1::Bundle& b : policy.bundles()) {
    for (const std::string& s : b.scopes()) {
      if (!next.Declared(s)) return Code::kInvalidArgument;
    }
  }
  for (const v1::Api& api : policy.apis()) {
    const auto prefix = Segments(api.path_prefix());
    if (!api.path_prefix().empty() &&
        (!prefix || std::any_of(prefix->begin(), prefix->end(), IsParam))) {
      return Code::kInvalidArgument;
    }
    std::set<std::string> shapes;
    for (const v1::Route& route : api.routes()) {
      if (!IsMethod(absl::AsciiStrToUpper(route.method())) ||
          !Segments(route.path()) || !shapes.insert(Shape(route)).second ||
          next.CheckRequirement(route.requirement()) != Code::kOk) {
        return Code::kInvalidArgument;
      }
      for (const v1::Redaction& r : route.redactions()) {
        if (!next.Declared(r.unless_scope())) return Code::kInvalidArgument;
      }
    }
  }
  return Code::kOk;
}

absl::StatusCode ReferenceModel::PutPolicy(const v1::Policy& policy) {
  const Code code = CheckPolicy(policy);
  if (code == Code::kOk) policy_ = policy;
  return code;
}

absl::StatusCode ReferenceModel::CreateKey(const v1::CreateKeyRequest& request,
                                           const std::string& key_id,
                                           const std::string& secret) {
  for (const std::string& api : request.apis()) {
    if (FindApi(api) == nullptr) return Code::kInvalidArgument;
  }
  for (const std::string& s : request.scopes()) {
    if (!Declared(s)) return Code::kInvalidArgument;
  }
  for (const std::string& b : request.bundles()) {
    bool found = false;
    for (const v1::Bundle& bundle : policy_.bundles()) {
      found = found || bundle.name() == b;
    }
    if (!found) return Code::kInvalidArgument;
  }
  if (!request.installation_id().empty()) {
    auto it = installations_.find(request.installation_id());
    if (it == installations_.end()) return Code::kNotFound;
    if (it->second.organization_id != request.organization_id()) {
      return Code::kInvalidArgument;
    }
  }
  if (request.has_expire_time() && ToTime(request.expire_time()) <= now_) {
    return Code::kInvalidArgument;
  }
  KeyState& key = keys_[key_id];
  key.organization_id = request.organization_id();
  key.apis.assign(request.apis().begin(), request.apis().end());
  for (const std::string& s : request.scopes()) key.grants[s] = std::nullopt;
  key.bundles.insert(request.bundles().begin(), request.bundles().end());
  key.installation_id = request.installation_id();
  if (request.has_expire_time())
    key.expire_time = ToTime(request.expire_time());
  key.secret = secret;
  return Code::kOk;
}

absl::StatusCode ReferenceModel::GrantScopes(
    const v1::GrantScopesRequest& request) {
  // Decided: like a key's, a grant's expire_time must be in the future.
  if (request.has_expire_time() && ToTime(request.expire_time()) <= now_) {
    return Code::kInvalidArgument;
  }
  auto it = keys_.find(request.key_id());
  if (it == keys_.end()) return Code::kNotFound;
  KeyState& key = it->second;
  for (const std::string& s : request.scopes()) {
    if (!Declared(s)) return Code::kInvalidArgument;
  }
  for (const std::string& b : request.bundles()) {
    bool found = false;
    for (const v1::Bundle& bundle : policy_.bundles()) {
      found = found || bundle.name() == b;
    }
    if (!found) return Code::kInvalidArgument;
  }
  if (key.revoked || Expired(key)) return Code::kFailedPrecondition;
  std::optional<absl::Time> until;
  if (request.has_expire_time()) until = ToTime(request.expire_time());
  for (const std::string& s : request.scopes()) key.grants[s] = until;
  key.bundles.insert(request.bundles().begin(), request.bundles().end());
  return Code::kOk;
}

absl::StatusCode ReferenceModel::RevokeScopes(
    const v1::RevokeScopesRequest& request) {
  auto it = keys_.find(request.key_id());
  if (it == keys_.end()) return Code::kNotFound;
  KeyState& key = it->second;
  if (key.revoked) return Code::kFailedPrecondition;
  for (const std::string& s : request.scopes()) key.grants.erase(s);
  for (const std::string& b : request.bundles()) key.bundles.erase(b);
  return Code::kOk;
}

absl::StatusCode ReferenceModel::RevokeKey(
    const v1::RevokeKeyRequest& request) {
  auto it = keys_.find(request.key_id());
  if (it == keys_.end()) return Code::kNotFound;
  it->second.revoked = true;
  return Code::kOk;
}

absl::StatusCode ReferenceModel::RotateKey(const v1::RotateKeyRequest& request,
                                           const std::string& new_secret) {
  auto it = keys_.find(request.key_id());
  if (it == keys_.end()) return Code::kNotFound;
  KeyState& key = it->second;
  const absl::Duration grace =
      absl::Seconds(request.grace_period().seconds()) +
      absl::Nanoseconds(request.grace_period().nanos());
  if (grace < absl::ZeroDuration()) return Code::kInvalidArgument;
  if (key.revoked || Expired(key)) return Code::kFailedPrecondition;
  // Decided: a rotation's grace period bounds every old secret, so rotating
  // without one ends them all at once.
  for (auto& [old_secret, until] : key.old_secrets) {
    until = std::min(until, now_ + grace);
  }
  key.old_secrets.emplace_back(key.secret, now_ + grace);
  key.secret = new_secret;
  return Code::kOk;
}

absl::StatusCode ReferenceModel::PutApp(const v1::PutAppRequest& request) {
  for (const std::string& s : request.app().requested_scopes()) {
    if (!Declared(s)) return Code::kInvalidArgument;
  }
  apps_[request.app().app_id()] = request.app();
  return Code::kOk;
}

absl::StatusCode ReferenceModel::ApproveInstallation(
    const v1::ApproveInstallationRequest& request,
    const std::string& installation_id) {
  // Names are checked before the app is looked up (as in CreateKey, the
  // engine's precedence of two errors; not part of the contract).
  for (const std::string& s : request.approved_scopes()) {
    if (!Declared(s)) return Code::kInvalidArgument;
  }
  auto app = apps_.find(request.app_id());
  if (app == apps_.end()) return Code::kNotFound;
  for (const std::string& s : request.approved_scopes()) {
    if (!Contains(app->second.requested_scopes(), s)) {
      return Code::kInvalidArgument;
    }
  }
  InstallationState* inst = nullptr;
  for (auto& [id, i] : installations_) {
    if (i.organization_id == request.organization_id() &&
        i.app_id == request.app_id()) {
      inst = &i;
    }
  }
  if (inst == nullptr) {
    inst = &installations_[installation_id];
    inst->organization_id = request.organization_id();
    inst->app_id = request.app_id();
  }
  inst->approved = std::set<std::string>(request.approved_scopes().begin(),
                                         request.approved_scopes().end());
  return Code::kOk;
}

ReferenceModel::Decision ReferenceModel::Authorize(
    const v1::AuthorizeRequest& request) const {
  Decision d;
  v1::AuthorizeResponse& r = d.response;
  // A wrong request is INVALID_ARGUMENT, before the key is looked at.
  if ((!request.organization_id().empty() &&
       !IsId(request.organization_id())) ||
      (!request.trace_id().empty() && !IsId(request.trace_id()))) {
    d.code = Code::kInvalidArgument;
    return d;
  }
  const v1::Api* api = nullptr;
  switch (request.target_case()) {
    case v1::AuthorizeRequest::TARGET_NOT_SET:
      d.code = Code::kInvalidArgument;
      return d;
    case v1::AuthorizeRequest::kRequirement:
      d.code = CheckRequirement(request.requirement());
      if (d.code != Code::kOk) return d;
      break;
    case v1::AuthorizeRequest::kHttp:
      api = FindApi(request.http().api());
      // Decided: an empty path is a wrong request, not a missing route.
      if (api == nullptr ||
          !IsMethod(absl::AsciiStrToUpper(request.http().method())) ||
          request.http().path().empty()) {
        d.code = Code::kInvalidArgument;
        return d;
      }
      break;
  }
  r.set_trace_id(request.trace_id());
  auto answer = [&](v1::Reason reason, int http_status, std::string message) {
    r.set_reason(reason);
    r.set_http_status(http_status);
    r.set_message(std::move(message));
    return d;
  };

  // Key, organization, API, route, scopes.
  const auto* found = FindKey(request.api_key());
  if (found == nullptr) return answer(v1::KEY_INVALID, 401, kInvalidKeyMessage);
  const KeyState& key = found->second;
  r.set_key_id(found->first);
  r.set_organization_id(key.organization_id);
  if (!key.installation_id.empty()) {
    r.set_app_id(installations_.at(key.installation_id).app_id);
  }
  if (key.revoked) return answer(v1::KEY_REVOKED, 401, kInvalidKeyMessage);
  if (Expired(key)) return answer(v1::KEY_EXPIRED, 401, kInvalidKeyMessage);
  if (!request.organization_id().empty() &&
      request.organization_id() != key.organization_id) {
    return answer(v1::ORGANIZATION_MISMATCH, 403,
                  "API key is not valid for this organization");
  }
  const v1::Requirement* requirement = &request.requirement();
  const v1::Route* route = nullptr;
  if (api != nullptr) {
    if (!Contains(key.apis, api->name())) {
      return answer(v1::WRONG_API, 403, "API key is not valid for this API");
    }
    route = MatchRoute(*api, request.http().method(), request.http().path());
    if (route == nullptr) return answer(v1::ROUTE_NOT_FOUND, 404, "Not found");
    // Decided: the method in its canonical (upper) case.
    r.set_matched_route(absl::AsciiStrToUpper(route->method()) + " " +
                        route->path());
    requirement = &route->requirement();
  }

  const std::set<std::string> held = Effective(key);
  auto missing = [&](const std::string& s) { return held.count(s) == 0; };
  const std::vector<std::string> missing_all =
      InPolicyOrder(requirement->all_of(), missing);
  bool any_held = requirement->any_of_size() == 0;
  for (const std::string& s : requirement->any_of()) {
    any_held = any_held || !missing(s);
  }
  if (!missing_all.empty() || !any_held) {
    std::string message = "Insufficient scope. Required";
    for (const std::string& s : missing_all) r.add_missing_scopes(s);
    if (!missing_all.empty())
      message += ": " + absl::StrJoin(missing_all, ", ");
    if (!any_held) {
      const std::vector<std::string> any =
          InPolicyOrder(requirement->any_of(), [](auto&) { return true; });
      for (const std::string& s : any) r.add_missing_scopes(s);
      message += (missing_all.empty() ? " one of: " : " and one of: ") +
                 absl::StrJoin(any, ", ");
    }
    return answer(v1::INSUFFICIENT_SCOPE, 403, message);
  }
  if (route != nullptr) {
    for (const v1::Redaction& redaction : route->redactions()) {
      if (missing(redaction.unless_scope())) {
        r.add_redactions(redaction.field());
      }
    }
  }
  r.set_allowed(true);
  return answer(v1::ALLOWED, 200, "");
}

std::vector<std::string> ReferenceModel::EffectiveScopes(
    const std::string& key_id) const {
  auto it = keys_.find(key_id);
  if (it == keys_.end()) return {};
  const std::set<std::string> held = Effective(it->second);
  std::vector<std::string> out;
  for (const v1::ScopeDefinition& s : policy_.scopes()) {
    if (held.count(s.name()) > 0) out.push_back(s.name());
  }
  return out;
}

std::string ReferenceModel::SecretPrefix(
    const v1::CreateKeyRequest& request) const {
  const v1::Api* api =
      request.apis_size() > 0 ? FindApi(request.apis(0)) : nullptr;
  return api != nullptr && !api->key_prefix().empty() ? api->key_prefix()
                                                      : "sk";
}

std::string ReferenceModel::InstallationId(const std::string& organization_id,
                                           const std::string& app_id) const {
  for (const auto& [id, inst] : installations_) {
    if (inst.organization_id == organization_id && inst.app_id == app_id) {
      return id;
    }
  }
  return "";
}

}  // namespace scopekeeper::oracle
