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

// The store's latest state as a Snapshot (revisions of records unknown).
class StoreSnapshot final : public Applier::Snapshot {
 public:
  StoreSnapshot(storage::Store* store, uint64_t revision)
      : store_(store), revision_(revision) {}
  uint64_t revision() const override { return revision_; }
  absl::StatusOr<std::optional<v1::Policy>> GetPolicy() const override {
    return store_->GetPolicy();
  }
  absl::Status ForEachApp(
      const std::function<absl::Status(const v1::App&, uint64_t)>& fn)
      const override {
    return store_->ForEachApp([&](const v1::App& app) { return fn(app, 0); });
  }
  absl::Status ForEachInstallation(
      const std::function<absl::Status(const v1::Installation&, uint64_t)>& fn)
      const override {
    return store_->ForEachInstallation(
        [&](const v1::Installation& i) { return fn(i, 0); });
  }
  absl::Status ForEachKey(
      const std::function<absl::Status(const storage::KeyRecord&)>& fn)
      const override {
    return store_->ForEachKey(fn);
  }

 private:
  storage::Store* const store_;
  const uint64_t revision_;
};

}  // namespace

absl::Status Applier::Load() {
  SK_ASSIGN_OR_RETURN(const uint64_t revision, store_->Revision());
  return LoadSnapshot(StoreSnapshot(store_, revision));
}

absl::Status Applier::LoadSnapshot(const Snapshot& snapshot) {
  // Everything is compiled afresh below.
  StopBackgroundRecompile();
  const uint64_t revision = snapshot.revision();
  SK_ASSIGN_OR_RETURN(std::optional<v1::Policy> stored, snapshot.GetPolicy());
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
  std::shared_ptr<const AppDirectory> apps =
      std::make_shared<const AppDirectory>();
  SK_RETURN_IF_ERROR(snapshot.ForEachApp([&](const v1::App& app, uint64_t r) {
    apps = apps->WithApp(app, r);
    return absl::OkStatus();
  }));
  SK_RETURN_IF_ERROR(snapshot.ForEachInstallation(
      [&](const v1::Installation& installation, uint64_t r) {
        apps = apps->WithInstallation(installation, r);
        return absl::OkStatus();
      }));
  state_->set_policy(policy);
  state_->set_apps(apps);
  KeyCache& cache = state_->cache();
  // A reload replaces what is cached: digests not seen below are dropped.
  const bool reload = cache.size() > 0;
  absl::flat_hash_set<SecretDigest> seen;
  keys_active_ = 0;
  keys_revoked_ = 0;
  // This thread reads and compiles; the loader inserts, on the other core.
  KeyCache::BulkLoader loader(&cache);
  size_t loaded = 0;
  const absl::Status scanned =
      snapshot.ForEachKey([&](const storage::KeyRecord& r) {
        CountKey(r, +1);
        // A bounded cache starts with the first keys that fit; the others
        // are read from the store when first used.
        if (cache.bounded() && loaded + r.secrets_size() > cache.capacity()) {
          return absl::OkStatus();
        }
        std::shared_ptr<const CompiledKey> compiled =
            CompileKey(r, *policy, *apps);
        for (const storage::SecretHash& secret : r.secrets()) {
          const SecretDigest digest = SecretDigest::FromBytes(secret.sha256());
          if (reload) seen.insert(digest);
          loader.Add(digest, EntryFor(compiled, secret));
          ++loaded;
        }
        return absl::OkStatus();
      });
  loader.Finish();
  SK_RETURN_IF_ERROR(scanned);
  if (reload) {
    cache.EraseIf([&](const SecretDigest& d) { return !seen.contains(d); });
  }
  state_->PublishRevision(revision);
  return absl::OkStatus();
}

void Applier::Apply(const CommittedChange& change) {
  // A background recompile must not race the recompile of an app change
  // (KeyCache::Recompile); it restarts below on the newer state.
  bool recompile_in_background =
      key_scan_ &&
      (change.policy.has_value() || !change.apps.empty() ||
       !change.installations.empty()) &&
      StopBackgroundRecompile();
  if (change.policy.has_value()) {
    absl::StatusOr<std::shared_ptr<const PolicySnapshot>> snapshot =
        PolicySnapshot::Compile(*change.policy, change.revision);
    if (snapshot.ok()) {
      state_->set_policy(*snapshot);
      if (key_scan_) {
        recompile_in_background = true;
      } else {
        RecompileCachedKeys(**snapshot, *state_->apps(),
                            [](const CompiledKey&) { return true; });
      }
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
      apps = apps->WithApp(app, change.revision);
      app_ids.insert(app.app_id());
    }
    for (const v1::Installation& installation : change.installations) {
      apps = apps->WithInstallation(installation, change.revision);
      app_ids.insert(installation.app_id());
    }
    state_->set_apps(apps);
    // Keys of these apps' installations, and bound keys whose installation
    // was missing when they were compiled (no app_id yet).
    RecompileCachedKeys(*state_->policy(), *apps, [&](const CompiledKey& key) {
      return key.has_installation &&
             (key.app_id().empty() || app_ids.contains(key.app_id()));
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
  if (recompile_in_background) StartBackgroundRecompile(change.revision);
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

Applier::~Applier() { StopBackgroundRecompile(); }

void Applier::StartBackgroundRecompile(uint64_t revision) {
  StopBackgroundRecompile();
  stop_recompile_ = false;
  recompile_done_ = false;
  recompiler_ = std::thread([this, revision] { RecompileStale(revision); });
}

bool Applier::StopBackgroundRecompile() {
  stop_recompile_ = true;
  if (recompiler_.joinable()) recompiler_.join();
  return !recompile_done_.load();
}

void Applier::RecompileStale(uint64_t revision) {
  KeyCache& cache = state_->cache();
  const absl::Time start = absl::Now();
  int64_t recompiled = 0;
  for (int attempt = 1; !stop_recompile_.load(); ++attempt) {
    const absl::Status scanned =
        key_scan_(revision, [&](const storage::KeyRecord& record) {
          if (stop_recompile_.load()) {
            return absl::CancelledError("background recompile stopped");
          }
          const std::shared_ptr<const PolicySnapshot> policy = state_->policy();
          std::shared_ptr<const CompiledKey> compiled;
          for (const storage::SecretHash& secret : record.secrets()) {
            const SecretDigest digest =
                SecretDigest::FromBytes(secret.sha256());
            KeyCache::Entry cached;
            if (!cache.Find(digest, &cached) ||
                cached.key->policy_generation == policy->generation() ||
                cached.key->revision > record.key().revision()) {
              continue;  // absent, already recompiled, or newer
            }
            if (compiled == nullptr) {
              compiled = CompileKey(record, *policy, *state_->apps());
            }
            recompiled += cache.ReplaceIf(digest, cached.key.get(),
                                          EntryFor(compiled, secret))
                              ? 1
                              : 0;
          }
          return absl::OkStatus();
        });
    if (scanned.ok()) {
      recompile_done_ = true;
      LogInfo(absl::StrCat("recompiled ", recompiled,
                           " cached key entries for the policy in force in ",
                           absl::FormatDuration(absl::Trunc(
                               absl::Now() - start, absl::Milliseconds(1)))));
      return;
    }
    if (stop_recompile_.load()) return;
    // Until it works, decisions recompile what they meet from the store.
    LogWarning(absl::StrCat("recompiling cached keys at revision ", revision,
                            " failed (attempt ", attempt,
                            "): ", scanned.ToString(), "; retrying"));
    for (int i = 0; i < 10 && !stop_recompile_.load(); ++i) {
      absl::SleepFor(absl::Milliseconds(100));
    }
    revision = state_->revision();  // the older one may be compacted
  }
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
