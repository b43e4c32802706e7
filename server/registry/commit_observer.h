// CommitObserver: what the write path reports about the store (for metrics),
// behind an interface so the registry depends on no metrics library.
// NoCommitObserver() does nothing.
#ifndef SCOPEKEEPER_SERVER_REGISTRY_COMMIT_OBSERVER_H_
#define SCOPEKEEPER_SERVER_REGISTRY_COMMIT_OBSERVER_H_

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace scopekeeper {

// Implementations must be thread-safe.
class CommitObserver {
 public:
  virtual ~CommitObserver() = default;
  // OnCommit() reports one store sync making `mutations` writes durable (a
  // group commit), how long it took and whether it worked. A write that
  // failed before any sync is a failed commit of 1 mutation.
  virtual void OnCommit(absl::Duration latency, bool ok, int mutations) = 0;
  // OnWritable() reports whether the store takes writes: false with the
  // cause when a write or sync failed, true again once it recovered.
  virtual void OnWritable(const absl::Status& cause) = 0;
};

// NoCommitObserver() is a process-wide observer that ignores everything.
CommitObserver* NoCommitObserver();

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_REGISTRY_COMMIT_OBSERVER_H_
