#include "server/registry/group_commit.h"

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status_macros.h"

namespace scopekeeper {
namespace {

// A store error that means the store cannot take writes (as opposed to a
// mutation it refuses, like a secret hash another key owns).
bool IsStoreFailure(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsResourceExhausted(status) ||
         absl::IsDataLoss(status) || absl::IsInternal(status);
}

absl::Duration Since(std::chrono::steady_clock::time_point start) {
  return absl::FromChrono(std::chrono::steady_clock::now() - start);
}

// The answer of a commit the failed store could not take.
absl::Status Refused(const absl::Status& failure) {
  return absl::UnavailableError(
      absl::StrCat("store cannot take writes: ", failure.message()));
}

}  // namespace

GroupCommitter::GroupCommitter(storage::Store* store, Applier* applier,
                               ServingState* state, const Clock* clock,
                               CommitObserver* observer,
                               absl::Duration recovery_interval)
    : store_(store),
      applier_(applier),
      state_(state),
      clock_(clock),
      observer_(observer),
      recovery_interval_(recovery_interval) {}

GroupCommitter::~GroupCommitter() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  work_cv_.SignalAll();
  if (writer_.joinable()) writer_.join();
}

absl::Status GroupCommitter::Start() {
  SK_ASSIGN_OR_RETURN(const uint64_t revision, store_->Revision());
  written_.store(revision, std::memory_order_release);
  writer_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> GroupCommitter::Commit(bool barrier, Build build) {
  Request request{barrier, &build};
  MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("server is shutting down");
  queue_.push_back(&request);
  work_cv_.Signal();
  done_cv_.Wait(&mu_, [&request] { return request.done; });
  return std::move(request.result);
}

absl::Status GroupCommitter::AwaitVisible(uint64_t revision) {
  if (state_->revision() >= revision) return absl::OkStatus();
  // Not written through this committer (tests write the store directly):
  // nothing to wait for.
  if (revision > written_revision()) return absl::OkStatus();
  return state_->WaitForRevision(revision, absl::InfiniteDuration());
}

size_t GroupCommitter::queued() const {
  MutexLock lock(&mu_);
  return queue_.size();
}

void GroupCommitter::Run() {
  while (true) {
    std::vector<Request*> batch;
    {
      MutexLock lock(&mu_);
      work_cv_.Wait(&mu_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !queue_.empty();
      });
      if (queue_.empty()) return;  // stopping, and nothing left to do
      batch.assign(queue_.begin(), queue_.end());
      queue_.clear();
    }
    ProcessBatch(batch);
  }
}

void GroupCommitter::ProcessBatch(const std::vector<Request*>& batch) {
  if (!failure_.ok() && !TryRecover()) {
    for (Request* request : batch) request->result = Refused(failure_);
    Finish(batch);
    return;
  }
  std::vector<Pending> pending;
  std::vector<Request*> waiting;
  for (size_t i = 0; i < batch.size(); ++i) {
    Request* request = batch[i];
    // A barrier builds on the serving state: bring it up to date first.
    if (request->barrier && !SyncAndApply(&pending, &waiting)) {
      for (size_t j = i; j < batch.size(); ++j) {
        batch[j]->result = Refused(failure_);
      }
      Finish(std::vector<Request*>(batch.begin() + i, batch.end()));
      return;
    }
    waiting.push_back(request);
    absl::StatusOr<std::optional<Prepared>> built = (*request->build)();
    if (!built.ok() || !built->has_value()) {
      if (built.ok()) {
        request->result = uint64_t{0};
      } else {
        request->result = built.status();
      }
      continue;
    }
    Prepared& prepared = **built;
    storage::Mutation& m = prepared.mutation;
    const uint64_t revision = written_revision() + 1;
    m.revision = revision;
    for (storage::KeyRecord& key : m.put_keys) {
      key.mutable_key()->set_revision(revision);
    }
    if (m.audit_event.has_value()) m.audit_event->set_revision(revision);
    const auto start = std::chrono::steady_clock::now();
    const absl::Status written = store_->Write(m);
    if (!written.ok()) {
      request->result = written;
      if (!IsStoreFailure(written)) continue;
      observer_->OnCommit(Since(start), false, 1);
      // What this batch wrote before cannot be synced either.
      Fail(written, std::move(pending));
      // `waiting` (this request included) and the rest of the batch are
      // not finished yet; earlier barriers finished theirs.
      for (size_t j = i + 1; j < batch.size(); ++j) waiting.push_back(batch[j]);
      for (Request* r : waiting) r->result = Refused(failure_);
      Finish(waiting);
      return;
    }
    written_.store(revision, std::memory_order_release);
    state_->RaiseHorizon(revision);
    Pending& change = pending.emplace_back();
    change.change.revision = revision;
    for (size_t k = 0; k < m.put_keys.size(); ++k) {
      CommittedChange::KeyChange& key = change.change.keys.emplace_back();
      if (k < prepared.before.size())
        key.before = std::move(prepared.before[k]);
      key.after = std::move(m.put_keys[k]);
    }
    change.change.policy = std::move(m.put_policy);
    change.change.apps = std::move(m.put_apps);
    change.change.installations = std::move(m.put_installations);
    request->result = revision;
    if (request->barrier && !SyncAndApply(&pending, &waiting)) {
      for (size_t j = i + 1; j < batch.size(); ++j) {
        batch[j]->result = Refused(failure_);
      }
      Finish(std::vector<Request*>(batch.begin() + i + 1, batch.end()));
      return;
    }
  }
  SyncAndApply(&pending, &waiting);
}

bool GroupCommitter::SyncAndApply(std::vector<Pending>* pending,
                                  std::vector<Request*>* waiting) {
  bool ok = true;
  if (!pending->empty()) {
    const auto start = std::chrono::steady_clock::now();
    const absl::Status synced = store_->Sync();
    observer_->OnCommit(Since(start), synced.ok(),
                        static_cast<int>(pending->size()));
    if (synced.ok()) {
      // Durable: now the decision path may see it, in revision order.
      for (const Pending& change : *pending) applier_->Apply(change.change);
    } else {
      Fail(synced, std::move(*pending));
      for (Request* request : *waiting) request->result = Refused(failure_);
      ok = false;
    }
  }
  Finish(*waiting);
  pending->clear();
  waiting->clear();
  return ok;
}

void GroupCommitter::Fail(const absl::Status& cause,
                          std::vector<Pending> unsynced) {
  failure_ = cause;
  for (Pending& change : unsynced) unsynced_.push_back(std::move(change));
  next_recovery_ = clock_->Now() + recovery_interval_;
  LogError(absl::StrCat(
      "store write failed; refusing writes until it recovers (decisions "
      "continue from revision ",
      state_->revision(), "): ", cause.message()));
  observer_->OnWritable(cause);
  // Decisions waiting for a revision that is not durable (min_revision, a
  // key read before it was) must not wait for it in vain.
  if (!unsynced_.empty()) state_->StopAdvancing(Refused(cause));
}

bool GroupCommitter::TryRecover() {
  const absl::Time now = clock_->Now();
  if (now < next_recovery_) return false;
  next_recovery_ = now + recovery_interval_;
  const absl::Status recovered = store_->Recover();
  if (!recovered.ok()) {
    failure_ = recovered;
    return false;
  }
  // Recover() made every write before the failure durable: apply them.
  for (const Pending& change : unsynced_) applier_->Apply(change.change);
  unsynced_.clear();
  failure_ = absl::OkStatus();
  state_->ResumeAdvancing();
  observer_->OnWritable(absl::OkStatus());
  LogInfo(absl::StrCat("store takes writes again at revision ",
                       written_revision()));
  return true;
}

void GroupCommitter::Finish(const std::vector<Request*>& requests) {
  if (requests.empty()) return;
  {
    MutexLock lock(&mu_);
    for (Request* request : requests) request->done = true;
  }
  done_cv_.SignalAll();
}

}  // namespace scopekeeper
