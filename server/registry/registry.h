// Registry: the control-plane core behind the Admin service. Validates admin
// requests, builds each change (records, indexes, audit event, and the
// guards naming the revisions it was built from) and commits it through a
// Committer — the local GroupCommitter, or a cluster replica's
// EtcdCommitter — which makes it durable and applies it to the ServingState
// (Applier) before the call returns, so the very next decision sees it.
// Reads (GetKey, ListKeys, audit, changes) read the store and show nothing
// newer than what is applied.
//
// Where things are: key operations in registry_keys.cc, apps and
// installations in registry_apps.cc, the policy, audit, backups and the
// change feed in registry.cc, the shared request checks in validation.h.
// Every admin write (and backup) logs one line with its outcome
// (admin_write_log.h), done by the public methods in registry_log.cc.
#ifndef SCOPEKEEPER_SERVER_REGISTRY_REGISTRY_H_
#define SCOPEKEEPER_SERVER_REGISTRY_REGISTRY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/clock.h"
#include "proto/scopekeeper/v1/scopekeeper.pb.h"
#include "server/decision/serving_state.h"
#include "server/decision/usage_tracker.h"
#include "server/registry/applier.h"
#include "server/registry/commit_observer.h"
#include "server/registry/committer.h"
#include "server/registry/group_commit.h"
#include "server/registry/validation.h"
#include "storage/store.h"

namespace scopekeeper {

// Thread-safe. Does not own its arguments, which must outlive it.
class Registry {
 public:
  // The embedded store's registry: it owns the Applier and a GroupCommitter;
  // nothing else may write to or sync the store. `recovery_interval`: how
  // often a failed store is asked to recover (see GroupCommitter).
  Registry(storage::Store* store, ServingState* state, const Clock* clock,
           UsageTracker* usage, CommitObserver* observer = NoCommitObserver(),
           absl::Duration recovery_interval =
               GroupCommitter::kDefaultRecoveryInterval)
      : store_(store),
        state_(state),
        clock_(clock),
        usage_(usage),
        owned_applier_(std::make_unique<Applier>(store, state)),
        applier_(owned_applier_.get()),
        owned_committer_(std::make_unique<GroupCommitter>(
            store, applier_, state, clock, observer, recovery_interval)),
        committer_(owned_committer_.get()) {}

  // A registry over a store with other writers (a cluster replica):
  // `committer` writes and applies changes and loads the serving state (at
  // Load()); `applier` is the one it applies them with (for CountKeys()).
  Registry(storage::Store* store, ServingState* state, const Clock* clock,
           UsageTracker* usage, Applier* applier, Committer* committer)
      : store_(store),
        state_(state),
        clock_(clock),
        usage_(usage),
        applier_(applier),
        committer_(committer) {}

  // Load() fills the ServingState from the store (policy, apps, every key,
  // the revision) and starts taking writes. Call once, before serving.
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
  // applied or `timeout` passes (DEADLINE_EXCEEDED), or the server closes
  // (UNAVAILABLE).
  absl::Status WaitForChange(uint64_t after_revision, absl::Duration timeout);

  // committer() is the write path, for metrics and tests.
  const Committer& committer() const { return *committer_; }

  // Stored keys by status (see Applier::KeyCounts). For metrics.
  Applier::KeyCounts CountKeys() const { return applier_->CountKeys(); }

 private:
  using Prepared = Committer::Prepared;

  // The admin writes themselves; the public methods call them and log one
  // line each (LogAdminWrite()). `*revision` is the revision written.
  absl::StatusOr<uint64_t> PutPolicyUnlogged(const v1::Policy& policy,
                                             absl::string_view actor);
  absl::StatusOr<v1::CreateKeyResponse> CreateKeyUnlogged(
      const v1::CreateKeyRequest& request, absl::string_view actor);
  absl::StatusOr<v1::Key> GrantScopesUnlogged(
      const v1::GrantScopesRequest& request, absl::string_view actor);
  absl::StatusOr<v1::Key> RevokeScopesUnlogged(
      const v1::RevokeScopesRequest& request, absl::string_view actor);
  absl::StatusOr<v1::Key> RevokeKeyUnlogged(const v1::RevokeKeyRequest& request,
                                            absl::string_view actor);
  absl::StatusOr<v1::CreateKeyResponse> RotateKeyUnlogged(
      const v1::RotateKeyRequest& request, absl::string_view actor);
  absl::StatusOr<v1::App> PutAppUnlogged(const v1::PutAppRequest& request,
                                         absl::string_view actor,
                                         uint64_t* revision);
  absl::StatusOr<v1::Installation> ApproveInstallationUnlogged(
      const v1::ApproveInstallationRequest& request, absl::string_view actor,
      uint64_t* revision);
  absl::StatusOr<v1::CreateBackupResponse> CreateBackupUnlogged(
      const v1::CreateBackupRequest& request);

  // ToApiKey() is the public view of a record: derived status, effective
  // scopes, last_used_time (telemetry: omitted if it cannot be read).
  v1::Key ToApiKey(const storage::KeyRecord& record) const;
  // LastActivity() is when the key was last used, or created if never.
  static absl::Time LastActivity(const v1::Key& key);
  // NewAuditEvent() is the audit event of a change (its revision is set at
  // commit), naming `key` when it is not null.
  v1::AuditEvent NewAuditEvent(absl::string_view action,
                               absl::string_view actor, const v1::Key* key,
                               std::string detail) const;
  // ReadKeyForUpdate() reads the key a change is about (NOT_FOUND naming
  // `key_id` when there is none).
  absl::StatusOr<storage::KeyRecord> ReadKeyForUpdate(absl::string_view key_id);
  // KeyChange() is the Prepared change of one key from `before` to `after`
  // with its audit event.
  Prepared KeyChange(storage::KeyRecord before, storage::KeyRecord after,
                     absl::string_view action, absl::string_view actor,
                     const google::protobuf::Message& request) const;
  // CommitKeyChange() reads the key, lets `change` turn it into the new
  // record (or fail, or return false for "nothing to change"), and commits
  // that. Returns the key as it ends up.
  absl::StatusOr<storage::KeyRecord> CommitKeyChange(
      absl::string_view key_id, absl::string_view action,
      absl::string_view actor, const google::protobuf::Message& request,
      absl::FunctionRef<absl::StatusOr<bool>(const storage::KeyRecord& before,
                                             storage::KeyRecord* after)>
          change,
      uint64_t* revision = nullptr);
  // SecretResponse() is the answer of CreateKey and RotateKey: the key, its
  // new secret (shown this once) and the revision.
  v1::CreateKeyResponse SecretResponse(const storage::KeyRecord& record,
                                       std::string secret,
                                       uint64_t revision) const;

  storage::Store* const store_;
  ServingState* const state_;
  const Clock* const clock_;
  UsageTracker* const usage_;
  // The embedded store's; null for a replica's registry.
  const std::unique_ptr<Applier> owned_applier_;
  Applier* const applier_;
  // Last: its writer thread uses the others.
  const std::unique_ptr<GroupCommitter> owned_committer_;
  Committer* const committer_;
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_REGISTRY_REGISTRY_H_
