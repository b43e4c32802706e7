#include "server/cluster/follower.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status_macros.h"

namespace scopekeeper {
namespace {

// Most confirmation reads kept waiting for the feed.
constexpr size_t kMaxPending = 64;

// One pinned etcd revision as the Applier's Snapshot.
class ReaderSnapshot final : public Applier::Snapshot {
 public:
  explicit ReaderSnapshot(storage::EtcdStore::Reader reader)
      : reader_(reader) {}
  uint64_t revision() const override { return reader_.revision(); }
  absl::StatusOr<std::optional<v1::Policy>> GetPolicy() const override {
    SK_ASSIGN_OR_RETURN(std::optional<storage::Revisioned<v1::Policy>> policy,
                        reader_.GetPolicy());
    if (!policy.has_value()) return std::nullopt;
    return std::move(policy->value);
  }
  absl::Status ForEachApp(
      const std::function<absl::Status(const v1::App&, uint64_t)>& fn)
      const override {
    return reader_.ForEachApp(fn);
  }
  absl::Status ForEachInstallation(
      const std::function<absl::Status(const v1::Installation&, uint64_t)>& fn)
      const override {
    return reader_.ForEachInstallation(fn);
  }
  absl::Status ForEachKey(
      const std::function<absl::Status(const storage::KeyRecord&)>& fn)
      const override {
    return reader_.ForEachKey(fn);
  }

 private:
  const storage::EtcdStore::Reader reader_;
};

// ToCommitted() is the change as the Applier takes it. A key whose previous
// record etcd could no longer read (compacted) gets the removed digests as
// its "before" secrets, so they stop authenticating all the same.
CommittedChange ToCommitted(storage::Change change) {
  CommittedChange out;
  out.revision = change.revision;
  for (size_t i = 0; i < change.keys.size(); ++i) {
    CommittedChange::KeyChange& key = out.keys.emplace_back();
    key.after = std::move(change.keys[i]);
    if (i < change.previous_keys.size() &&
        change.previous_keys[i].has_value()) {
      key.before = std::move(*change.previous_keys[i]);
    } else {
      for (const std::string& sha256 : change.removed_hashes) {
        key.before.add_secrets()->set_sha256(sha256);
      }
    }
  }
  out.policy = std::move(change.policy);
  out.apps = std::move(change.apps);
  out.installations = std::move(change.installations);
  return out;
}

}  // namespace

Follower::Follower(storage::EtcdStore* store, Applier* applier,
                   ServingState* state, Freshness* freshness,
                   const Clock* clock, Options options)
    : store_(store),
      applier_(applier),
      state_(state),
      freshness_(freshness),
      clock_(clock),
      options_(options) {
  // Recompiles after policy/app changes: one scan at the change's revision.
  applier_->set_key_scan(
      [store](uint64_t revision,
              const std::function<absl::Status(const storage::KeyRecord&)>& fn)
          -> absl::Status {
        SK_ASSIGN_OR_RETURN(const storage::EtcdStore::Reader reader,
                            store->ReadAt(revision));
        return reader.ForEachKey(fn);
      });
}

Follower::~Follower() { Stop(); }

absl::Status Follower::Start() {
  SK_RETURN_IF_ERROR(LoadSnapshot(/*reload=*/false));
  SK_RETURN_IF_ERROR(StartFeed());
  // A long load confirmed freshness as of its start: confirm again now, so
  // the replica serves from the start when nothing (or little) changed
  // meanwhile. Best effort: the confirmer keeps trying.
  CatchUp(absl::Now() + options_.stall_timeout).IgnoreError();
  {
    MutexLock lock(&serving_mu_);
    serving_ = freshness_->fresh();
  }
  feeder_ = std::thread([this] { RunFeeder(); });
  confirmer_ = std::thread([this] { RunConfirmer(); });
  state_->SetHorizonProbe(this);
  return absl::OkStatus();
}

void Follower::ProbeSoon() {
  probe_requested_.store(true, std::memory_order_release);
  // Without mu_ (see probe_requested_): a wakeup lost to a confirmer about
  // to wait delays the probe by one confirm_interval at most.
  cv_.SignalAll();
}

void Follower::Stop() {
  state_->SetHorizonProbe(nullptr);
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  cv_.SignalAll();
  if (confirmer_.joinable()) confirmer_.join();
  if (feeder_.joinable()) feeder_.join();
  feed_.reset();  // after the feeder: it is the feed's owner
}

absl::Status Follower::LoadSnapshot(bool reload) {
  const absl::Time as_of = clock_->Now();
  // A linearizable read: the cluster's revision at or after `as_of`.
  SK_ASSIGN_OR_RETURN(const storage::EtcdStore::Reader reader,
                      store_->ReadAt(0));
  {
    MutexLock lock(&mu_);
    SK_RETURN_IF_ERROR(applier_->LoadSnapshot(ReaderSnapshot(reader)));
    applied_ = reader.revision();
    pending_.clear();
    last_delivery_ = clock_->Now();
    freshness_->Confirm(as_of);
    if (reload) ++reloads_;
  }
  cv_.SignalAll();
  LogInfo(absl::StrCat("replica loaded the state at etcd revision ",
                       reader.revision()));
  return absl::OkStatus();
}

absl::Status Follower::StartFeed() {
  uint64_t from = 0;
  {
    MutexLock lock(&mu_);
    // Before the watch exists: its end may come at once.
    feed_ended_ = false;
    feed_end_ = absl::OkStatus();
    from = applied_;
    last_delivery_ = clock_->Now();
  }
  storage::FollowCallbacks callbacks;
  callbacks.on_change = [this](storage::Change change) {
    OnChange(std::move(change));
  };
  callbacks.on_progress = [this](uint64_t revision) { OnProgress(revision); };
  callbacks.on_end = [this](const absl::Status& status) { OnEnd(status); };
  absl::StatusOr<std::unique_ptr<storage::ChangeFeed>> feed =
      store_->Follow(from, std::move(callbacks), /*progress_notify=*/true);
  if (!feed.ok()) {
    MutexLock lock(&mu_);
    feed_ended_ = true;
    feed_end_ = feed.status();
    feed_error_ = feed.status();
    return feed.status();
  }
  feed_ = *std::move(feed);
  MutexLock lock(&mu_);
  feed_running_ = true;
  feed_error_ = absl::OkStatus();
  return absl::OkStatus();
}

void Follower::OnChange(storage::Change change) {
  const CommittedChange committed = ToCommitted(std::move(change));
  {
    MutexLock lock(&mu_);
    if (committed.revision > applied_) {
      applier_->Apply(committed);  // publishes committed.revision
      applied_ = committed.revision;
    }
    last_delivery_ = clock_->Now();
    ConfirmLocked();
  }
  cv_.SignalAll();
}

void Follower::OnProgress(uint64_t revision) {
  {
    MutexLock lock(&mu_);
    last_delivery_ = clock_->Now();
    PublishLocked(revision);
  }
  cv_.SignalAll();
}

void Follower::OnEnd(const absl::Status& status) {
  {
    MutexLock lock(&mu_);
    feed_ended_ = true;
    feed_end_ = status;
  }
  cv_.SignalAll();
}

void Follower::PublishLocked(uint64_t revision) {
  if (revision > applied_) {
    applied_ = revision;
    state_->PublishRevision(revision);
  }
  ConfirmLocked();
}

void Follower::ConfirmLocked() {
  uint64_t through = 0;
  for (auto it = pending_.begin(); it != pending_.end();) {
    if (it->last_write <= applied_) {
      // Every state change committed when it was read is applied.
      freshness_->Confirm(it->as_of);
      through = std::max(through, it->revision);
      it = pending_.erase(it);
    } else {
      ++it;
    }
  }
  if (through > applied_) {
    applied_ = through;
    state_->PublishRevision(through);
  }
}

absl::StatusOr<storage::EtcdStore::Head> Follower::ReadHead() {
  const absl::Time as_of = clock_->Now();
  const uint64_t horizon_read = state_->BeginHorizonRead();
  SK_ASSIGN_OR_RETURN(const storage::EtcdStore::Head head, store_->ReadHead());
  {
    MutexLock lock(&mu_);
    pending_.push_back({as_of, head.last_write, head.revision});
    if (pending_.size() > kMaxPending) pending_.pop_front();
    ConfirmLocked();
  }
  cv_.SignalAll();
  // Outside mu_: it may finish calls waiting beyond the head.
  state_->EndHorizonRead(horizon_read, head.revision);
  return head;
}

absl::Status Follower::AwaitApplied(uint64_t revision, absl::Time deadline) {
  MutexLock lock(&mu_);
  if (cv_.WaitWithDeadline(&mu_, deadline,
                           [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
                             return applied_ >= revision || stopping_;
                           }) &&
      applied_ >= revision) {
    return absl::OkStatus();
  }
  if (stopping_) return absl::UnavailableError("server is shutting down");
  return absl::UnavailableError(absl::StrCat(
      "this replica has not applied revision ", revision, " yet (it is at ",
      applied_, "); it may be cut off from etcd"));
}

absl::Status Follower::CatchUp(absl::Time deadline) {
  absl::StatusOr<storage::EtcdStore::Head> head = ReadHead();
  if (!head.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "cannot read the cluster's revision: ", head.status().message()));
  }
  return AwaitApplied(head->last_write, deadline);
}

Follower::Status Follower::status() const {
  Status out;
  out.revision = state_->revision();
  out.lag = freshness_->Lag();
  out.serving = freshness_->fresh();
  MutexLock lock(&mu_);
  out.reloads = reloads_;
  out.feed_restarts = feed_restarts_;
  return out;
}

void Follower::RunFeeder() {
  while (true) {
    absl::Status end;
    {
      MutexLock lock(&mu_);
      cv_.Wait(&mu_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || feed_ended_ || restart_requested_ ||
               feed_ == nullptr;
      });
      if (stopping_) return;
      end = feed_ended_ ? feed_end_
                        : absl::DeadlineExceededError(absl::StrCat(
                              "the change feed delivered nothing for ",
                              absl::FormatDuration(options_.stall_timeout),
                              " while the cluster is ahead"));
      restart_requested_ = false;
      feed_running_ = false;
    }
    if (feed_ != nullptr) {
      LogWarning(absl::StrCat("replica change feed ended (", end.ToString(),
                              "); following again"));
    }
    feed_.reset();  // waits for its on_end
    absl::Status started;
    if (absl::IsOutOfRange(end)) {
      // The revisions still to apply were compacted: start afresh.
      LogWarning(
          "replica fell behind etcd's compaction; loading a fresh snapshot");
      started = LoadSnapshot(/*reload=*/true);
      MutexLock lock(&mu_);
      if (!started.ok()) {
        // Keep the cause: the next attempt must reload too.
        feed_ended_ = true;
        feed_end_ = end;
        feed_error_ = started;
      }
    }
    if (started.ok()) started = StartFeed();
    if (started.ok()) {
      MutexLock lock(&mu_);
      ++feed_restarts_;
      continue;
    }
    MutexLock lock(&mu_);
    cv_.WaitWithTimeout(
        &mu_, options_.retry_interval,
        [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; });
  }
}

void Follower::RunConfirmer() {
  while (true) {
    probe_requested_.store(false, std::memory_order_release);
    absl::Status last_error;
    const absl::StatusOr<storage::EtcdStore::Head> head = ReadHead();
    if (!head.ok()) last_error = head.status();
    {
      MutexLock lock(&mu_);
      const absl::Time now = clock_->Now();
      if (feed_running_ && !pending_.empty() &&
          now - pending_.front().as_of > options_.stall_timeout &&
          now - last_delivery_ > options_.stall_timeout) {
        restart_requested_ = true;
        cv_.SignalAll();
      }
      if (last_error.ok() && !feed_error_.ok()) last_error = feed_error_;
    }
    CheckServing(last_error);
    MutexLock lock(&mu_);
    cv_.WaitWithTimeout(
        &mu_, options_.confirm_interval,
        [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_ || probe_requested_.load(std::memory_order_acquire);
        });
    if (stopping_) return;
  }
}

void Follower::OnServingChange(std::function<void(bool serving)> fn) {
  MutexLock lock(&serving_mu_);
  on_serving_change_ = std::move(fn);
  if (on_serving_change_) on_serving_change_(serving_);
}

void Follower::CheckServing(const absl::Status& last_error) {
  const bool serving = freshness_->fresh();
  MutexLock lock(&serving_mu_);
  if (serving == serving_) return;
  serving_ = serving;
  if (serving) {
    LogInfo(absl::StrCat(
        "replica is current with the etcd cluster again (revision ",
        state_->revision(), "); serving decisions"));
  } else {
    LogError(absl::StrCat(
        "replica cannot confirm it is current with the etcd cluster for more "
        "than --max_staleness=",
        absl::FormatDuration(freshness_->max_staleness()),
        "; decisions fail closed (UNAVAILABLE) until it can (serving "
        "revision ",
        state_->revision(), "; last error: ",
        last_error.ok() ? std::string("none: the change feed is behind")
                        : last_error.ToString(),
        ")"));
  }
  if (on_serving_change_) on_serving_change_(serving);
}

}  // namespace scopekeeper
