// Committer: how the Registry turns a change into a durable revision that
// the serving state shows. Two implementations:
//  * GroupCommitter (group_commit.h): the embedded store. One writer thread
//    builds each change on the latest state, writes it as the next
//    revision and group-commits; guards are ignored (nobody else writes).
//  * EtcdCommitter (server/cluster): a replica of a cluster. Each change is
//    one etcd transaction guarded by the revisions it was built from
//    (Store::WriteGuarded); a change that lost a race is rebuilt on fresh
//    state; the call returns once this replica has applied it.
//
// Build steps. A build reads what the change depends on (the store, or the
// serving state for barriers), returns the mutation, and names in
// Mutation::guards every object it read with the revision it read (a key's
// key().revision(), 0 for a new one). It may run more than once (each time
// on fresher state), so it must not have effects outside its result and the
// caller's locals it overwrites.
#ifndef SCOPEKEEPER_SERVER_REGISTRY_COMMITTER_H_
#define SCOPEKEEPER_SERVER_REGISTRY_COMMITTER_H_

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "storage/records.pb.h"
#include "storage/store.h"

namespace scopekeeper {

// Implementations are thread-safe.
class Committer {
 public:
  // A change built for commit. The committer sets the revision of the
  // mutation, of its audit event and of every put key.
  struct Prepared {
    storage::Mutation mutation;
    // Parallel to mutation.put_keys: each key's record before the change
    // (default: the key is new).
    std::vector<storage::KeyRecord> before;
  };
  // A build step (see the file comment): the change to write, nullopt for
  // none, or an error (the caller's answer).
  using Build = absl::FunctionRef<absl::StatusOr<std::optional<Prepared>>()>;

  virtual ~Committer() = default;

  // Start() starts taking commits. The embedded store's committer needs
  // the serving state loaded first (Registry::Load() does that); a
  // replica's committer loads it itself.
  virtual absl::Status Start() = 0;

  // Commit() builds the change and commits it; it returns once the change
  // is durable and applied to this server's serving state, with its
  // revision (0 when the build wrote nothing: then everything the build
  // read is applied), the build's error, UNAVAILABLE when the store cannot
  // take writes (the outcome of a write that was sent is then unknown, as
  // after a timeout), or ABORTED when it kept losing races with other
  // writers. `barrier`: the build reads the serving state, which must then
  // hold every change committed before (and nothing in between may be
  // applied while it builds).
  virtual absl::StatusOr<uint64_t> Commit(bool barrier, Build build) = 0;

  // CatchUp() returns once the serving state holds every change committed
  // before the call, by this server or any other, so that a write can be
  // validated against it (e.g. a PutApp's scopes against a policy that
  // another replica of a cluster has just changed); UNAVAILABLE if that
  // cannot happen soon. The embedded store's committer applies every change
  // before its Commit() returns: nothing to wait for.
  virtual absl::Status CatchUp() { return absl::OkStatus(); }

  // AwaitVisible() returns once the serving state holds `revision` (a
  // revision read from the store), or with UNAVAILABLE if that cannot
  // happen soon (the store failed, the replica is cut off).
  virtual absl::Status AwaitVisible(uint64_t revision) = 0;

  // queued() is how many commits are waiting or in progress; for metrics
  // and tests.
  virtual size_t queued() const = 0;
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_REGISTRY_COMMITTER_H_
