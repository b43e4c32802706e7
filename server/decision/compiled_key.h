// CompiledKey: a stored KeyRecord resolved against one PolicySnapshot into
// what a decision needs (interned scopes, API mask, expiry), so the hot path
// touches no strings but the ids it returns. Immutable; shared by the cache
// entries of each of the key's secrets. It keeps nothing else of the record
// (memory per cached key): whoever needs the record or must recompile reads
// it from the Store.
#ifndef SCOPEKEEPER_SERVER_DECISION_COMPILED_KEY_H_
#define SCOPEKEEPER_SERVER_DECISION_COMPILED_KEY_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/inlined_vector.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/policy/app_directory.h"
#include "server/policy/policy.h"
#include "server/policy/scope_set.h"
#include "storage/records.pb.h"

namespace scopekeeper {

// Its fields are ordered for size: a cached key is one 208-byte malloc
// chunk with make_shared's control block (memory per key, issue #18).
struct CompiledKey {
  uint64_t policy_generation = 0;  // PolicySnapshot::generation() used
  uint64_t revision = 0;           // the stored record's key().revision()
  absl::Time expire_time = absl::InfiniteFuture();
  uint64_t api_mask = 0;  // bit i = CompiledApi::index i
  // Scopes without a time limit: direct grants, bundles' current scopes and
  // the installation's granted scopes.
  ScopeSet permanent_scopes;
  // Time-limited direct grants: (scope id, expire time).
  std::vector<std::pair<int, absl::Time>> timed_scopes;
  // Unix minute of the last use UsageTracker recorded (its only writer).
  mutable std::atomic<int64_t> last_use_minute{0};
  bool revoked = false;
  // Bound to an installation (then app_id() names its app, once it exists).
  bool has_installation = false;

  // SetIds() copies the key's key_id, organization_id and app_id (the app of
  // its installation, "" when not bound to one) next to the decision
  // fields, so a decision touches this one allocation.
  // REQUIRES: key_id and organization_id of at most 65535 bytes each.
  void SetIds(absl::string_view key_id, absl::string_view organization_id,
              absl::string_view app_id = "");
  absl::string_view key_id() const {
    return absl::string_view(ids_.data(), key_id_size_);
  }
  absl::string_view organization_id() const {
    return absl::string_view(ids_.data() + key_id_size_, organization_id_size_);
  }
  absl::string_view app_id() const {
    const size_t start = key_id_size_ + organization_id_size_;
    return absl::string_view(ids_.data() + start, ids_.size() - start);
  }
  // ScopesAt() is the effective scope set at `now`.
  ScopeSet ScopesAt(absl::Time now) const;
  // StatusAt() is ACTIVE, REVOKED or EXPIRED at `now`.
  v1::KeyStatus StatusAt(absl::Time now) const;

 private:
  uint16_t key_id_size_ = 0;
  uint16_t organization_id_size_ = 0;
  // key_id, organization_id, app_id; inline up to 72 bytes in total
  // (GenerateId() ids are 28: a key and its app leave 16 for the
  // organization), else on the heap.
  absl::InlinedVector<char, 72> ids_;
};

// CompileKey() resolves `record` against `policy` and `apps`. Grants,
// bundles and APIs the policy no longer declares are ignored (effective
// scopes are restricted to declared scopes); a key bound to an installation
// gets AppDirectory::GrantedScopes() of it.
std::shared_ptr<const CompiledKey> CompileKey(const storage::KeyRecord& record,
                                              const PolicySnapshot& policy,
                                              const AppDirectory& apps);

// A policy generation no snapshot has (revisions never get there).
inline constexpr uint64_t kStalePolicyGeneration = ~uint64_t{0};

// StaleKey() is a stand-in for `key` when it could not be recompiled: same
// ids and revision, revoked, and compiled for no policy, so every decision
// that finds it must recompile it from the store first (and fails closed if
// it cannot) instead of deciding on grants that may no longer hold.
std::shared_ptr<const CompiledKey> StaleKey(const CompiledKey& key);

// KeyForApi() returns the public Key message of `record` at `now`: its
// metadata with effective_scopes (of `compiled`, its compiled form) and the
// derived status filled in.
v1::Key KeyForApi(const storage::KeyRecord& record, const CompiledKey& compiled,
                  const PolicySnapshot& policy, absl::Time now);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_DECISION_COMPILED_KEY_H_
