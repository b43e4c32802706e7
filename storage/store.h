// Store: the durable state of Scopekeeper behind one small interface, so the
// embedded RocksDB store, the in-memory fake and (later) etcd are
// interchangeable. Storage-specific error types never cross it: every method
// returns absl::Status (UNAVAILABLE for I/O failures, DATA_LOSS for corrupt
// records, FAILED_PRECONDITION for an out-of-order revision).
#ifndef SCOPEKEEPER_STORAGE_STORE_H_
#define SCOPEKEEPER_STORAGE_STORE_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "proto/scopekeeper/v1/scopekeeper.pb.h"
#include "storage/records.pb.h"

namespace scopekeeper::storage {

// A condition of a guarded write (Store::WriteGuarded): the named object
// was last changed at `revision` (0: it must not exist). A caller sets one
// for each object its mutation was computed from, with the revision it
// read (KeyRecord.key.revision, or the Change/Reader revision of a policy,
// app or installation).
struct Guard {
  enum class Kind { kKey, kPolicy, kApp, kInstallation };
  Kind kind = Kind::kKey;
  std::string id;  // key_id, app_id or installation_id; empty for kPolicy
  uint64_t revision = 0;
};

// One atomic change: every part is written, with the new revision, or none.
struct Mutation {
  // Write()/Commit(): must be exactly Revision() + 1. WriteGuarded():
  // ignored (the store assigns the revision).
  uint64_t revision = 0;
  // WriteGuarded(): all must hold, or nothing is written (ABORTED).
  // Write()/Commit() of the single-writer stores ignore them.
  std::vector<Guard> guards;
  // Full new records. The store keeps the secret-hash index (one entry per
  // SecretHash of the record; hashes the old record had and this one lacks
  // are removed) and the organization index in step.
  std::vector<KeyRecord> put_keys;
  // Replaces the policy when set.
  std::optional<v1::Policy> put_policy;
  // Full new app records, by app_id.
  std::vector<v1::App> put_apps;
  // Full new installation records, by installation_id.
  std::vector<v1::Installation> put_installations;
  // Recorded under `revision`; its revision field must equal it
  // (WriteGuarded(): ignored, readers see the assigned revision).
  std::optional<v1::AuditEvent> audit_event;
};

// Filter for ListAuditEvents; empty fields match everything.
struct AuditFilter {
  std::string key_id;
  std::string organization_id;
  uint64_t after_revision = 0;  // strictly after
};

// Thread-safe: reads may run concurrently with each other, with writes and
// with Sync(). Writes (Commit and Write) are serialized by the caller (one
// writer); so are Sync() calls (one syncer), which may overlap a write.
//
// Durability. Write() makes a mutation visible at once (to every read,
// Revision() included) but not durable; Sync() makes every Write() that
// returned before it durable; Commit() is Write() then Sync(). Writes become
// durable in order: a crash loses at most a suffix of the unsynced writes,
// so the revisions that survive are contiguous from 1. A caller that must
// not act on state a crash could lose (the serving state, an RPC's answer)
// waits for Sync(). After a failed Sync() the unsynced writes may or may not
// survive a crash; they stay visible to reads.
class Store {
 public:
  virtual ~Store() = default;

  // Revision() is the revision of the last written Mutation, synced or not
  // (0 when empty).
  virtual absl::StatusOr<uint64_t> Revision() = 0;

  // Write() writes `m` atomically, visible to reads at once, durable only
  // after a later Sync(). On error nothing of `m` is visible.
  virtual absl::Status Write(const Mutation& m) = 0;

  // WriteGuarded() writes `m` atomically and durably if all its guards
  // hold, at a revision the store assigns (above every earlier one, not
  // necessarily Revision() + 1), and returns it. Records read back carry
  // it (KeyRecord.key.revision, AuditEvent.revision). ABORTED, naming the
  // object, when a guard fails: re-read and retry. For stores with many
  // writers (EtcdStore); UNIMPLEMENTED elsewhere for now.
  virtual absl::StatusOr<uint64_t> WriteGuarded(const Mutation& /*m*/) {
    return absl::UnimplementedError(
        "WriteGuarded: not supported by this store");
  }

  // Sync() makes every Write() that returned before the call durable.
  // UNAVAILABLE if that failed (then see the class comment).
  virtual absl::Status Sync() = 0;

  // Recover() is called after a Write() or Sync() failed for lack of
  // storage (UNAVAILABLE or RESOURCE_EXHAUSTED), before trying again: OK
  // once the store takes writes again, and then every Write() that returned
  // OK before the failure is durable. Until it returns OK, writes and syncs
  // fail. Stores that cannot fail that way return OK.
  virtual absl::Status Recover() { return absl::OkStatus(); }

  // Commit() writes `m` atomically and durably: Write(m), then Sync(). On a
  // Write() error nothing of `m` is visible.
  virtual absl::Status Commit(const Mutation& m) {
    absl::Status status = Write(m);
    if (!status.ok()) return status;
    return Sync();
  }

  // GetKeyById() returns the record, or nullopt if no key has that id.
  virtual absl::StatusOr<std::optional<KeyRecord>> GetKeyById(
      absl::string_view key_id) = 0;

  // GetKeyBySecretHash() returns the record one of whose secrets has this
  // SHA-256 digest (32 raw bytes), or nullopt.
  virtual absl::StatusOr<std::optional<KeyRecord>> GetKeyBySecretHash(
      absl::string_view sha256) = 0;

  // ListKeys() returns up to `limit` records with key_id > `after_key_id`,
  // ordered by key_id; only those of `organization_id` when it is non-empty.
  virtual absl::StatusOr<std::vector<KeyRecord>> ListKeys(
      absl::string_view organization_id, absl::string_view after_key_id,
      int limit) = 0;

  // ForEachKey() calls `fn` for every record, in key_id order, stopping at
  // (and returning) the first non-OK status `fn` returns.
  virtual absl::Status ForEachKey(
      const std::function<absl::Status(const KeyRecord&)>& fn) = 0;

  // ForEachApp() and ForEachInstallation() call `fn` for every record, in id
  // order, stopping at (and returning) the first non-OK status of `fn`.
  virtual absl::Status ForEachApp(
      const std::function<absl::Status(const v1::App&)>& fn) = 0;
  virtual absl::Status ForEachInstallation(
      const std::function<absl::Status(const v1::Installation&)>& fn) = 0;

  // RecordKeyUses() stores last-used times by key_id. Telemetry, not state:
  // no revision, no audit event, not synced (a crash may lose the latest
  // ones). A time is kept only if later than the stored one.
  virtual absl::Status RecordKeyUses(
      const std::vector<std::pair<std::string, google::protobuf::Timestamp>>&
          uses) = 0;
  // GetKeyLastUse() returns the stored last-used time, or nullopt.
  virtual absl::StatusOr<std::optional<google::protobuf::Timestamp>>
  GetKeyLastUse(absl::string_view key_id) = 0;

  // Checkpoint() writes a consistent, openable copy of the whole store to
  // the new directory `path` (FAILED_PRECONDITION if it exists) and returns
  // the revision it holds. UNIMPLEMENTED for stores that cannot.
  virtual absl::StatusOr<uint64_t> Checkpoint(const std::string& path) = 0;

  // GetPolicy() returns the stored policy, or nullopt if none was ever put.
  virtual absl::StatusOr<std::optional<v1::Policy>> GetPolicy() = 0;

  // ListAuditEvents() returns up to `limit` events matching `filter`, oldest
  // first.
  virtual absl::StatusOr<std::vector<v1::AuditEvent>> ListAuditEvents(
      const AuditFilter& filter, int limit) = 0;
};

}  // namespace scopekeeper::storage

#endif  // SCOPEKEEPER_STORAGE_STORE_H_
