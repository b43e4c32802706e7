// EtcdClient: a small, plain C++ client for etcd's v3 gRPC API (etcd 3.4):
// KV (Range, Txn, Compact), Watch, Maintenance (Status, Snapshot) and
// Auth.Authenticate. gRPC and the generated etcd types stay inside the .cc.
//
// Consistency. Range is linearizable unless `serializable` (then a member
// may answer from its own, possibly stale, state). A Txn's compares and ops
// run atomically at one revision; its header revision is the revision the
// store reached (for a write: the revision of this txn).
//
// Failover. One gRPC channel per endpoint. A read-only call (Range, a Txn
// without writes, Status, Authenticate) that fails with UNAVAILABLE (member
// down, "request timed out") is retried on the next endpoint, round after
// round, within the same deadline; after a round in which a member answered
// "no leader" it fails at once (require_leader's point). A call that
// writes (Txn with a Put/DeleteRange, Compact) is sent once: on UNAVAILABLE
// it may or may not have been applied, so it is returned to the caller,
// which re-reads and decides; the next call starts at another endpoint.
// Before sending, an endpoint whose channel is in TRANSIENT_FAILURE is
// skipped (nothing was sent to it).
//
// Every call has a deadline (Options::call_timeout). With require_leader
// every call and watch carries `hasleader: true`, so a member cut off from
// its quorum answers UNAVAILABLE ("etcdserver: no leader") at once instead
// of blocking or serving stale serializable reads, and etcd cancels watches
// on it. Errors come from EtcdError() (etcd_status.h): the code of etcd's
// answer, a message naming the operation and endpoint, never a credential.
//
// Thread-safe; calls may run concurrently. Watches have a reader thread each.
#ifndef SCOPEKEEPER_STORAGE_ETCD_ETCD_CLIENT_H_
#define SCOPEKEEPER_STORAGE_ETCD_ETCD_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"

namespace scopekeeper::storage::etcd {

// PrefixEnd() is the range_end that makes a range cover every key starting
// with `prefix` ("\0" — all keys — if `prefix` is empty or all 0xff).
std::string PrefixEnd(absl::string_view prefix);

struct KeyValue {
  std::string key;
  std::string value;  // empty for keys_only reads
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;  // number of puts since creation
};

struct RangeRequest {
  std::string key;
  // "" = just `key`; PrefixEnd(p) = every key starting with p.
  std::string range_end;
  int64_t revision = 0;  // 0 = latest
  int64_t limit = 0;     // 0 = no limit
  bool serializable = false;
  bool keys_only = false;
  bool count_only = false;
  int64_t min_mod_revision = 0;  // 0 = no bound
  int64_t max_mod_revision = 0;
  int64_t min_create_revision = 0;
  int64_t max_create_revision = 0;
  enum class SortOrder { kNone, kAscend, kDescend };
  enum class SortTarget { kKey, kVersion, kCreate, kMod, kValue };
  SortOrder sort_order = SortOrder::kNone;
  SortTarget sort_target = SortTarget::kKey;
};

struct RangeResponse {
  int64_t revision = 0;  // the store's revision the read saw
  std::vector<KeyValue> kvs;
  bool more = false;  // more keys matched than `limit`
  int64_t count = 0;  // keys matched
};

// One condition of a Txn, on a single key. A missing key has version,
// create and mod revision 0; a kValue compare on it is false.
struct Compare {
  enum class Target { kVersion, kCreate, kMod, kValue };
  enum class Result { kEqual, kGreater, kLess, kNotEqual };
  std::string key;
  Target target = Target::kMod;
  Result result = Result::kEqual;
  int64_t number = 0;  // for kVersion, kCreate, kMod
  std::string value;   // for kValue (byte-wise comparison)

  static Compare ModRevision(std::string key, Result result, int64_t revision);
  static Compare CreateRevision(std::string key, Result result,
                                int64_t revision);
  static Compare Value(std::string key, Result result, std::string value);
};

// One request of a Txn branch.
struct Op {
  enum class Type { kRange, kPut, kDeleteRange };
  Type type = Type::kRange;
  RangeRequest range;     // kRange (serializable is ignored)
  std::string key;        // kPut, kDeleteRange
  std::string value;      // kPut
  std::string range_end;  // kDeleteRange: "" = just `key`

  static Op Get(RangeRequest range);
  static Op Put(std::string key, std::string value);
  static Op Delete(std::string key, std::string range_end = "");
};

struct TxnRequest {
  std::vector<Compare> compare;  // all must hold for `success` to run
  std::vector<Op> success;
  std::vector<Op> failure;
};

// The answer to one Op, by position.
struct OpResponse {
  RangeResponse range;  // kRange
  int64_t deleted = 0;  // kDeleteRange: keys deleted
};

struct TxnResponse {
  bool succeeded = false;  // the compares held: `success` ran
  int64_t revision = 0;    // header revision (of this txn if it wrote)
  std::vector<OpResponse> responses;
};

struct MemberStatus {
  std::string endpoint;  // the endpoint that answered
  std::string version;   // etcd's version, e.g. "3.4.23"
  uint64_t member_id = 0;
  uint64_t leader = 0;  // 0 = no leader known
  int64_t db_size = 0;
  uint64_t raft_index = 0;
  uint64_t raft_term = 0;
  int64_t revision = 0;
  std::vector<std::string> errors;  // alarms, e.g. "NOSPACE"
};

struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;  // for kDelete: key and mod_revision only
  // With WatchRequest::prev_kv: the key's value before this event; unset
  // when the key did not exist, or when etcd could no longer read it (its
  // revision was compacted).
  std::optional<KeyValue> prev_kv;
};

struct WatchRequest {
  std::string key;
  std::string range_end;       // as in RangeRequest
  int64_t start_revision = 0;  // 0 = changes after the current revision
  // Ask etcd to send progress notifications (on_progress) while no events
  // come, every --experimental-watch-progress-notify-interval of the
  // server (10 minutes by default, 100 ms at least).
  bool progress_notify = false;
  // Ask etcd to send each event's previous value (WatchEvent::prev_kv).
  bool prev_kv = false;
};

// The callbacks of a watch. All run on the watch's reader thread, one at a
// time, in order; they must not destroy the EtcdWatch (RequestProgress() is
// fine).
struct WatchCallbacks {
  // Every event of one revision, in commit order. Revisions only increase.
  std::function<void(int64_t revision, std::vector<WatchEvent> events)>
      on_revision;
  // A progress notification (WatchRequest::progress_notify): every change
  // up to and including `revision` has been delivered. etcd queues these
  // behind the watch's events, and only once the watch has caught up.
  std::function<void(int64_t revision)> on_progress;
  // The answer to RequestProgress(): etcd's revision when it answered.
  // NOT ordered with the events in etcd 3.4.23: etcd answers at once on
  // the stream's control channel (etcdserver/api/v3rpc/watch.go, the
  // ProgressRequest case), so events of revisions up to it may still
  // follow. It shows the stream is alive; it does not confirm the watch is
  // current (EtcdStore::Follow builds that on a linearizable read).
  std::function<void(int64_t revision)> on_progress_answer;
  // The last call: the watch ended. OUT_OF_RANGE when `start_revision` (or
  // a later revision not yet delivered) has been compacted, with
  // `compact_revision` the oldest revision still available; CANCELLED
  // after Cancel(); otherwise etcd's or the transport's error (UNAVAILABLE
  // when the member died or lost its leader under require_leader).
  std::function<void(const absl::Status& status, int64_t compact_revision)>
      on_end;
};

// A running watch. Destroying it cancels it and waits until on_end has run.
class EtcdWatch {
 public:
  virtual ~EtcdWatch() = default;
  // RequestProgress() asks etcd for its current revision
  // (on_progress_answer; see there why that is not on_progress).
  virtual absl::Status RequestProgress() = 0;
  // Cancel() ends the watch (on_end with CANCELLED, unless it already
  // ended). Does not wait; the destructor does.
  virtual void Cancel() = 0;
};

// EncodedSize() is the size of `request` on the wire, which etcd compares
// with its --max-request-bytes (plus a few bytes of its own header).
size_t EncodedSize(const TxnRequest& request);

class EtcdClient {
 public:
  struct Options {
    // host:port of each member. Required.
    std::vector<std::string> endpoints;
    // Deadline of each call, retries on other endpoints included.
    absl::Duration call_timeout = absl::Seconds(5);
    // How long a call waits for a member's connection before it tries the
    // call anyway (and moves on to the next endpoint if that fails).
    absl::Duration connect_timeout = absl::Seconds(1);
    // Deadline for the watch to be created (it then runs until cancelled).
    absl::Duration watch_create_timeout = absl::Seconds(5);
    // TLS when `ca_pem` is set: PEM contents (not paths) of the CA that
    // signed the members' certificates, and of the client certificate and
    // key for client-certificate authentication (both or neither).
    std::string ca_pem;
    std::string cert_pem;
    std::string key_pem;
    // etcd user and password when etcd has auth enabled: the client calls
    // Auth.Authenticate for a token, sends it on every call and
    // authenticates again when etcd reports the token invalid.
    std::string user;
    std::string password;
    // Send `hasleader: true` on every call and watch (see the file comment).
    bool require_leader = true;
  };

  // Create() checks `options` and sets up the channels; it does not
  // connect (the first call does). INVALID_ARGUMENT for bad options.
  static absl::StatusOr<std::unique_ptr<EtcdClient>> Create(
      const Options& options);
  virtual ~EtcdClient() = default;

  virtual absl::StatusOr<RangeResponse> Range(const RangeRequest& request) = 0;
  // Txn() runs `request` atomically. Retried on another endpoint only if it
  // writes nothing (no Put/DeleteRange in either branch).
  virtual absl::StatusOr<TxnResponse> Txn(const TxnRequest& request) = 0;
  // Put() and DeleteRange() are one-op Txns; they return the txn revision.
  virtual absl::StatusOr<int64_t> Put(absl::string_view key,
                                      absl::string_view value) = 0;
  virtual absl::StatusOr<int64_t> DeleteRange(absl::string_view key,
                                              absl::string_view range_end) = 0;
  // Compact() discards the history before `revision` (reads and watches
  // of older revisions then fail with OUT_OF_RANGE). `physical` waits
  // until the space is reclaimed.
  virtual absl::Status Compact(int64_t revision, bool physical) = 0;
  // Status() asks `endpoint` (one of Options::endpoints), or any endpoint
  // when empty.
  virtual absl::StatusOr<MemberStatus> Status(absl::string_view endpoint) = 0;
  // Snapshot() streams the backend of one member (a bbolt file that
  // `etcdctl snapshot restore` turns into a new cluster's data directory)
  // to the new file `path`; returns its size. The whole transfer must end
  // within `timeout`. On error the partial file is removed.
  virtual absl::StatusOr<int64_t> Snapshot(const std::string& path,
                                           absl::Duration timeout) = 0;
  // Watch() starts a watch and returns once etcd has created it (or with
  // the error: the callbacks are then never called).
  virtual absl::StatusOr<std::unique_ptr<EtcdWatch>> Watch(
      const WatchRequest& request, WatchCallbacks callbacks) = 0;
};

}  // namespace scopekeeper::storage::etcd

#endif  // SCOPEKEEPER_STORAGE_ETCD_ETCD_CLIENT_H_
