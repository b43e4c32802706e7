#include "server/registry/change_feed.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace scopekeeper {

ChangeFeed::ChangeFeed(Registry* registry, ServingState* state,
                       const Clock* clock, Options options)
    : registry_(registry),
      state_(state),
      clock_(clock),
      options_(options),
      executor_(options.threads) {}

ChangeFeed::~ChangeFeed() {
  std::vector<std::shared_ptr<Stream>> open;
  {
    MutexLock lock(&streams_mu_);
    for (const std::weak_ptr<Stream>& weak : streams_) {
      if (std::shared_ptr<Stream> stream = weak.lock()) {
        open.push_back(std::move(stream));
      }
    }
  }
  for (const std::shared_ptr<Stream>& stream : open) {
    MutexLock lock(&stream->mu_);
    if (!stream->ended_) {
      stream->EndLocked(absl::UnavailableError("server is shutting down"));
    }
  }
}

absl::StatusOr<std::shared_ptr<ChangeFeed::Stream>> ChangeFeed::Open(
    uint64_t from_revision, bool end_when_caught_up, Sink* sink) {
  if (open_.fetch_add(1, std::memory_order_acq_rel) >= options_.max_streams) {
    open_.fetch_sub(1, std::memory_order_acq_rel);
    return absl::ResourceExhaustedError(
        absl::StrCat("too many watch streams open (", options_.max_streams,
                     "); close one or raise --max_watch_streams"));
  }
  auto stream =
      std::make_shared<Stream>(this, from_revision, end_when_caught_up, sink);
  {
    MutexLock lock(&streams_mu_);
    // Forget ended streams while here, so the list stays as long as the
    // open ones.
    streams_.erase(std::remove_if(streams_.begin(), streams_.end(),
                                  [](const std::weak_ptr<Stream>& s) {
                                    return s.expired();
                                  }),
                   streams_.end());
    streams_.push_back(stream);
  }
  return stream;
}

void ChangeFeed::Stream::Start() {
  feed_->executor_.Schedule([self = shared_from_this()] { self->Fetch(); });
}

void ChangeFeed::Sweep() {
  std::vector<std::shared_ptr<Stream>> streams;
  {
    MutexLock lock(&streams_mu_);
    for (const std::weak_ptr<Stream>& weak : streams_) {
      if (std::shared_ptr<Stream> stream = weak.lock()) {
        streams.push_back(std::move(stream));
      }
    }
  }
  const absl::Time now = clock_->Now();
  for (const std::shared_ptr<Stream>& stream : streams) {
    MutexLock lock(&stream->mu_);
    stream->SweepLocked(now);
  }
}

void ChangeFeed::Stream::Fetch() {
  uint64_t after;
  {
    MutexLock lock(&mu_);
    if (ended_) return;
    after = next_after_;
  }
  absl::StatusOr<std::vector<v1::WatchEvent>> changes =
      feed_->registry_->Changes(after, feed_->options_.page_size);
  MutexLock lock(&mu_);
  if (ended_) return;
  if (!changes.ok()) return EndLocked(changes.status());
  more_ = static_cast<int>(changes->size()) == feed_->options_.page_size;
  for (v1::WatchEvent& change : *changes) page_.push_back(std::move(change));
  ContinueLocked();
}

void ChangeFeed::Stream::Sent(bool ok) {
  MutexLock lock(&mu_);
  sending_ = false;
  if (ended_) return;
  if (!ok) return EndLocked(absl::CancelledError("the client went away"));
  next_after_ = page_.front().revision();
  page_.pop_front();
  ContinueLocked();
}

void ChangeFeed::Stream::ContinueLocked() {
  if (!page_.empty()) {
    sending_ = true;
    send_started_ = feed_->clock_->Now();
    sink_->Send(page_.front());
    return;
  }
  if (more_) {
    feed_->executor_.Schedule([self = shared_from_this()] { self->Fetch(); });
    return;
  }
  // Caught up with every change applied so far.
  if (end_when_caught_up_) return EndLocked(absl::OkStatus());
  // Park until the next revision is applied. The callback may run at once,
  // on this thread, with mu_ held: it only schedules.
  ChangeFeed* const feed = feed_;
  parked_ = feed_->state_->WhenApplied(
      next_after_ + 1, [self = shared_from_this(), feed](absl::Status status) {
        feed->executor_.Schedule(
            [self, status = std::move(status)] { self->Woken(status); });
      });
}

void ChangeFeed::Stream::Woken(const absl::Status& status) {
  {
    MutexLock lock(&mu_);
    parked_ = 0;
    if (ended_) return;
    if (!status.ok()) return EndLocked(status);
  }
  Fetch();
}

void ChangeFeed::Stream::Cancel() {
  MutexLock lock(&mu_);
  if (ended_) return;
  if (parked_ != 0) feed_->state_->CancelWait(parked_);
  EndLocked(absl::CancelledError("watch cancelled by the client"));
}

void ChangeFeed::Stream::SweepLocked(absl::Time now) {
  if (ended_ || !sending_) return;
  if (now - send_started_ < feed_->options_.stall_timeout) return;
  EndLocked(absl::ResourceExhaustedError(
      absl::StrCat("the watch client took no event for ",
                   absl::FormatDuration(feed_->options_.stall_timeout),
                   "; the stream is ended to bound its memory")));
}

void ChangeFeed::Stream::EndLocked(const absl::Status& status) {
  ended_ = true;
  page_.clear();
  feed_->open_.fetch_sub(1, std::memory_order_acq_rel);
  sink_->End(status);
}

}  // namespace scopekeeper
