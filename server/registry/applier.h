// Applier: brings the serving state (what decisions read) up to a committed,
// durable change: the policy snapshot, the app directory, and the key cache
// entries of every key the change touched. The one place changes reach the
// serving state, whichever path committed them (the local group committer
// now; a follower of a replicated store later).
#ifndef SCOPEKEEPER_SERVER_REGISTRY_APPLIER_H_
#define SCOPEKEEPER_SERVER_REGISTRY_APPLIER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <thread>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/scopekeeper/v1/scopekeeper.pb.h"
#include "server/decision/compiled_key.h"
#include "server/decision/serving_state.h"
#include "storage/records.pb.h"
#include "storage/store.h"

namespace scopekeeper {

// A durable change, as the serving state must see it.
struct CommittedChange {
  uint64_t revision = 0;
  struct KeyChange {
    // The record before the change (empty key_id: the key is new); its
    // secrets the new record lacks stop authenticating.
    storage::KeyRecord before;
    storage::KeyRecord after;
  };
  std::vector<KeyChange> keys;
  std::optional<v1::Policy> policy;
  std::vector<v1::App> apps;
  std::vector<v1::Installation> installations;
};

// Not thread-safe: one writer applies changes, in revision order. Does not
// own its arguments.
class Applier {
 public:
  Applier(storage::Store* store, ServingState* state)
      : store_(store), state_(state) {}

  // A consistent view of the whole store at one revision, to load from.
  class Snapshot {
   public:
    virtual ~Snapshot() = default;
    virtual uint64_t revision() const = 0;
    virtual absl::StatusOr<std::optional<v1::Policy>> GetPolicy() const = 0;
    // fn(record, revision of its last change; 0 when unknown).
    virtual absl::Status ForEachApp(
        const std::function<absl::Status(const v1::App&, uint64_t)>& fn)
        const = 0;
    virtual absl::Status ForEachInstallation(
        const std::function<absl::Status(const v1::Installation&, uint64_t)>&
            fn) const = 0;
    virtual absl::Status ForEachKey(
        const std::function<absl::Status(const storage::KeyRecord&)>& fn)
        const = 0;
  };

  // Load() fills the serving state from the store: policy, apps and
  // installations, every key (or as many as a bounded cache holds), and
  // publishes the store's revision. Once, before serving.
  absl::Status Load();

  // LoadSnapshot() is Load() from `snapshot`. On a serving state already
  // loaded (a replica reloading after it fell behind) it replaces it: the
  // cached digests the snapshot lacks are dropped, and the revision
  // published is the snapshot's.
  absl::Status LoadSnapshot(const Snapshot& snapshot);

  // A scan of every stored key record as of one revision (fn is called for
  // each; an error such as OUT_OF_RANGE when it cannot be read, or fn's).
  using KeyScan = std::function<absl::Status(
      uint64_t revision,
      const std::function<absl::Status(const storage::KeyRecord&)>& fn)>;
  // set_key_scan() is for a remote store (a cluster replica): reading every
  // cached key one by one after a policy change would take minutes at 1M
  // keys, and recompiling them all from one scan still takes seconds during
  // which no later change (a revocation) could be applied. With a scan, a
  // policy change puts the new policy in force at once and a background
  // thread recompiles the cached keys from one scan at the change's
  // revision (KeyCache::ReplaceIf: never over a newer entry); until it
  // reaches a key, decisions on it recompile it from the store themselves
  // (its policy generation is stale). Before the first Apply().
  void set_key_scan(KeyScan scan) { key_scan_ = std::move(scan); }

  ~Applier();  // stops the background recompile

  // recompiling() is true while the background recompile has work left.
  // Thread-safe.
  bool recompiling() const { return !recompile_done_.load(); }

  // Apply() makes `change` visible to decisions, then publishes its
  // revision. REQUIRES: the change is durable; changes come in revision
  // order; the store holds no change after it that a recompile could read
  // unless that change is applied next (barriers: see GroupCommitter).
  void Apply(const CommittedChange& change);

  // Stored keys by status (as stored: a key past its expire_time still
  // counts as active until revoked). Thread-safe; for metrics.
  struct KeyCounts {
    int64_t active = 0;
    int64_t revoked = 0;
  };
  KeyCounts CountKeys() const {
    return {keys_active_.load(std::memory_order_relaxed),
            keys_revoked_.load(std::memory_order_relaxed)};
  }

 private:
  void CountKey(const storage::KeyRecord& record, int delta);
  void ApplyKey(const CommittedChange::KeyChange& change,
                const PolicySnapshot& policy, const AppDirectory& apps);
  // RecompileCachedKeys() recompiles the cached keys `affected` selects
  // against `policy` and `apps`, from their stored records; a key whose
  // record cannot be read becomes StaleKey() (decisions then recompile it
  // themselves, failing closed while they cannot), logged once in all.
  void RecompileCachedKeys(
      const PolicySnapshot& policy, const AppDirectory& apps,
      absl::FunctionRef<bool(const CompiledKey&)> affected);
  // StartBackgroundRecompile() recompiles, on a thread of its own, every
  // cached key whose policy generation is not the one in force, from one
  // key_scan_ at `revision` (retrying, later revisions, while it fails).
  void StartBackgroundRecompile(uint64_t revision);
  // StopBackgroundRecompile() stops and joins it; true if it had not
  // finished (stale entries may remain: start it again).
  bool StopBackgroundRecompile();
  void RecompileStale(uint64_t revision);  // the thread

  storage::Store* const store_;
  ServingState* const state_;
  KeyScan key_scan_;
  // The background recompile (set_key_scan() only). Writer thread only,
  // except the flags.
  std::thread recompiler_;
  std::atomic<bool> stop_recompile_{false};
  std::atomic<bool> recompile_done_{true};
  std::atomic<int64_t> keys_active_{0};
  std::atomic<int64_t> keys_revoked_{0};
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_REGISTRY_APPLIER_H_
