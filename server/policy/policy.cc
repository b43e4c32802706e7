#include "server/policy/policy.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/mutants.h"
#include "base/regular_file.h"
#include "base/status_macros.h"
#include "google/protobuf/util/json_util.h"
#include "server/policy/names.h"

namespace scopekeeper {
namespace {

absl::Status Prefixed(absl::string_view where, const absl::Status& s) {
  if (s.ok()) return s;
  return absl::Status(s.code(), absl::StrCat(where, ": ", s.message()));
}

// Path prefixes: "" or "/seg/seg" (a trailing '/' is dropped), a valid
// template without parameters.
absl::StatusOr<std::string> NormalizePathPrefix(absl::string_view prefix) {
  if (prefix.empty()) return std::string();
  SK_RETURN_IF_ERROR(ValidatePathTemplate(prefix));
  if (absl::StrContains(prefix, "{")) {
    return absl::InvalidArgumentError(absl::StrCat(
        "path prefix ", Quote(prefix), " must not have parameters"));
  }
  std::string out(prefix);
  if (out.size() > 1 && out.back() == '/') out.pop_back();
  if (out == "/") out.clear();
  return out;
}

// HostName() is the host of a Host header or :authority value, without the
// port and a trailing dot: "API.x.com:8443" -> "API.x.com", "[::1]:80" ->
// "[::1]".
absl::string_view HostName(absl::string_view host) {
  if (absl::StartsWith(host, "[")) {
    const size_t end = host.find(']');
    return end == absl::string_view::npos ? host : host.substr(0, end + 1);
  }
  const size_t colon = host.rfind(':');
  if (colon != absl::string_view::npos) host = host.substr(0, colon);
  if (absl::EndsWith(host, ".")) host.remove_suffix(1);
  return host;
}

// HostRank() is how specifically `api` claims `host`: 2 an exact host, 1 a
// wildcard, 0 when the API names no hosts, -1 when it names others.
int HostRank(const CompiledApi& api, absl::string_view host) {
  if (api.exact_hosts.empty() && api.wildcard_suffixes.empty()) return 0;
  for (const std::string& exact : api.exact_hosts) {
    if (absl::EqualsIgnoreCase(host, exact)) return 2;
  }
  for (const std::string& suffix : api.wildcard_suffixes) {
    if (host.size() > suffix.size() && absl::EndsWithIgnoreCase(host, suffix)) {
      return 1;
    }
  }
  return -1;
}

// CompileHosts() validates api.hosts into `out`; each (host, path_prefix)
// pair may name one API only (`claimed` maps it to that API's name).
absl::Status CompileHosts(
    const v1::Api& api, absl::string_view where,
    absl::flat_hash_map<std::string, std::string>* claimed, CompiledApi* out) {
  if (api.hosts_size() > kMaxHostsPerApi) {
    return absl::InvalidArgumentError(
        absl::StrCat(where, ".hosts: more than ", kMaxHostsPerApi, " hosts"));
  }
  for (int h = 0; h < api.hosts_size(); ++h) {
    const std::string& host = api.hosts(h);
    const std::string field = absl::StrCat(where, ".hosts[", h, "]");
    SK_RETURN_IF_ERROR(ValidateHostName(field, host));
    const auto [it, inserted] =
        claimed->emplace(absl::StrCat(host, " ", out->path_prefix), api.name());
    if (!inserted) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": host ", Quote(host), " with path_prefix ",
          Quote(out->path_prefix), " already selects API ", Quote(it->second)));
    }
    if (absl::StartsWith(host, "*.")) {
      out->wildcard_suffixes.push_back(host.substr(1));
    } else {
      out->exact_hosts.push_back(host);
    }
  }
  return absl::OkStatus();
}

}  // namespace

bool IsUnderPathPrefix(absl::string_view path, absl::string_view prefix) {
  if (!absl::StartsWith(path, prefix)) return false;
  return path.size() == prefix.size() || prefix.empty() ||
         path[prefix.size()] == '/' || path[prefix.size()] == '?' ||
         SK_MUTANT(kPrefixNotAtBoundary);  // "/v1/apix" under "/v1/api"
}

std::shared_ptr<const PolicySnapshot> PolicySnapshot::Empty() {
  static const auto* empty = new std::shared_ptr<const PolicySnapshot>(
      std::shared_ptr<const PolicySnapshot>(new PolicySnapshot()));
  return *empty;
}

absl::StatusOr<std::shared_ptr<const PolicySnapshot>> PolicySnapshot::Compile(
    const v1::Policy& policy, uint64_t generation) {
  std::shared_ptr<PolicySnapshot> snap(new PolicySnapshot());
  snap->policy_ = policy;
  snap->generation_ = generation;

  if (policy.scopes_size() > kMaxPolicyScopes) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy.scopes: more than ", kMaxPolicyScopes, " scopes"));
  }
  for (int i = 0; i < policy.scopes_size(); ++i) {
    const v1::ScopeDefinition& def = policy.scopes(i);
    const std::string field = absl::StrCat("policy.scopes[", i, "]");
    SK_RETURN_IF_ERROR(
        ValidateScopeName(absl::StrCat(field, ".name"), def.name()));
    SK_RETURN_IF_ERROR(
        ValidateText(absl::StrCat(field, ".description"), def.description()));
    if (!snap->scope_ids_.emplace(def.name(), i).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": scope ", Quote(def.name()), " declared twice"));
    }
    snap->scope_names_.push_back(def.name());
  }

  if (policy.bundles_size() > kMaxPolicyBundles) {
    return absl::InvalidArgumentError(absl::StrCat(
        "policy.bundles: more than ", kMaxPolicyBundles, " bundles"));
  }
  for (int i = 0; i < policy.bundles_size(); ++i) {
    const v1::Bundle& bundle = policy.bundles(i);
    const std::string field = absl::StrCat("policy.bundles[", i, "]");
    SK_RETURN_IF_ERROR(
        ValidateScopeName(absl::StrCat(field, ".name"), bundle.name()));
    SK_RETURN_IF_ERROR(ValidateText(absl::StrCat(field, ".description"),
                                    bundle.description()));
    ScopeSet scopes;
    SK_RETURN_IF_ERROR(ValidateScopeList(
        *snap, bundle.scopes(),
        absl::StrCat("policy.bundles[\"", bundle.name(), "\"].scopes"),
        /*allow_undeclared=*/false, &scopes));
    if (!snap->bundles_.emplace(bundle.name(), std::move(scopes)).second) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": bundle ", Quote(bundle.name()), " declared twice"));
    }
  }

  if (policy.apis_size() > kMaxPolicyApis) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy.apis: more than ", kMaxPolicyApis, " APIs"));
  }
  // "host path_prefix" -> the API it selects.
  absl::flat_hash_map<std::string, std::string> claimed_hosts;
  for (int a = 0; a < policy.apis_size(); ++a) {
    const v1::Api& api = policy.apis(a);
    SK_RETURN_IF_ERROR(
        ValidateApiName(absl::StrCat("policy.apis[", a, "].name"), api.name()));
    const std::string where = absl::StrCat("policy.apis[\"", api.name(), "\"]");
    SK_RETURN_IF_ERROR(
        ValidateText(absl::StrCat(where, ".description"), api.description()));
    if (!api.key_prefix().empty()) {
      SK_RETURN_IF_ERROR(ValidateKeyPrefix(absl::StrCat(where, ".key_prefix"),
                                           api.key_prefix()));
    }
    auto compiled = std::make_unique<CompiledApi>();
    compiled->index = a;
    compiled->name = api.name();
    compiled->key_prefix = api.key_prefix();
    absl::StatusOr<std::string> prefix = NormalizePathPrefix(api.path_prefix());
    SK_RETURN_IF_ERROR(
        Prefixed(absl::StrCat(where, ".path_prefix"), prefix.status()));
    compiled->path_prefix = *std::move(prefix);
    SK_RETURN_IF_ERROR(
        CompileHosts(api, where, &claimed_hosts, compiled.get()));

    if (api.routes_size() > kMaxRoutesPerApi) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ".routes: more than ", kMaxRoutesPerApi, " routes"));
    }
    std::vector<RouteTable::RouteSpec> specs;
    for (int r = 0; r < api.routes_size(); ++r) {
      const v1::Route& route = api.routes(r);
      const std::string rfield =
          absl::StrCat(where, ".routes[", r, "] ",
                       Quote(absl::StrCat(route.method(), " ", route.path())));
      absl::StatusOr<HttpMethod> method = ParseHttpMethod(route.method());
      SK_RETURN_IF_ERROR(Prefixed(rfield, method.status()));
      SK_RETURN_IF_ERROR(Prefixed(rfield, ValidatePathTemplate(route.path())));
      SK_RETURN_IF_ERROR(ValidateText(absl::StrCat(rfield, ".description"),
                                      route.description()));
      CompiledRoute cr;
      cr.matched_route =
          absl::StrCat(HttpMethodName(*method), " ", route.path());
      absl::StatusOr<CompiledRequirement> req = snap->CompileRequirement(
          route.requirement(), absl::StrCat(rfield, ".requirement"));
      if (!req.ok()) return req.status();
      cr.requirement = *std::move(req);
      for (int x = 0; x < route.redactions_size(); ++x) {
        const v1::Redaction& red = route.redactions(x);
        const std::string xfield = absl::StrCat(rfield, ".redactions[", x, "]");
        SK_RETURN_IF_ERROR(
            ValidateId(absl::StrCat(xfield, ".field"), red.field()));
        SK_RETURN_IF_ERROR(ValidateScopeName(
            absl::StrCat(xfield, ".unless_scope"), red.unless_scope()));
        const int id = snap->ScopeId(red.unless_scope());
        if (id < 0) {
          return absl::InvalidArgumentError(
              absl::StrCat(xfield, ".unless_scope: undeclared scope ",
                           Quote(red.unless_scope())));
        }
        cr.redactions.push_back({red.field(), id});
      }
      compiled->compiled_routes.push_back(std::move(cr));
      specs.push_back({*method, route.path(), r});
    }
    absl::StatusOr<RouteTable> table = RouteTable::Build(std::move(specs));
    SK_RETURN_IF_ERROR(
        Prefixed(absl::StrCat(where, ".routes"), table.status()));
    compiled->routes = *std::move(table);
    if (!snap->apis_by_name_.emplace(api.name(), compiled.get()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(where, ": API declared twice"));
    }
    snap->apis_.push_back(std::move(compiled));
  }
  return std::shared_ptr<const PolicySnapshot>(std::move(snap));
}

int PolicySnapshot::ScopeId(absl::string_view name) const {
  auto it = scope_ids_.find(name);
  return it == scope_ids_.end() ? -1 : it->second;
}

const CompiledApi* PolicySnapshot::FindApi(absl::string_view name) const {
  auto it = apis_by_name_.find(name);
  return it == apis_by_name_.end() ? nullptr : it->second;
}

const CompiledApi* PolicySnapshot::SelectApi(absl::string_view host,
                                             absl::string_view path) const {
  host = HostName(host);
  const CompiledApi* best = nullptr;
  size_t best_prefix = 0;
  int best_rank = -1;
  bool tie = false;
  for (const std::unique_ptr<CompiledApi>& api : apis_) {
    const int rank = HostRank(*api, host);
    if (rank < 0 || !IsUnderPathPrefix(path, api->path_prefix)) continue;
    const size_t prefix = api->path_prefix.size();
    if (best == nullptr || prefix > best_prefix ||
        (prefix == best_prefix && rank > best_rank)) {
      best = api.get();
      best_prefix = prefix;
      best_rank = rank;
      tie = false;
    } else if (prefix == best_prefix && rank == best_rank) {
      tie = true;
    }
  }
  return tie ? nullptr : best;
}

const ScopeSet* PolicySnapshot::FindBundle(absl::string_view name) const {
  auto it = bundles_.find(name);
  return it == bundles_.end() ? nullptr : &it->second;
}

absl::StatusOr<CompiledRequirement> PolicySnapshot::CompileRequirement(
    const v1::Requirement& requirement, absl::string_view field) const {
  CompiledRequirement out;
  out.authenticated_only = requirement.authenticated_only();
  const bool has_scopes =
      requirement.all_of_size() > 0 || requirement.any_of_size() > 0;
  if (out.authenticated_only && has_scopes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": authenticated_only with all_of/any_of scopes"));
  }
  if (!out.authenticated_only && !has_scopes) {
    return absl::InvalidArgumentError(absl::StrCat(
        field,
        ": empty requirement (set all_of, any_of or authenticated_only)"));
  }
  SK_RETURN_IF_ERROR(ValidateScopeList(
      *this, requirement.all_of(), absl::StrCat(field, ".all_of"),
      /*allow_undeclared=*/false, &out.all_of));
  SK_RETURN_IF_ERROR(ValidateScopeList(
      *this, requirement.any_of(), absl::StrCat(field, ".any_of"),
      /*allow_undeclared=*/false, &out.any_of));
  return out;
}

std::vector<std::string> PolicySnapshot::ScopeNames(
    const ScopeSet& scopes) const {
  std::vector<std::string> out;
  scopes.ForEach([&](int id) { out.push_back(scope_names_[id]); });
  return out;
}

absl::StatusOr<v1::Policy> ParsePolicyJson(absl::string_view json) {
  v1::Policy policy;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = false;
  const auto status = google::protobuf::util::JsonStringToMessage(
      google::protobuf::StringPiece(json.data(), json.size()), &policy,
      options);
  if (!status.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy JSON: ", status.message().as_string()));
  }
  return policy;
}

absl::StatusOr<v1::Policy> ReadPolicyFile(const std::string& path) {
  // A regular file only: a FIFO would hang the start.
  absl::StatusOr<RegularFile> file = ReadRegularFile("--policy_file", path);
  if (!file.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "cannot read policy file ", path, ": ", file.status().message()));
  }
  absl::StatusOr<v1::Policy> policy = ParsePolicyJson(file->content);
  if (!policy.ok()) return Prefixed(path, policy.status());
  return policy;
}

absl::Status ValidateScopeList(
    const PolicySnapshot& policy,
    const google::protobuf::RepeatedPtrField<std::string>& names,
    absl::string_view field, bool allow_undeclared, ScopeSet* ids) {
  if (names.size() > static_cast<int>(kMaxScopesPerRequest)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": more than ", kMaxScopesPerRequest, " scopes"));
  }
  for (int i = 0; i < names.size(); ++i) {
    const std::string item = absl::StrCat(field, "[", i, "]");
    SK_RETURN_IF_ERROR(ValidateScopeName(item, names[i]));
    const int id = policy.ScopeId(names[i]);
    if (id < 0 && !allow_undeclared) {
      return absl::InvalidArgumentError(
          absl::StrCat(item, ": undeclared scope ", Quote(names[i])));
    }
    if (id >= 0 && ids != nullptr) ids->Add(id);
  }
  return absl::OkStatus();
}

}  // namespace scopekeeper
