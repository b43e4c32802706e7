#include "server/registry/applier.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/redact.h"
#include "base/status_macros.h"
#include "base/time_util.h"
#include "server/policy/key_secret.h"

namespace scopekeeper {
namespace {

KeyCache::Entry EntryFor(std::shared_ptr<const CompiledKey> key,
                         const storage::SecretHash& secret) {
  return {std::move(key),
          FromProtoTimeOr(secret.expire_time(), absl::InfiniteFuture())};
}

}  // namespace

absl::Status Applier::Load() {
  SK_ASSIGN_OR_RETURN(const uint64_t revision, store_->Revision());
  SK_ASSIGN_OR_RETURN(std::optional<v1::Policy> stored, store_->GetPolicy());
  std::shared_ptr<const PolicySnapshot> policy = PolicySnapshot::Empty();
  if (stored.has_value()) {
    absl::StatusOr<std::shared_ptr<const PolicySnapshot>> compiled =
        PolicySnapshot::Compile(*stored, revision);
    if (!compiled.ok()) {
      return absl::DataLossError(absl::StrCat(
          "stored policy does not validate: ", compiled.status().message()));
    }
    policy = *std::move(compiled);
  }
  state_->set_policy(policy);
  std::shared_ptr<const AppDirectory> apps =
      std::make_shared<const AppDirectory>();
  SK_RETURN_IF_ERROR(store_->ForEachApp([&](const v1::App& app) {
    apps = apps->WithApp(app);
    return absl::OkStatus();
  }));
  SK_RETURN_IF_ERROR(
      store_->ForEachInstallation([&](const v1::Installation& installation) {
        apps = apps->WithInstallation(installation);
        return absl::OkStatus();
      }));
  state_->set_apps(apps);
  KeyCache& cache = state_->cache();
  keys_active_ = 0;
  keys_revoked_ = 0;
  // This thread reads and compiles; the loader inserts, on the other core.
  KeyCache::BulkLoader loader(&cache);
  size_t loaded = 0;
  const absl::Status scanned =
      store_->ForEachKey([&](const storage::KeyRecord& r) {
        CountKey(r, +1);
        // A bounded cache starts with the first keys that fit; the others
        // are read from the store when first used.
        if (cache.bounded() && loaded + r.secrets_size() > cache.capacity()) {
          return absl::OkStatus();
        }
        std::shared_ptr<const CompiledKey> compiled =
            CompileKey(r, *policy, *apps);
        for (const storage::SecretHash& secret : r.secrets()) {
          loader.Add(SecretDigest::FromBytes(secret.sha256()),
                     EntryFor(compiled, secret));
          ++loaded;
        }
        return absl::OkStatus();
      });
  loader.Finish();
  SK_RETURN_IF_ERROR(scanned);
  state_->PublishRevision(revision);
  return absl::OkStatus();
}

void Applier::Apply(const CommittedChange& change) {
  if (change.policy.has_value()) {
    absl::StatusOr<std::shared_ptr<const PolicySnapshot>> snapshot =
        PolicySnapshot::Compile(*change.policy, change.revision);
    if (snapshot.ok()) {
      state_->set_policy(*snapshot);
      RecompileCachedKeys(**snapshot, *state_->apps(),
                          [](const CompiledKey&) { return true; });
    } else {
      // Validated before it was written: only a damaged store gets here.
      LogError(absl::StrCat("policy at revision ", change.revision,
                            " does not compile; keeping the one in force: ",
                            snapshot.status().message()));
    }
  }
  if (!change.apps.empty() || !change.installations.empty()) {
    std::shared_ptr<const AppDirectory> apps = state_->apps();
    absl::flat_hash_set<std::string> app_ids;
    for (const v1::App& app : change.apps) {
      apps = apps->WithApp(app);
      app_ids.insert(app.app_id());
    }
    for (const v1::Installation& installation : change.installations) {
      apps = apps->WithInstallation(installation);
      app_ids.insert(installation.app_id());
    }
    state_->set_apps(apps);
    // Keys of these apps' installations, and bound keys whose installation
    // was missing when they were compiled (no app_id yet).
    RecompileCachedKeys(*state_->policy(), *apps, [&](const CompiledKey& key) {
      return key.has_installation &&
             (key.app_id.empty() || app_ids.contains(key.app_id));
    });
  }
  if (!change.keys.empty()) {
    const std::shared_ptr<const PolicySnapshot> policy = state_->policy();
    const std::shared_ptr<const AppDirectory> apps = state_->apps();
    for (const CommittedChange::KeyChange& key : change.keys) {
      ApplyKey(key, *policy, *apps);
    }
  }
  state_->PublishRevision(change.revision);
}

void Applier::ApplyKey(const CommittedChange::KeyChange& change,
                       const PolicySnapshot& policy, const AppDirectory& apps) {
  if (!change.before.key().key_id().empty()) CountKey(change.before, -1);
  CountKey(change.after, +1);
  std::shared_ptr<const CompiledKey> compiled =
      CompileKey(change.after, policy, apps);
  absl::flat_hash_set<absl::string_view> kept;
  for (const storage::SecretHash& secret : change.after.secrets()) {
    kept.insert(secret.sha256());
    state_->cache().Upsert(SecretDigest::FromBytes(secret.sha256()),
                           EntryFor(compiled, secret));
  }
  for (const storage::SecretHash& secret : change.before.secrets()) {
    if (!kept.contains(secret.sha256())) {
      state_->cache().Erase(SecretDigest::FromBytes(secret.sha256()));
    }
  }
}

void Applier::CountKey(const storage::KeyRecord& record, int delta) {
  (record.key().status() == v1::REVOKED ? keys_revoked_ : keys_active_)
      .fetch_add(delta, std::memory_order_relaxed);
}

void Applier::RecompileCachedKeys(
    const PolicySnapshot& policy, const AppDirectory& apps,
    absl::FunctionRef<bool(const CompiledKey&)> affected) {
  int64_t failed = 0;
  absl::Status first_failure;
  state_->cache().Recompile([&](const std::shared_ptr<const CompiledKey>& key)
                                -> std::shared_ptr<const CompiledKey> {
    if (!affected(*key)) return key;
    absl::StatusOr<std::optional<storage::KeyRecord>> record =
        store_->GetKeyById(key->key_id());
    if (record.ok() && record->has_value()) {
      return CompileKey(**record, policy, apps);
    }
    if (failed++ == 0) {
      first_failure =
          record.ok()
              ? absl::DataLossError(absl::StrCat("key ", Quote(key->key_id()),
                                                 " is not in the store"))
              : record.status();
    }
    // Not left as it was (an app change keeps the policy generation, so the
    // old grants would stand): decisions recompile it themselves.
    return StaleKey(*key);
  });
  if (failed > 0) {
    // One line, however many keys (a store outage would fail them all).
    LogError(absl::StrCat(
        failed, " cached keys could not be recompiled (first: ",
        first_failure.ToString(),
        "); decisions recompile them from the store, failing closed until it "
        "can be read"));
  }
}

}  // namespace scopekeeper
