// ReferenceModel: Scopekeeper's decision semantics as plain, slow,
// obviously-correct code, written from DESIGN.md ("Domain" and "Semantics in
// detail") and docs/API.md, not from the engine. It is the oracle of the
// differential tests: the engine and the model get the same admin operations
// and requests, and every field the contract fixes must agree.
//
// The model holds its own state (the policy, key records, apps,
// installations, the time) and keeps it in the simplest form: scopes by
// name, routes as declared, every decision recomputed from scratch (no
// caches, no interning, no indexes). Values the server generates (key ids,
// secrets, installation ids) are handed in by the caller.
//
// Where DESIGN.md leaves a choice open the model follows docs/API.md
// ("Semantics in detail"); each such place is marked "Decided:".
//
// Not thread-safe.
#ifndef SCOPEKEEPER_TESTS_ORACLE_REFERENCE_MODEL_H_
#define SCOPEKEEPER_TESTS_ORACLE_REFERENCE_MODEL_H_

#include <map>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "proto/scopekeeper/v1/scopekeeper.pb.h"

namespace scopekeeper::oracle {

class ReferenceModel {
 public:
  // What the contract says about one Authorize call: the status code and,
  // when it is OK, the decision (revision and generated trace ids excluded:
  // the differential test checks those itself).
  struct Decision {
    absl::StatusCode code = absl::StatusCode::kOk;
    v1::AuthorizeResponse response;
  };

  void SetNow(absl::Time now) { now_ = now; }
  absl::Time now() const { return now_; }

  // Admin operations. Each returns the status code the contract gives the
  // request in the current state and, when that is OK, applies it, using
  // the values the server generated (key id, secret, installation id).
  absl::StatusCode PutPolicy(const v1::Policy& policy);
  absl::StatusCode CreateKey(const v1::CreateKeyRequest& request,
                             const std::string& key_id,
                             const std::string& secret);
  absl::StatusCode GrantScopes(const v1::GrantScopesRequest& request);
  absl::StatusCode RevokeScopes(const v1::RevokeScopesRequest& request);
  absl::StatusCode RevokeKey(const v1::RevokeKeyRequest& request);
  absl::StatusCode RotateKey(const v1::RotateKeyRequest& request,
                             const std::string& new_secret);
  absl::StatusCode PutApp(const v1::PutAppRequest& request);
  absl::StatusCode ApproveInstallation(
      const v1::ApproveInstallationRequest& request,
      const std::string& installation_id);

  // Authorize() decides `request` as the contract says.
  Decision Authorize(const v1::AuthorizeRequest& request) const;

  // EffectiveScopes() is Key.effective_scopes of a key: in policy order.
  std::vector<std::string> EffectiveScopes(const std::string& key_id) const;
  // SecretPrefix() is the prefix of the secret CreateKey issues: the first
  // API's key_prefix, "sk" when it has none.
  std::string SecretPrefix(const v1::CreateKeyRequest& request) const;
  // InstallationId() is the id of the organization's installation of the
  // app, empty when there is none.
  std::string InstallationId(const std::string& organization_id,
                             const std::string& app_id) const;

 private:
  struct KeyState {
    std::string organization_id;
    std::vector<std::string> apis;
    std::map<std::string, std::optional<absl::Time>> grants;  // scope: until
    std::set<std::string> bundles;
    std::string installation_id;
    std::optional<absl::Time> expire_time;
    bool revoked = false;
    std::string secret;
    std::vector<std::pair<std::string, absl::Time>> old_secrets;  // until
  };
  struct InstallationState {
    std::string organization_id;
    std::string app_id;
    std::set<std::string> approved;
  };

  bool Declared(const std::string& scope) const;
  const v1::Api* FindApi(const std::string& name) const;
  bool Expired(const KeyState& key) const;
  // FindKey() returns the key a presented secret authenticates, or null.
  const std::pair<const std::string, KeyState>* FindKey(
      const std::string& secret) const;
  std::set<std::string> Effective(const KeyState& key) const;
  // InPolicyOrder() keeps the scopes of `scopes` for which `keep` holds, in
  // the order the policy declares them.
  template <typename Keep>
  std::vector<std::string> InPolicyOrder(
      const google::protobuf::RepeatedPtrField<std::string>& scopes,
      Keep keep) const;
  absl::StatusCode CheckRequirement(const v1::Requirement& r) const;
  absl::StatusCode CheckPolicy(const v1::Policy& policy) const;

  absl::Time now_;
  v1::Policy policy_;
  std::map<std::string, KeyState> keys_;                    // by key_id
  std::map<std::string, v1::App> apps_;                     // by app_id
  std::map<std::string, InstallationState> installations_;  // by id
};

// Route matching, exposed for the model's own tests.
//
// MatchRoute() returns the route of `api` that `method` and `path` (the
// request's, prefix and query included) select, or null: ROUTE_NOT_FOUND.
const v1::Route* MatchRoute(const v1::Api& api, const std::string& method,
                            const std::string& path);
// Segments() splits a route template or a request path (prefix and query
// already gone) into segments, the trailing slash dropped; nullopt when the
// path is not absolute or has an empty, "." or ".." segment.
std::optional<std::vector<std::string>> Segments(const std::string& path);

}  // namespace scopekeeper::oracle

#endif  // SCOPEKEEPER_TESTS_ORACLE_REFERENCE_MODEL_H_
