// UsageTracker: when each key was last used, kept coarsely (at most one
// record per key per minute) and off the decision path: Touch() costs one
// relaxed atomic load unless the key's minute changed; Flush() (a background
// thread in the server; tests call it directly) writes what was collected to
// the Store as telemetry (Store::RecordKeyUses: no revision, not synced).
#ifndef SCOPEKEEPER_SERVER_DECISION_USAGE_TRACKER_H_
#define SCOPEKEEPER_SERVER_DECISION_USAGE_TRACKER_H_

#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/mutex.h"
#include "server/decision/compiled_key.h"
#include "storage/store.h"

namespace scopekeeper {

// Thread-safe. Does not own `store`.
class UsageTracker {
 public:
  explicit UsageTracker(storage::Store* store) : store_(store) {}

  // Touch() notes that `key` was used at `now`.
  void Touch(const CompiledKey& key, absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

  // Flush() writes the uses noted since the last Flush() to the store. On
  // error they are kept for the next Flush().
  absl::Status Flush() ABSL_LOCKS_EXCLUDED(mu_);

  // LastUse() is the latest use known (noted or stored), or nullopt.
  absl::StatusOr<std::optional<absl::Time>> LastUse(absl::string_view key_id)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  storage::Store* const store_;
  Mutex mu_;
  absl::flat_hash_map<std::string, absl::Time> pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_DECISION_USAGE_TRACKER_H_
