// KeyCache: secret digest -> compiled key, in memory, in front of the Store.
//
// Sharded; each shard is a KeyTable (compact fingerprint slots, full digests
// beside them: see key_table.h) under a WriterPreferringMutex held (shared by
// readers) only for one table operation, so lookups never wait behind a
// write for longer than an insert, and never touch storage. A lookup is a
// hit only when the full digest matches, never on a fingerprint alone.
// Writer preference matters: a stream of readers must not starve a
// revocation under full load (see base/rw_mutex.h).
//
// Two modes, chosen at construction:
//  * Complete (capacity kUnbounded, the default): every key is cached. The
//    Registry loads the whole key set at start and writes every change, so a
//    miss means "no such key" (readers still confirm it in the store, and
//    never insert).
//  * Bounded (capacity N > 0): at most N digests are cached; the rest live
//    only in the Store. Inserting into a full shard evicts an entry chosen
//    by CLOCK (second chance: entries found since the hand last passed are
//    kept), so hot keys stay cached. Readers that miss read the store and
//    offer what they read back with InsertIfUnchanged().
//
// Consistency protocol (see Registry and DecisionEngine::LookupKey): writers
// Upsert() every digest of a key after the Store commit and before the RPC
// returns, and Erase() digests a key no longer has; each such write (and
// Recompile()) advances the shard's write epoch. A reader that misses takes
// WriteEpoch() *before* reading the store, and InsertIfUnchanged() inserts
// only if no writer touched the shard since: a record read from the store
// can never overwrite a newer one a writer put in the cache meanwhile.
#ifndef SCOPEKEEPER_SERVER_DECISION_KEY_CACHE_H_
#define SCOPEKEEPER_SERVER_DECISION_KEY_CACHE_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"
#include "base/mutex.h"
#include "base/rw_mutex.h"
#include "server/decision/compiled_key.h"
#include "server/decision/key_table.h"
#include "server/policy/key_secret.h"

namespace scopekeeper {

// Thread-safe.
class KeyCache {
 public:
  static constexpr size_t kUnbounded = 0;

  struct Entry {
    std::shared_ptr<const CompiledKey> key;
    // This secret stops authenticating at this time (rotation grace period).
    // Kept to the nanosecond, rounded toward the past: Find() may return an
    // earlier time by less than 1 ns, never a later one; times after 2262
    // come back as InfiniteFuture(), times before 1678 as InfinitePast().
    absl::Time secret_expire_time = absl::InfiniteFuture();
  };
  // A shard's count of writer changes (see the file comment).
  using Epoch = uint64_t;

  // `capacity`: most digests held, or kUnbounded for a complete cache.
  explicit KeyCache(size_t capacity = kUnbounded);
  KeyCache(const KeyCache&) = delete;
  KeyCache& operator=(const KeyCache&) = delete;

  bool bounded() const { return capacity_ != kUnbounded; }
  size_t capacity() const { return capacity_; }

  // Find() copies the entry for `digest` into `*out`; false when absent.
  // Counts as a use for eviction.
  bool Find(const SecretDigest& digest, Entry* out) const;
  // Prefetch() starts loading the hash-table probe of `digest`, and
  // PrefetchKey() (once that is loaded) the key of its entry, so a batch can
  // overlap the cache misses of its lookups instead of taking them one
  // after the other. Hints only: no effect on any result.
  void Prefetch(const SecretDigest& digest) const;
  void PrefetchKey(const SecretDigest& digest) const;
  // Contains() is whether `digest` is cached; not a use.
  bool Contains(const SecretDigest& digest) const;

  // Writers (the Registry, once a change is durable):
  // Upsert() sets the entry for `digest` (evicting another if the shard is
  // full).
  void Upsert(const SecretDigest& digest, Entry entry);
  // Erase() removes the entry for `digest`, if any.
  void Erase(const SecretDigest& digest);
  // ReplaceIf() sets the entry for `digest` to `entry` if the entry there
  // still holds the key `expected` (compare and swap): a writer compiling
  // off its writer thread never overwrites a newer Upsert(). Returns
  // whether it replaced.
  bool ReplaceIf(const SecretDigest& digest, const CompiledKey* expected,
                 Entry entry);
  // EraseIf() removes every entry whose digest `drop` selects (called under
  // a shard lock: it must be quick and must not use the cache). Used when a
  // replica reloads the whole key set.
  void EraseIf(const std::function<bool(const SecretDigest&)>& drop);
  // Recompile() replaces every entry's key with fn(key) (one call per
  // distinct key, made without holding a shard lock). Used after a policy or
  // app change, which must be in force before the call; entries stay
  // readable throughout. Not concurrent with Upsert() or Erase().
  void Recompile(const std::function<std::shared_ptr<const CompiledKey>(
                     const std::shared_ptr<const CompiledKey>&)>& fn);

  // BulkLoader inserts entries with Upsert() on a thread of its own, in
  // batches, so the thread that reads and compiles the key set at start-up
  // does not also pay for the hash-table inserts (about half of the work).
  // Add() blocks while the loader is several batches behind. Not
  // thread-safe: one thread adds.
  class BulkLoader {
   public:
    explicit BulkLoader(KeyCache* cache);
    ~BulkLoader() { Finish(); }
    BulkLoader(const BulkLoader&) = delete;
    BulkLoader& operator=(const BulkLoader&) = delete;

    void Add(const SecretDigest& digest, Entry entry) ABSL_LOCKS_EXCLUDED(mu_);
    // Finish() returns once everything added is in the cache.
    void Finish() ABSL_LOCKS_EXCLUDED(mu_);

   private:
    using Batch = std::vector<std::pair<SecretDigest, Entry>>;
    void Flush() ABSL_LOCKS_EXCLUDED(mu_);  // queues batch_
    void Run() ABSL_LOCKS_EXCLUDED(mu_);    // the loader thread

    KeyCache* const cache_;
    Batch batch_;  // the adding thread's
    Mutex mu_;
    CondVar cv_;  // queue_ or done_ changed
    std::deque<Batch> queue_ ABSL_GUARDED_BY(mu_);
    bool done_ ABSL_GUARDED_BY(mu_) = false;  // no more batches
    bool finished_ = false;                   // the adding thread's
    std::thread thread_;  // last: starts once the rest exists
  };

  // Readers filling a bounded cache after a miss:
  // WriteEpoch() is the write epoch of `digest`'s shard.
  Epoch WriteEpoch(const SecretDigest& digest) const;
  // InsertIfUnchanged() inserts `entry` for `digest` if the cache is bounded,
  // has no entry for it, and no writer changed its shard since WriteEpoch()
  // returned `epoch`. Returns whether it inserted.
  bool InsertIfUnchanged(const SecretDigest& digest, Entry entry, Epoch epoch);

  // size() is the number of digests cached.
  size_t size() const { return size_.load(std::memory_order_relaxed); }
  // evictions() counts entries evicted to make room.
  uint64_t evictions() const {
    return evictions_.load(std::memory_order_relaxed);
  }

 private:
  struct Shard {
    mutable WriterPreferringMutex mu;
    // Bounded caches track references: found since the CLOCK's hand passed.
    KeyTable table ABSL_GUARDED_BY(mu);
    // Bounded caches only: digests in insertion order, the CLOCK's ring
    // (front = hand). May hold digests erased since; every cached digest is
    // in it at least once.
    std::deque<SecretDigest> ring ABSL_GUARDED_BY(mu);
    Epoch write_epoch ABSL_GUARDED_BY(mu) = 0;
    size_t capacity = 0;  // bounded caches only
  };

  Shard& ShardFor(const SecretDigest& d) {
    return shards_[d.bytes[31] % shards_.size()];
  }
  const Shard& ShardFor(const SecretDigest& d) const {
    return shards_[d.bytes[31] % shards_.size()];
  }
  // Keys taken out under a shard lock, freed by the caller after it.
  struct Released {
    std::shared_ptr<const CompiledKey> replaced, evicted;
  };
  // InsertLocked() sets the entry for `digest` in `shard`, evicting another
  // first if the shard is bounded and full.
  void InsertLocked(Shard& shard, const SecretDigest& digest, Entry entry,
                    Released* released) ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);
  // EvictOneLocked() removes the CLOCK's victim from a bounded `shard`.
  void EvictOneLocked(Shard& shard, Released* released)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(shard.mu);

  const size_t capacity_;
  std::vector<Shard> shards_;
  // size_ is written by inserts and erases: kept a cache line away from
  // shards_, which every lookup reads. (Padding, not alignas: over-aligned
  // objects are misplaced by ASan's fake stack frames.)
  char pad_[64] = {};
  std::atomic<size_t> size_{0};
  std::atomic<uint64_t> evictions_{0};
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_DECISION_KEY_CACHE_H_
