#include "server/decision/key_cache.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"

namespace scopekeeper {
namespace {

constexpr size_t kMaxShards = 64;
// A bounded cache gets one shard per this many entries (at most kMaxShards),
// so even a tiny capacity is exact and a large one spreads its locks.
constexpr size_t kMinEntriesPerShard = 4096;

size_t ShardCount(size_t capacity) {
  if (capacity == KeyCache::kUnbounded) return kMaxShards;
  return std::clamp<size_t>(capacity / kMinEntriesPerShard, 1, kMaxShards);
}

// BulkLoader: entries per batch, and batches queued before Add() waits.
constexpr size_t kLoaderBatch = 4096;
constexpr size_t kLoaderMaxQueued = 4;

}  // namespace

KeyCache::KeyCache(size_t capacity)
    : capacity_(capacity), shards_(ShardCount(capacity)) {
  if (!bounded()) return;
  // Split the capacity exactly: the first `capacity % n` shards get one more.
  const size_t n = shards_.size();
  for (size_t i = 0; i < n; ++i) {
    shards_[i].capacity = capacity / n + (i < capacity % n ? 1 : 0);
    WriterMutexLock lock(&shards_[i].mu);
    shards_[i].table.set_track_references();
  }
}

bool KeyCache::Find(const SecretDigest& digest, Entry* out) const {
  const Shard& shard = ShardFor(digest);
  ReaderMutexLock lock(&shard.mu);
  const size_t i = shard.table.Find(digest);
  if (i == KeyTable::kNotFound) return false;
  out->key = shard.table.key(i);
  out->secret_expire_time = shard.table.secret_expire_time(i);
  // Only bounded caches evict; a complete one leaves its lines unwritten.
  if (bounded()) shard.table.MarkReferenced(i);
  return true;
}

void KeyCache::Prefetch(const SecretDigest& digest) const {
  const Shard& shard = ShardFor(digest);
  ReaderMutexLock lock(&shard.mu);
  shard.table.Prefetch(digest);
}

void KeyCache::PrefetchKey(const SecretDigest& digest) const {
  const Shard& shard = ShardFor(digest);
  ReaderMutexLock lock(&shard.mu);
  shard.table.PrefetchKey(digest);
}

bool KeyCache::Contains(const SecretDigest& digest) const {
  const Shard& shard = ShardFor(digest);
  ReaderMutexLock lock(&shard.mu);
  return shard.table.Find(digest) != KeyTable::kNotFound;
}

void KeyCache::EvictOneLocked(Shard& shard, Released* released) {
  while (!shard.ring.empty()) {
    const SecretDigest victim = shard.ring.front();
    shard.ring.pop_front();
    const size_t i = shard.table.Find(victim);
    if (i == KeyTable::kNotFound) continue;  // erased since it was inserted
    if (shard.table.TakeReferenced(i)) {
      shard.ring.push_back(victim);  // second chance
      continue;
    }
    released->evicted = shard.table.EraseAt(i);
    size_.fetch_sub(1, std::memory_order_relaxed);
    evictions_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
}

void KeyCache::InsertLocked(Shard& shard, const SecretDigest& digest,
                            Entry entry, Released* released) {
  KeyTable& table = shard.table;
  if (bounded() && table.Find(digest) == KeyTable::kNotFound) {
    if (table.size() >= shard.capacity) EvictOneLocked(shard, released);
    shard.ring.push_back(digest);
    // Erased digests stay in the ring until the hand reaches them: rebuild
    // it when they outnumber the live ones.
    if (shard.ring.size() > 2 * table.size() + 64) {
      shard.ring.clear();
      for (size_t i : table.Occupied()) shard.ring.push_back(table.digest(i));
      shard.ring.push_back(digest);
    }
  }
  if (table.Set(digest, std::move(entry.key), entry.secret_expire_time,
                &released->replaced)) {
    size_.fetch_add(1, std::memory_order_relaxed);
  }
}

void KeyCache::Upsert(const SecretDigest& digest, Entry entry) {
  Shard& shard = ShardFor(digest);
  Released released;  // freed outside the lock
  WriterMutexLock lock(&shard.mu);
  ++shard.write_epoch;
  InsertLocked(shard, digest, std::move(entry), &released);
}

bool KeyCache::ReplaceIf(const SecretDigest& digest,
                         const CompiledKey* expected, Entry entry) {
  Shard& shard = ShardFor(digest);
  std::shared_ptr<const CompiledKey> replaced;  // freed outside the lock
  WriterMutexLock lock(&shard.mu);
  const size_t i = shard.table.Find(digest);
  if (i == KeyTable::kNotFound || shard.table.key(i).get() != expected) {
    return false;
  }
  ++shard.write_epoch;
  shard.table.Set(digest, std::move(entry.key), entry.secret_expire_time,
                  &replaced);
  return true;
}

void KeyCache::Erase(const SecretDigest& digest) {
  Shard& shard = ShardFor(digest);
  std::shared_ptr<const CompiledKey> erased;  // freed outside the lock
  WriterMutexLock lock(&shard.mu);
  ++shard.write_epoch;
  const size_t i = shard.table.Find(digest);
  if (i == KeyTable::kNotFound) return;
  erased = shard.table.EraseAt(i);
  size_.fetch_sub(1, std::memory_order_relaxed);
}

void KeyCache::EraseIf(const std::function<bool(const SecretDigest&)>& drop) {
  std::vector<std::shared_ptr<const CompiledKey>> erased;  // freed unlocked
  std::vector<SecretDigest> dropped;
  for (Shard& shard : shards_) {
    {
      WriterMutexLock lock(&shard.mu);
      ++shard.write_epoch;
      KeyTable& table = shard.table;
      dropped.clear();
      for (size_t i : table.Occupied()) {
        if (drop(table.digest(i))) dropped.push_back(table.digest(i));
      }
      // Erasing moves entries: each is found again.
      for (const SecretDigest& digest : dropped) {
        erased.push_back(table.EraseAt(table.Find(digest)));
        size_.fetch_sub(1, std::memory_order_relaxed);
      }
    }
    erased.clear();
  }
}

void KeyCache::Recompile(const std::function<std::shared_ptr<const CompiledKey>(
                             const std::shared_ptr<const CompiledKey>&)>& fn) {
  // Old key -> (old key, new key). A key with several secrets (rotation) has
  // entries in several shards: compile it once. The old keys are held until
  // the end so no address here can be reused by another key meanwhile.
  absl::flat_hash_map<const CompiledKey*,
                      std::pair<std::shared_ptr<const CompiledKey>,
                                std::shared_ptr<const CompiledKey>>>
      done;
  std::vector<std::shared_ptr<const CompiledKey>> todo;
  for (Shard& shard : shards_) {
    todo.clear();
    {
      WriterMutexLock lock(&shard.mu);
      // Readers' inserts from here on were read after the change that
      // called this (set before it), so they need no recompiling.
      ++shard.write_epoch;
      for (size_t i : shard.table.Occupied()) {
        const std::shared_ptr<const CompiledKey>& key = shard.table.key(i);
        if (!done.contains(key.get())) todo.push_back(key);
      }
    }
    // Compiled without the lock (fn may read the store): readers of this
    // shard keep finding the old entries meanwhile.
    for (const std::shared_ptr<const CompiledKey>& key : todo) {
      auto [it, inserted] = done.try_emplace(key.get());
      if (inserted) it->second = {key, fn(key)};
    }
    WriterMutexLock lock(&shard.mu);
    // The old keys are still held in `done`: none is freed under the lock.
    KeyTable& table = shard.table;
    for (size_t i : table.Occupied()) {
      auto it = done.find(table.key(i).get());
      if (it != done.end()) table.SetKeyAt(i, it->second.second);
    }
  }
}

KeyCache::Epoch KeyCache::WriteEpoch(const SecretDigest& digest) const {
  const Shard& shard = ShardFor(digest);
  ReaderMutexLock lock(&shard.mu);
  return shard.write_epoch;
}

bool KeyCache::InsertIfUnchanged(const SecretDigest& digest, Entry entry,
                                 Epoch epoch) {
  if (!bounded()) return false;
  Shard& shard = ShardFor(digest);
  Released released;  // freed outside the lock
  WriterMutexLock lock(&shard.mu);
  if (shard.write_epoch != epoch ||
      shard.table.Find(digest) != KeyTable::kNotFound) {
    return false;
  }
  InsertLocked(shard, digest, std::move(entry), &released);
  return true;
}

KeyCache::BulkLoader::BulkLoader(KeyCache* cache)
    : cache_(cache), thread_([this] { Run(); }) {
  batch_.reserve(kLoaderBatch);
}

void KeyCache::BulkLoader::Add(const SecretDigest& digest, Entry entry) {
  batch_.emplace_back(digest, std::move(entry));
  if (batch_.size() == kLoaderBatch) Flush();
}

void KeyCache::BulkLoader::Flush() {
  {
    MutexLock lock(&mu_);
    cv_.Wait(&mu_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return queue_.size() < kLoaderMaxQueued;
    });
    queue_.push_back(std::move(batch_));
    cv_.SignalAll();
  }
  batch_ = Batch();
  batch_.reserve(kLoaderBatch);
}

void KeyCache::BulkLoader::Finish() {
  if (finished_) return;
  finished_ = true;
  if (!batch_.empty()) Flush();
  {
    MutexLock lock(&mu_);
    done_ = true;
  }
  cv_.SignalAll();
  thread_.join();
}

void KeyCache::BulkLoader::Run() {
  for (;;) {
    Batch batch;
    {
      MutexLock lock(&mu_);
      cv_.Wait(&mu_, [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || done_;
      });
      if (queue_.empty()) return;
      batch = std::move(queue_.front());
      queue_.pop_front();
    }
    cv_.SignalAll();  // room for the adder
    for (auto& [digest, entry] : batch)
      cache_->Upsert(digest, std::move(entry));
  }
}

}  // namespace scopekeeper
