#include "server/cluster/etcd_committer.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status_macros.h"

namespace scopekeeper {
namespace {

// A refusal by etcd of this mutation itself (too large, a secret another
// key holds), as opposed to etcd not taking writes.
bool IsRefusal(const absl::Status& status) {
  return absl::IsInvalidArgument(status) || absl::IsAlreadyExists(status) ||
         absl::IsFailedPrecondition(status) || absl::IsNotFound(status) ||
         absl::IsPermissionDenied(status);
}

class InFlight {
 public:
  explicit InFlight(std::atomic<size_t>* count) : count_(count) {
    count_->fetch_add(1, std::memory_order_relaxed);
  }
  ~InFlight() { count_->fetch_sub(1, std::memory_order_relaxed); }

 private:
  std::atomic<size_t>* const count_;
};

}  // namespace

absl::StatusOr<uint64_t> EtcdCommitter::Commit(bool barrier, Build build) {
  InFlight in_flight(&in_flight_);
  const absl::Time deadline = absl::Now() + options_.visible_timeout;
  for (int attempt = 1; attempt <= options_.max_attempts; ++attempt) {
    // A barrier builds on the serving state; a retry must see the write it
    // lost to. Either way: hold every change committed so far first.
    if (barrier || attempt > 1) {
      SK_RETURN_IF_ERROR(follower_->CatchUp(deadline));
    }
    SK_ASSIGN_OR_RETURN(std::optional<Prepared> prepared, build());
    if (!prepared.has_value()) return uint64_t{0};
    const auto start = std::chrono::steady_clock::now();
    const absl::StatusOr<uint64_t> written =
        store_->WriteGuarded(prepared->mutation);
    const absl::Duration latency =
        absl::FromChrono(std::chrono::steady_clock::now() - start);
    if (written.ok()) {
      observer_->OnCommit(latency, true, 1);
      SetWritable(absl::OkStatus());
      const absl::Status visible = follower_->AwaitApplied(
          *written, absl::Now() + options_.visible_timeout);
      if (!visible.ok()) {
        return absl::UnavailableError(absl::StrCat(
            "the write is committed at revision ", *written,
            " but not yet visible on this replica: ", visible.message()));
      }
      return *written;
    }
    if (absl::IsAborted(written.status())) {
      conflicts_.fetch_add(1, std::memory_order_relaxed);
      continue;  // another replica changed what the build read
    }
    if (IsRefusal(written.status())) return written.status();
    observer_->OnCommit(latency, false, 1);
    SetWritable(written.status());
    return absl::UnavailableError(absl::StrCat(
        "store cannot take writes (the write may or may not have been "
        "applied: check before repeating it): ",
        written.status().message()));
  }
  return absl::AbortedError(absl::StrCat(
      "the write lost ", options_.max_attempts,
      " races with writes of the same objects on other replicas; retry"));
}

absl::Status EtcdCommitter::CatchUp() {
  return follower_->CatchUp(absl::Now() + options_.visible_timeout);
}

absl::Status EtcdCommitter::AwaitVisible(uint64_t revision) {
  const absl::Time deadline = absl::Now() + options_.visible_timeout;
  if (follower_->AwaitApplied(revision, absl::Now()).ok()) {
    return absl::OkStatus();
  }
  // A revision that is no state change (e.g. a backup's) is reached by
  // confirming the cluster's head, not by the feed: read it now.
  SK_RETURN_IF_ERROR(follower_->CatchUp(deadline));
  return follower_->AwaitApplied(revision, deadline);
}

void EtcdCommitter::SetWritable(const absl::Status& cause) {
  const bool writable = cause.ok();
  if (writable_.exchange(writable) == writable) return;
  if (writable) {
    LogInfo("etcd takes writes again");
  } else {
    LogError(
        absl::StrCat("etcd cannot take writes; Admin mutations fail "
                     "with UNAVAILABLE until it can: ",
                     cause.message()));
  }
  observer_->OnWritable(cause);
}

}  // namespace scopekeeper
