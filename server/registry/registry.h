// Registry: the control-plane core. Validates admin requests, writes each
// mutation (records, indexes, audit event, new revision) to the Store as one
// atomic write, and applies it to the ServingState once it is durable and
// before returning, so the very next decision sees it.
//
// Group commit. Mutations are built and written (unsynced) one at a time
// under write_mu_, each queueing the change to the serving state. After
// releasing write_mu_ a mutation waits until its revision is durable and
// applied: one waiter at a time is the syncer, which takes every queued
// change, syncs the store once for all of them, applies them in revision
// order and publishes the last revision. So concurrent writers share one
// sync, and the serving state (what decisions read) only ever holds durable
// changes. Mutations built from the serving state itself (PutPolicy, PutApp,
// ApproveInstallation) are barriers: they wait until nothing is pending and
// stay exclusive until their own change is applied. Key mutations read keys
// from the store (which sees unsynced writes) and the policy and apps from
// the serving state (stable: only barriers change them).
//
// If a sync fails, every mutation of that batch and every later one fails
// UNAVAILABLE (the registry is failed until restart); decisions keep serving
// the last durable state. No answer reveals an unsynced change: every
// mutation, even a no-op or a failed one, returns only once what it read is
// durable and applied, and reads cap what they show at the applied
// revision.
#ifndef SCOPEKEEPER_SERVER_REGISTRY_REGISTRY_H_
#define SCOPEKEEPER_SERVER_REGISTRY_REGISTRY_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/scopekeeper/v1/scopekeeper.pb.h"
#include "base/clock.h"
#include "server/metrics/metrics.h"
#include "server/decision/serving_state.h"
#include "server/decision/usage_tracker.h"
#include "storage/store.h"

namespace scopekeeper {

// Limits on admin requests.
inline constexpr int kMaxApisPerKey = 64;
inline constexpr int kMaxBundlesPerKey = 64;
inline constexpr int kDefaultPageSize = 100;
inline constexpr int kMaxPageSize = 1000;

// Thread-safe: mutations are serialized up to their store write, reads run
// concurrently. Does not own its arguments, which must outlive it. Nothing
// else may write to or sync the store.
class Registry {
 public:
  // `usage` may be null (keys then show no last_used_time); `metrics` may be
  // null.
  Registry(storage::Store* store, ServingState* state, const Clock* clock,
           UsageTracker* usage = nullptr, Metrics* metrics = nullptr)
      : store_(store),
        state_(state),
        clock_(clock),
        usage_(usage),
        metrics_(metrics) {}

  // Load() fills the ServingState from the store: policy, every key, the
  // revision. Call once, before serving.
  absl::Status Load();

  // PutPolicy() replaces the policy. An invalid policy is INVALID_ARGUMENT
  // naming the offending entry and changes nothing. Returns the revision.
  absl::StatusOr<uint64_t> PutPolicy(const v1::Policy& policy,
                                     absl::string_view actor);
  // PolicyEquals() is true when `policy` is the one in force.
  bool PolicyEquals(const v1::Policy& policy) const;
  v1::Policy GetPolicy() const;

  absl::StatusOr<v1::CreateKeyResponse> CreateKey(
      const v1::CreateKeyRequest& request, absl::string_view actor);
  absl::StatusOr<v1::Key> GetKey(const v1::GetKeyRequest& request);
  absl::StatusOr<v1::ListKeysResponse> ListKeys(
      const v1::ListKeysRequest& request);
  absl::StatusOr<v1::Key> GrantScopes(const v1::GrantScopesRequest& request,
                                      absl::string_view actor);
  absl::StatusOr<v1::Key> RevokeScopes(const v1::RevokeScopesRequest& request,
                                       absl::string_view actor);
  // RevokeKey() is idempotent: a revoked key is returned unchanged.
  absl::StatusOr<v1::Key> RevokeKey(const v1::RevokeKeyRequest& request,
                                    absl::string_view actor);
  // RotateKey() issues a new secret for the key; the old one keeps working
  // for the grace period (none when unset).
  absl::StatusOr<v1::CreateKeyResponse> RotateKey(
      const v1::RotateKeyRequest& request, absl::string_view actor);

  // PutApp() creates or replaces an app. Keys of its installations get the
  // new approved ∩ requested set before it returns: scopes the app drops are
  // lost at once, scopes it adds stay pending until approved.
  absl::StatusOr<v1::App> PutApp(const v1::PutAppRequest& request,
                                 absl::string_view actor);
  // ApproveInstallation() creates the organization's installation of the app
  // or replaces its approved set (keeping its installation_id). Every
  // approved scope must be requested by the app now.
  absl::StatusOr<v1::Installation> ApproveInstallation(
      const v1::ApproveInstallationRequest& request, absl::string_view actor);
  absl::StatusOr<v1::Installation> GetInstallation(
      const v1::GetInstallationRequest& request) const;

  // ListAuditEvents() pages through audit events oldest first, up to the
  // applied revision; the next page is after the last returned event's
  // revision.
  absl::StatusOr<v1::ListAuditEventsResponse> ListAuditEvents(
      const v1::ListAuditEventsRequest& request);

  // CreateBackup() checkpoints the store to `request.destination` (an
  // absolute path that must not exist). Not a mutation: no revision.
  absl::StatusOr<v1::CreateBackupResponse> CreateBackup(
      const v1::CreateBackupRequest& request, absl::string_view actor);

  // Changes() returns up to `limit` changes strictly after `after_revision`
  // and at most the applied revision, oldest first: each mutation's audit
  // event, the key's state now (when the event names a key) and whether the
  // policy changed. Revisions are contiguous, so a reader resumes from the
  // last revision it saw.
  absl::StatusOr<std::vector<v1::WatchEvent>> Changes(uint64_t after_revision,
                                                      int limit);
  // WaitForChange() blocks until a revision after `after_revision` is
  // applied or `deadline` passes (DEADLINE_EXCEEDED), or the server closes
  // (UNAVAILABLE).
  absl::Status WaitForChange(uint64_t after_revision, absl::Time deadline);

  // Stored keys by status (as stored: a key past its expire_time still
  // counts as active until revoked). For metrics.
  struct KeyCounts {
    int64_t active = 0;
    int64_t revoked = 0;
  };
  KeyCounts CountKeys() const;

 private:
  // A change to the serving state, queued until its revision is durable.
  struct PendingApply {
    uint64_t revision;
    std::function<void()> apply;
  };

  // Mutate() runs `fn` under write_mu_, then waits until every revision
  // written so far (by `fn` or before it) is durable and applied, and
  // returns fn's status, or UNAVAILABLE if that sync failed. UNAVAILABLE at
  // once, without running `fn`, once the registry has failed. A `barrier`
  // first waits until nothing is pending and holds write_mu_ until its own
  // change is applied, so `fn` may build on the serving state.
  absl::Status Mutate(bool barrier, const std::function<absl::Status()>& fn)
      ABSL_LOCKS_EXCLUDED(write_mu_, pending_mu_);
  // WriteMutation() writes `m` (at revision_ + 1) to the store unsynced,
  // advances revision_ and queues `apply` to run once `m` is durable.
  absl::Status WriteMutation(const storage::Mutation& m,
                             std::function<void()> apply)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_) ABSL_LOCKS_EXCLUDED(pending_mu_);
  // AwaitApplied() returns once `revision` is durable and applied to the
  // serving state, syncing the queued changes itself when no other thread
  // is; UNAVAILABLE if it cannot be (a sync failed).
  absl::Status AwaitApplied(uint64_t revision) ABSL_LOCKS_EXCLUDED(pending_mu_);
  // AwaitVisible() is AwaitApplied() for reads: they may see in the store a
  // revision whose writer has not yet queued its change. OK at once if
  // `revision` was not written through this registry.
  absl::Status AwaitVisible(uint64_t revision)
      ABSL_LOCKS_EXCLUDED(write_mu_, pending_mu_);
  // SyncAndApply() syncs the store and, if that worked, applies `batch` in
  // order and publishes its last revision. Only the syncer calls it.
  absl::Status SyncAndApply(const std::vector<PendingApply>& batch)
      ABSL_LOCKS_EXCLUDED(pending_mu_);
  // Failure() is UNAVAILABLE once a sync failed, OK before.
  absl::Status Failure() ABSL_LOCKS_EXCLUDED(pending_mu_);

  absl::StatusOr<storage::KeyRecord> ReadKeyForUpdate(absl::string_view key_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  // WriteKeyChange() stamps `*new_record` with revision_+1 and writes it
  // with its audit event, queueing its application to the serving state
  // (secrets of `old_record` that `*new_record` lacks stop authenticating).
  // Returns the new revision.
  absl::StatusOr<uint64_t> WriteKeyChange(const storage::KeyRecord& old_record,
                                          storage::KeyRecord* new_record,
                                          absl::string_view action,
                                          absl::string_view actor,
                                          std::string detail)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);
  v1::AuditEvent NewAuditEvent(uint64_t revision, absl::string_view action,
                               absl::string_view actor, const v1::Key* key,
                               std::string detail) const;
  // ToApiKey() is the public view of a record: derived status, effective
  // scopes, last_used_time (telemetry: omitted if it cannot be read).
  v1::Key ToApiKey(const storage::KeyRecord& record) const;
  // LastActivity() is when the key was last used, or created if never.
  absl::Time LastActivity(const v1::Key& key) const;
  // WriteAppChange() writes `m` (apps/installations + audit event at
  // revision_+1), queueing the swap to `apps` and the recompilation of the
  // cached keys bound to an installation of `app_id`. Barriers only.
  absl::Status WriteAppChange(storage::Mutation m,
                              std::shared_ptr<const AppDirectory> apps,
                              absl::string_view app_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(write_mu_);

  void CountKey(const storage::KeyRecord& record, int delta);
  // RecompileCachedKeys() recompiles the cached keys `affected` selects
  // against `policy` and `apps`, from their stored records; a key whose
  // record cannot be read becomes StaleKey() (decisions then recompile it
  // themselves, failing closed while they cannot), logged once in all. Only
  // in a barrier's apply, when the store holds nothing unsynced.
  void RecompileCachedKeys(
      const PolicySnapshot& policy, const AppDirectory& apps,
      absl::FunctionRef<bool(const CompiledKey&)> affected);

  storage::Store* const store_;
  ServingState* const state_;
  const Clock* const clock_;
  UsageTracker* const usage_;
  Metrics* const metrics_;
  std::atomic<int64_t> keys_active_{0};
  std::atomic<int64_t> keys_revoked_{0};

  // Lock order: write_mu_, then pending_mu_.
  std::mutex write_mu_;  // serializes building and writing mutations
  // Last revision written to the store (maybe not yet durable).
  uint64_t revision_ ABSL_GUARDED_BY(write_mu_) = 0;

  std::mutex pending_mu_;
  std::condition_variable applied_cv_;  // applied_revision_ or failure_ moved
  // Written, not yet durable, in revision order; not yet taken by a syncer.
  std::vector<PendingApply> pending_ ABSL_GUARDED_BY(pending_mu_);
  // A thread is syncing and applying a batch taken from pending_.
  bool syncing_ ABSL_GUARDED_BY(pending_mu_) = false;
  // Last revision durable and applied to the serving state.
  uint64_t applied_revision_ ABSL_GUARDED_BY(pending_mu_) = 0;
  // UNAVAILABLE once a sync failed: the registry takes no more mutations.
  absl::Status failure_ ABSL_GUARDED_BY(pending_mu_);
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_REGISTRY_REGISTRY_H_
