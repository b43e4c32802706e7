// PolicySnapshot: an immutable, validated and compiled Policy. Scopes are
// interned to ids in declaration order, requirements to ScopeSets, each API's
// routes to a RouteTable. Shared (std::shared_ptr<const>) by every decision
// made while it is in force; thread-safe because immutable.
#ifndef SCOPEKEEPER_SERVER_POLICY_POLICY_H_
#define SCOPEKEEPER_SERVER_POLICY_POLICY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/scopekeeper/v1/scopekeeper.pb.h"
#include "server/policy/route_table.h"
#include "server/policy/scope_set.h"

namespace scopekeeper {

// Limits on a policy's size.
inline constexpr int kMaxPolicyScopes = 4096;
inline constexpr int kMaxPolicyApis = 64;  // ApiSet is a 64-bit mask
inline constexpr int kMaxRoutesPerApi = 4096;
inline constexpr int kMaxPolicyBundles = 1024;
inline constexpr int kMaxHostsPerApi = 64;

// A requirement with its scopes interned.
struct CompiledRequirement {
  ScopeSet all_of;
  ScopeSet any_of;  // empty = no any_of clause
  bool authenticated_only = false;
};

struct CompiledRedaction {
  std::string field;
  int unless_scope;
};

struct CompiledRoute {
  std::string matched_route;  // "METHOD template" as declared
  CompiledRequirement requirement;
  std::vector<CompiledRedaction> redactions;
};

struct CompiledApi {
  int index;  // position in Policy.apis: bit of the API in a key's ApiSet
  std::string name;
  std::string path_prefix;  // without a trailing '/'
  std::string key_prefix;
  std::vector<std::string> exact_hosts;        // Api.hosts without a '*'
  std::vector<std::string> wildcard_suffixes;  // "*.a.com" as ".a.com"
  RouteTable routes;
  std::vector<CompiledRoute> compiled_routes;  // by RouteTable route_index
};

class PolicySnapshot {
 public:
  // Compile() validates `policy` (names, declared scopes, route templates,
  // duplicates, limits) and compiles it. INVALID_ARGUMENT naming the
  // offending entry, e.g. `apis["management"].routes[3] "GET /x": ...`.
  static absl::StatusOr<std::shared_ptr<const PolicySnapshot>> Compile(
      const v1::Policy& policy, uint64_t generation);

  // Empty() is the policy in force before any PutPolicy: no scopes, no APIs.
  static std::shared_ptr<const PolicySnapshot> Empty();

  const v1::Policy& policy() const { return policy_; }
  // generation() is the revision at which this policy was put.
  uint64_t generation() const { return generation_; }

  // ScopeId() returns the interned id, or -1 for an undeclared scope.
  int ScopeId(absl::string_view name) const;
  const std::string& ScopeName(int id) const { return scope_names_[id]; }
  int num_scopes() const { return static_cast<int>(scope_names_.size()); }

  // FindApi() returns the API, or nullptr.
  const CompiledApi* FindApi(absl::string_view name) const;
  const std::vector<std::unique_ptr<CompiledApi>>& apis() const {
    return apis_;
  }

  // SelectApi() returns the API a request for `host` (Host or :authority; a
  // port, a trailing dot and letter case are ignored) and `path` (query
  // string allowed) is for, as Api.hosts documents: among the APIs whose
  // hosts match or that have none, and whose path_prefix the path is under,
  // the longest prefix wins, then an exact host over a wildcard over none.
  // nullptr when none matches or the best two tie.
  const CompiledApi* SelectApi(absl::string_view host,
                               absl::string_view path) const;

  // FindBundle() returns the bundle's scopes, or nullptr.
  const ScopeSet* FindBundle(absl::string_view name) const;

  // CompileRequirement() validates and interns a requirement; INVALID_ARGUMENT
  // naming `field` (e.g. "requirement.all_of[1]") when it is empty,
  // contradictory, or names a malformed or undeclared scope.
  absl::StatusOr<CompiledRequirement> CompileRequirement(
      const v1::Requirement& requirement, absl::string_view field) const;

  // ScopeNames() lists the names of `scopes` in policy order.
  std::vector<std::string> ScopeNames(const ScopeSet& scopes) const;

 private:
  PolicySnapshot() = default;

  v1::Policy policy_;
  uint64_t generation_ = 0;
  std::vector<std::string> scope_names_;
  absl::flat_hash_map<std::string, int> scope_ids_;
  std::vector<std::unique_ptr<CompiledApi>> apis_;
  absl::flat_hash_map<std::string, const CompiledApi*> apis_by_name_;
  absl::flat_hash_map<std::string, ScopeSet> bundles_;
};

// IsUnderPathPrefix() is true when `path` (query string allowed) starts with
// `prefix` (normalized: "" or "/a/b") at a segment boundary.
bool IsUnderPathPrefix(absl::string_view path, absl::string_view prefix);

// ParsePolicyJson() parses a Policy in the protobuf JSON mapping (unknown
// fields are errors). INVALID_ARGUMENT with the parser's message. Does not
// validate: use PolicySnapshot::Compile().
absl::StatusOr<v1::Policy> ParsePolicyJson(absl::string_view json);

// ReadPolicyFile() reads and parses a JSON Policy file; errors name the path.
absl::StatusOr<v1::Policy> ReadPolicyFile(const std::string& path);

// ValidateScopeList() checks a list of scope names from a request or a
// policy: at most kMaxScopesPerRequest, each well-formed and, unless
// `allow_undeclared`, declared by `policy`. INVALID_ARGUMENT naming
// `field`[i]. With `ids`, adds the ids of the declared ones to it.
absl::Status ValidateScopeList(
    const PolicySnapshot& policy,
    const google::protobuf::RepeatedPtrField<std::string>& names,
    absl::string_view field, bool allow_undeclared, ScopeSet* ids = nullptr);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_POLICY_POLICY_H_
