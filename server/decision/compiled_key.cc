#include "server/decision/compiled_key.h"

#include <cstdint>
#include <cstdlib>

#include "base/mutants.h"
#include "base/time_util.h"

namespace scopekeeper {

ScopeSet CompiledKey::ScopesAt(absl::Time now) const {
  ScopeSet out = permanent_scopes;
  for (const auto& [id, expire] : timed_scopes) {
    if (now < expire || SK_MUTANT(kGrantExpiryIgnored)) out.Add(id);
  }
  return out;
}

void CompiledKey::SetIds(absl::string_view key_id,
                         absl::string_view organization_id,
                         absl::string_view app_id) {
  // Ids are validated at most kMaxIdLength (128) bytes long; a longer one
  // would be cut: never decide on that.
  if (key_id.size() > UINT16_MAX || organization_id.size() > UINT16_MAX) {
    std::abort();
  }
  ids_.clear();
  ids_.reserve(key_id.size() + organization_id.size() + app_id.size());
  ids_.insert(ids_.end(), key_id.begin(), key_id.end());
  ids_.insert(ids_.end(), organization_id.begin(), organization_id.end());
  ids_.insert(ids_.end(), app_id.begin(), app_id.end());
  key_id_size_ = static_cast<uint16_t>(key_id.size());
  organization_id_size_ = static_cast<uint16_t>(organization_id.size());
}

v1::KeyStatus CompiledKey::StatusAt(absl::Time now) const {
  if (revoked) return v1::REVOKED;
  if (now >= expire_time) return v1::EXPIRED;
  return v1::ACTIVE;
}

std::shared_ptr<const CompiledKey> CompileKey(const storage::KeyRecord& record,
                                              const PolicySnapshot& policy,
                                              const AppDirectory& apps) {
  auto out = std::make_shared<CompiledKey>();
  const v1::Key& key = record.key();
  out->policy_generation = policy.generation();
  out->revision = key.revision();
  out->revoked = key.status() == v1::REVOKED;
  out->expire_time = FromProtoTimeOr(key.expire_time(), absl::InfiniteFuture());
  for (const std::string& api : key.apis()) {
    if (const CompiledApi* a = policy.FindApi(api)) {
      out->api_mask |= uint64_t{1} << a->index;
    }
  }
  for (const v1::Grant& grant : key.grants()) {
    const int id = policy.ScopeId(grant.scope());
    if (id < 0) continue;
    if (grant.has_expire_time()) {
      out->timed_scopes.emplace_back(id, FromProtoTime(grant.expire_time()));
    } else {
      out->permanent_scopes.Add(id);
    }
  }
  for (const std::string& bundle : key.bundles()) {
    if (SK_MUTANT(kBundlesIgnored)) break;
    if (const ScopeSet* scopes = policy.FindBundle(bundle)) {
      out->permanent_scopes.AddAll(*scopes);
    }
  }
  absl::string_view app_id;
  if (!key.installation_id().empty()) {
    out->has_installation = true;
    if (const v1::Installation* installation =
            apps.FindInstallation(key.installation_id())) {
      app_id = installation->app_id();
      if (SK_MUTANT(kApprovedNotRequested)) {
        for (const std::string& scope : installation->approved_scopes()) {
          const int id = policy.ScopeId(scope);
          if (id >= 0) out->permanent_scopes.Add(id);
        }
      }
    }
    for (const std::string& scope : apps.GrantedScopes(key.installation_id())) {
      const int id = policy.ScopeId(scope);
      if (id >= 0) out->permanent_scopes.Add(id);
    }
  }
  out->SetIds(key.key_id(), key.organization_id(), app_id);
  return out;
}

std::shared_ptr<const CompiledKey> StaleKey(const CompiledKey& key) {
  auto out = std::make_shared<CompiledKey>();
  out->policy_generation = kStalePolicyGeneration;
  out->revision = key.revision;
  out->revoked = true;
  out->has_installation = key.has_installation;
  out->SetIds(key.key_id(), key.organization_id(), key.app_id());
  return out;
}

v1::Key KeyForApi(const storage::KeyRecord& record, const CompiledKey& compiled,
                  const PolicySnapshot& policy, absl::Time now) {
  v1::Key key = record.key();
  key.set_status(compiled.StatusAt(now));
  key.clear_effective_scopes();
  for (std::string& name : policy.ScopeNames(compiled.ScopesAt(now))) {
    key.add_effective_scopes(std::move(name));
  }
  return key;
}

}  // namespace scopekeeper
