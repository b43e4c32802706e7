// EtcdStore: the Store of a cluster of stateless Scopekeeper replicas, kept
// in etcd (v3 API, through EtcdClient) under a key prefix P (default
// "/scopekeeper/").
//
// Durability and revisions. A write is one etcd transaction; etcd
// acknowledges it once a quorum has it on disk, so every write is durable
// when it returns and Sync() does nothing. The revision of a change IS the
// etcd revision of its transaction: monotonic across the cluster, with gaps
// (other prefixes, telemetry and other tenants take revisions too). Writers
// are many (any replica): WriteGuarded() is the write path. It compares,
// inside the transaction, the mod revision of every object the caller's
// guards name (and of every key record whose old version the index update
// was computed from), so a write computed from stale state is ABORTED, never
// lost. Write()/Commit() (caller-chosen, contiguous revisions) cannot be
// honoured here: FAILED_PRECONDITION.
//
// Records do not hold their own revision: reads (and the change feed) stamp
// KeyRecord.key.revision with the record's mod revision and
// AuditEvent.revision with the event's create revision.
//
// Layout (P = Options::prefix; state under P"s/", so that watchers of the
// state never see telemetry writes):
//   P s/meta/format                 "1"
//   P s/meta/head                   "" — put by every WriteGuarded(): its
//                                   mod revision is Revision(), and it
//                                   marks each state transaction in the feed
//   P s/key/<key_id>                KeyRecord (key.revision unset)
//   P s/hash/<hex sha256>           key_id        (derived index)
//   P s/org/<organization_id>\0<key_id>  ""       (derived index)
//   P s/policy                      v1::Policy
//   P s/app/<app_id>                v1::App
//   P s/inst/<installation_id>      v1::Installation
//   P s/audit/<32 hex random>       v1::AuditEvent (revision unset; ordered
//                                   by create revision)
//   P t/used/<key_id>               google.protobuf.Timestamp (telemetry)
#ifndef SCOPEKEEPER_STORAGE_ETCD_ETCD_STORE_H_
#define SCOPEKEEPER_STORAGE_ETCD_ETCD_STORE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "storage/etcd/etcd_client.h"
#include "storage/store.h"

namespace scopekeeper::storage {

// A value and the revision of its last change.
template <typename T>
struct Revisioned {
  T value;
  uint64_t revision = 0;
};

// One committed state transaction, decoded. Index entries are derived and
// not delivered, except the secrets the transaction took away.
struct Change {
  uint64_t revision = 0;
  std::vector<KeyRecord> keys;  // key.revision == revision
  // Parallel to `keys`: each key's record before this transaction (its
  // key.revision the one it had), or nullopt when the key is new or etcd
  // could no longer read its previous version (compacted).
  std::vector<std::optional<KeyRecord>> previous_keys;
  // SHA-256 digests (32 raw bytes) whose index entries this transaction
  // removed: secrets that no longer authenticate any key. Complete even
  // when a previous record is missing.
  std::vector<std::string> removed_hashes;
  std::optional<v1::Policy> policy;
  std::vector<v1::App> apps;
  std::vector<v1::Installation> installations;
  std::optional<v1::AuditEvent> audit_event;  // revision == revision
};

// The callbacks of a change feed (EtcdStore::Follow). They run on the
// feed's thread, one at a time, in order, and must not destroy the feed.
struct FollowCallbacks {
  // Each committed transaction after `after_revision`, in revision order.
  std::function<void(Change change)> on_change;
  // Every change up to and including `revision` has been delivered: the
  // follower is current as of `revision`.
  std::function<void(uint64_t revision)> on_progress;
  // The last call. OUT_OF_RANGE: revisions the feed still had to deliver
  // were compacted (reload a snapshot with ReadAt() and follow from its
  // revision); CANCELLED after destruction; DATA_LOSS for an undecodable
  // record; otherwise the watch's error (UNAVAILABLE: member lost or
  // leaderless; follow again from the last revision delivered).
  std::function<void(const absl::Status& status)> on_end;
};

// A running change feed. Destroying it ends it (on_end runs first).
class ChangeFeed {
 public:
  virtual ~ChangeFeed() = default;
  // RequestProgress() asks for an on_progress(R) with R the cluster's
  // current revision, delivered once every change up to R has been. It
  // costs one linearizable read (of P"s/meta/head"): etcd 3.4's own
  // progress answer is not ordered with the events (see
  // WatchCallbacks::on_progress_answer).
  virtual absl::Status RequestProgress() = 0;
};

class EtcdStore final : public Store {
 public:
  struct Options {
    // Every key of this store starts with it.
    std::string prefix = "/scopekeeper/";
    // etcd's --max-txn-ops and --max-request-bytes: a mutation that would
    // exceed them is rejected (INVALID_ARGUMENT) before anything is sent.
    int max_txn_ops = 128;
    int64_t max_request_bytes = 1572864;
    // Keys per Range when scanning (ForEachKey, ...).
    int page_size = 1000;
    // How often WriteGuarded() recomputes an unguarded write that lost a
    // race with another writer of the same key, before ABORTED.
    int max_attempts = 5;
  };

  // Open() checks (or, for an empty prefix, writes) P"s/meta/format".
  // FAILED_PRECONDITION for a newer format, DATA_LOSS for a corrupt one.
  static absl::StatusOr<std::unique_ptr<EtcdStore>> Open(
      std::shared_ptr<etcd::EtcdClient> client, const Options& options);

  EtcdStore(const EtcdStore&) = delete;
  EtcdStore& operator=(const EtcdStore&) = delete;

  // Reads pinned to one revision: what the snapshot loader uses to read
  // everything at one revision R, then Follow(R). Copyable; the store must
  // outlive it. Reads fail with OUT_OF_RANGE once R is compacted.
  class Reader {
   public:
    uint64_t revision() const { return revision_; }
    absl::StatusOr<std::optional<KeyRecord>> GetKeyById(
        absl::string_view key_id) const;
    absl::StatusOr<std::optional<KeyRecord>> GetKeyBySecretHash(
        absl::string_view sha256) const;
    absl::StatusOr<std::vector<KeyRecord>> ListKeys(
        absl::string_view organization_id, absl::string_view after_key_id,
        int limit) const;
    absl::Status ForEachKey(
        const std::function<absl::Status(const KeyRecord&)>& fn) const;
    absl::Status ForEachApp(
        const std::function<absl::Status(const v1::App&, uint64_t revision)>&
            fn) const;
    absl::Status ForEachInstallation(
        const std::function<absl::Status(const v1::Installation&,
                                         uint64_t revision)>& fn) const;
    absl::StatusOr<std::optional<Revisioned<v1::Policy>>> GetPolicy() const;
    absl::StatusOr<std::vector<v1::AuditEvent>> ListAuditEvents(
        const AuditFilter& filter, int limit) const;

   private:
    friend class EtcdStore;
    Reader(const EtcdStore* store, uint64_t revision)
        : store_(store), revision_(revision) {}
    const EtcdStore* store_;
    uint64_t revision_;
  };

  // ReadAt() pins reads to `revision`, or to the cluster's current revision
  // (one linearizable read) when 0.
  absl::StatusOr<Reader> ReadAt(uint64_t revision);

  // The cluster's position, read linearizably (ReadHead()): `revision` is
  // etcd's revision when it answered, and `last_write` the revision of the
  // last state transaction at or before it (0: none). Whoever has applied
  // every change up to `last_write` holds the state as of `revision`.
  struct Head {
    uint64_t last_write = 0;
    uint64_t revision = 0;
  };
  absl::StatusOr<Head> ReadHead();

  // PruneAuditEvents() deletes audit events recorded before `before`
  // (AuditEvent.time), oldest first, at most `limit`, and returns how many
  // it deleted. Events are scanned in revision order and the scan stops at
  // the first one not older than `before` (clocks of replicas may differ by
  // a little: such an event goes at a later prune). Deleting is not a state
  // change: no revision of the feed, no audit event. Idempotent, so every
  // replica may prune.
  absl::StatusOr<int> PruneAuditEvents(absl::Time before, int limit);

  // Follow() watches the state from after_revision + 1 and delivers each
  // committed transaction (see FollowCallbacks). It returns once the watch
  // is created. With `progress_notify`, etcd also sends progress every
  // --experimental-watch-progress-notify-interval while idle.
  absl::StatusOr<std::unique_ptr<ChangeFeed>> Follow(
      uint64_t after_revision, FollowCallbacks callbacks,
      bool progress_notify = true);

  // Revision() is the revision of the last WriteGuarded() (0 when none),
  // by a linearizable read: every write that returned before is included.
  absl::StatusOr<uint64_t> Revision() override;
  absl::StatusOr<uint64_t> WriteGuarded(const Mutation& m) override;
  // Write() and Commit(): FAILED_PRECONDITION (use WriteGuarded()).
  absl::Status Write(const Mutation& m) override;
  absl::Status Commit(const Mutation& m) override { return Write(m); }
  // Sync(): nothing to do, every write is durable when acknowledged.
  absl::Status Sync() override { return absl::OkStatus(); }

  // Reads of the latest state (each pinned to one revision: ForEach*()
  // page through one snapshot).
  absl::StatusOr<std::optional<KeyRecord>> GetKeyById(
      absl::string_view key_id) override;
  absl::StatusOr<std::optional<KeyRecord>> GetKeyBySecretHash(
      absl::string_view sha256) override;
  absl::StatusOr<std::vector<KeyRecord>> ListKeys(
      absl::string_view organization_id, absl::string_view after_key_id,
      int limit) override;
  absl::Status ForEachKey(
      const std::function<absl::Status(const KeyRecord&)>& fn) override;
  absl::Status ForEachApp(
      const std::function<absl::Status(const v1::App&)>& fn) override;
  absl::Status ForEachInstallation(
      const std::function<absl::Status(const v1::Installation&)>& fn) override;
  absl::StatusOr<std::optional<v1::Policy>> GetPolicy() override;
  // ListAuditEvents() pages through the events by create revision
  // (etcd sorts the remaining events on every page: fine for admin use,
  // linear in the number of events after `after_revision`).
  absl::StatusOr<std::vector<v1::AuditEvent>> ListAuditEvents(
      const AuditFilter& filter, int limit) override;

  // RecordKeyUses() writes the later times under P"t/used/", one
  // transaction per max_txn_ops / 2 keys, comparing each key's mod revision
  // with the one read (retried on a race). No state revision, no audit.
  absl::Status RecordKeyUses(
      const std::vector<std::pair<std::string, google::protobuf::Timestamp>>&
          uses) override;
  absl::StatusOr<std::optional<google::protobuf::Timestamp>> GetKeyLastUse(
      absl::string_view key_id) override;

  // Checkpoint() exports the state at one revision R to the new directory
  // `path` (file "state", length-delimited records: see export.proto) and
  // returns R. Telemetry is not exported. ImportCheckpoint() restores it.
  absl::StatusOr<uint64_t> Checkpoint(const std::string& path) override;

 private:
  EtcdStore(std::shared_ptr<etcd::EtcdClient> client, const Options& options)
      : client_(std::move(client)), options_(options) {}

  std::string StateKey(absl::string_view suffix) const;
  // Get() reads one key at `*revision` (0: latest, then set to the
  // revision read).
  absl::StatusOr<std::optional<etcd::KeyValue>> Get(std::string key,
                                                    uint64_t* revision) const;
  // GetMany() reads several keys at `revision` (0: latest), in batches of
  // max_txn_ops per read-only transaction; nullopt for missing keys.
  absl::StatusOr<std::vector<std::optional<etcd::KeyValue>>> GetMany(
      const std::vector<std::string>& keys, uint64_t revision) const;
  // Scan() calls `fn` on each key in [from, end) in key order at
  // `*revision` (set by the first page if 0), page by page, until `fn`
  // returns false or an error.
  absl::Status Scan(
      std::string from, const std::string& end, uint64_t* revision,
      const std::function<absl::StatusOr<bool>(const etcd::KeyValue&)>& fn)
      const;
  // ScanLarge() is Scan() of every key starting with `prefix` (`count` of
  // them) at `revision` (not 0), for prefixes that may hold millions of
  // keys: etcd 3.4's Range gathers every revision of its whole range before
  // it applies the limit, so paging through n keys costs O(n²/page). A
  // range of more than a few pages is split by the byte after the prefix
  // (the children's sizes counted in batched read-only transactions), so
  // each page's range stays small. False when `fn` stopped the scan.
  absl::StatusOr<bool> ScanLarge(
      const std::string& prefix, int64_t count, uint64_t revision,
      const std::function<absl::StatusOr<bool>(const etcd::KeyValue&)>& fn,
      int depth = 0) const;

  const std::shared_ptr<etcd::EtcdClient> client_;
  const Options options_;
};

// ImportCheckpoint() writes the state exported by Checkpoint() at `path`
// into `store`, whose prefix must hold no state yet (FAILED_PRECONDITION).
// The history restarts: records get new revisions (each audit event its
// own, in the original order). Returns the revision of the last write.
absl::StatusOr<uint64_t> ImportCheckpoint(const std::string& path,
                                          EtcdStore& store);

}  // namespace scopekeeper::storage

#endif  // SCOPEKEEPER_STORAGE_ETCD_ETCD_STORE_H_
