#include "server/decision/key_table.h"

#include <algorithm>
#include <limits>
#include <utility>

namespace scopekeeper {
namespace {

constexpr size_t kMinCapacity = 16;
// Grow when more than kMaxLoadNum/kMaxLoadDen of the slots are taken.
constexpr size_t kMaxLoadNum = 4;
constexpr size_t kMaxLoadDen = 5;

}  // namespace

int64_t KeyTable::ToExpireNanos(absl::Time t) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  if (t >= absl::FromUnixNanos(kMax)) return kMax;
  if (t <= absl::FromUnixNanos(kMin)) return kMin;
  return absl::ToUnixNanos(t);  // rounds toward the past
}

absl::Time KeyTable::FromExpireNanos(int64_t nanos) {
  if (nanos == std::numeric_limits<int64_t>::max()) {
    return absl::InfiniteFuture();
  }
  if (nanos == std::numeric_limits<int64_t>::min()) {
    return absl::InfinitePast();
  }
  return absl::FromUnixNanos(nanos);
}

size_t KeyTable::Find(const SecretDigest& digest) const {
  if (size_ == 0) return kNotFound;
  const uint64_t fingerprint = Fingerprint(digest);
  for (size_t i = Home(fingerprint);; i = Next(i)) {
    const uint64_t f = slots_[i].fingerprint;
    if (f == 0) return kNotFound;
    // The fingerprint only selects: the full digest decides.
    if (f == fingerprint && digests_[i] == digest) return i;
  }
}

void KeyTable::Prefetch(const SecretDigest& digest) const {
  if (capacity_ == 0) return;
  __builtin_prefetch(&slots_[Home(Fingerprint(digest))]);
}

void KeyTable::PrefetchKey(const SecretDigest& digest) const {
  const size_t i = Find(digest);
  if (i != kNotFound) __builtin_prefetch(slots_[i].key.get());
}

bool KeyTable::Set(const SecretDigest& digest, KeyPtr key,
                   absl::Time secret_expire_time, KeyPtr* replaced) {
  const size_t found = Find(digest);
  if (found != kNotFound) {
    *replaced = std::move(slots_[found].key);
    slots_[found].key = std::move(key);
    slots_[found].secret_expire_nanos = ToExpireNanos(secret_expire_time);
    return false;
  }
  if ((size_ + 1) * kMaxLoadDen > capacity_ * kMaxLoadNum) Grow();
  const uint64_t fingerprint = Fingerprint(digest);
  size_t i = Home(fingerprint);
  while (slots_[i].fingerprint != 0) i = Next(i);
  slots_[i].fingerprint = fingerprint;
  slots_[i].secret_expire_nanos = ToExpireNanos(secret_expire_time);
  slots_[i].key = std::move(key);
  digests_[i] = digest;
  if (track_references_) {
    referenced_[i].store(false, std::memory_order_relaxed);
  }
  ++size_;
  return true;
}

KeyTable::KeyPtr KeyTable::SetKeyAt(size_t i, KeyPtr key) {
  KeyPtr old = std::move(slots_[i].key);
  slots_[i].key = std::move(key);
  return old;
}

KeyTable::KeyPtr KeyTable::EraseAt(size_t i) {
  KeyPtr erased = std::move(slots_[i].key);
  slots_[i].fingerprint = 0;
  --size_;
  // Backward shift: move each later entry of the probe run whose home is
  // not in (hole, entry] into the hole, so every entry stays reachable from
  // its home without crossing an empty slot.
  size_t hole = i;
  for (size_t j = Next(i);; j = Next(j)) {
    const uint64_t f = slots_[j].fingerprint;
    if (f == 0) break;
    const size_t home = Home(f);
    // Is `home` cyclically within (hole, j]? Then the entry stays.
    const bool stays =
        hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (stays) continue;
    slots_[hole].fingerprint = f;
    slots_[hole].secret_expire_nanos = slots_[j].secret_expire_nanos;
    slots_[hole].key = std::move(slots_[j].key);
    digests_[hole] = digests_[j];
    if (track_references_) {
      referenced_[hole].store(referenced_[j].load(std::memory_order_relaxed),
                              std::memory_order_relaxed);
    }
    slots_[j].fingerprint = 0;
    hole = j;
  }
  return erased;
}

void KeyTable::MarkReferenced(size_t i) const {
  // Read first, so a hot entry's line is written once per pass of the hand.
  if (!referenced_[i].load(std::memory_order_relaxed)) {
    referenced_[i].store(true, std::memory_order_relaxed);
  }
}

bool KeyTable::TakeReferenced(size_t i) {
  return referenced_[i].exchange(false, std::memory_order_relaxed);
}

void KeyTable::Grow() {
  const size_t old_capacity = capacity_;
  std::unique_ptr<Slot[]> old_slots = std::move(slots_);
  std::unique_ptr<SecretDigest[]> old_digests = std::move(digests_);
  std::unique_ptr<std::atomic<bool>[]> old_referenced = std::move(referenced_);
  capacity_ = std::max(kMinCapacity, old_capacity + old_capacity / 2);
  slots_ = std::make_unique<Slot[]>(capacity_);
  digests_ = std::make_unique<SecretDigest[]>(capacity_);
  if (track_references_) {
    referenced_ = std::make_unique<std::atomic<bool>[]>(capacity_);
  }
  for (size_t j = 0; j < old_capacity; ++j) {
    Slot& from = old_slots[j];
    if (from.fingerprint == 0) continue;
    size_t i = Home(from.fingerprint);
    while (slots_[i].fingerprint != 0) i = Next(i);
    slots_[i] = std::move(from);
    digests_[i] = old_digests[j];
    if (track_references_) {
      referenced_[i].store(old_referenced[j].load(std::memory_order_relaxed),
                           std::memory_order_relaxed);
    }
  }
}

}  // namespace scopekeeper
