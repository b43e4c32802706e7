// KeyTable: one KeyCache shard's map from secret digest to cache entry.
//
// Open addressing, linear probing, over 32-byte slots: a 64-bit fingerprint
// of the digest (its first 8 bytes with the low bit set, so 0 marks an empty
// slot), the compiled key and the secret's expiry. The full digests sit in a
// parallel array. A lookup reads consecutive slots (two per cache line) and,
// only where a fingerprint matches, the digest at the same index -- whose
// line and the key's can load in parallel, as both addresses are known from
// the slot. Fingerprints collide (64 bits of 2^256 digests, and the low bit
// is fixed): a fingerprint match is never a hit until the full digest at
// that index equals the one looked up.
//
// Grows by half when more than 4/5 full; erasure shifts later entries of the
// probe run back (no tombstones). Indexes returned by Find() are valid until
// the next Set() or EraseAt().
//
// Not thread-safe: KeyCache's shard lock guards each table. The one
// exception is the CLOCK reference bit (set_track_references()), which
// readers holding the lock shared may set.
#ifndef SCOPEKEEPER_SERVER_DECISION_KEY_TABLE_H_
#define SCOPEKEEPER_SERVER_DECISION_KEY_TABLE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/time/time.h"
#include "server/decision/compiled_key.h"
#include "server/policy/key_secret.h"

namespace scopekeeper {

class KeyTable {
 public:
  using KeyPtr = std::shared_ptr<const CompiledKey>;
  static constexpr size_t kNotFound = ~size_t{0};

  KeyTable() = default;
  KeyTable(const KeyTable&) = delete;
  KeyTable& operator=(const KeyTable&) = delete;

  // Fingerprint() is what a slot keeps of `digest`: never 0.
  static uint64_t Fingerprint(const SecretDigest& digest) {
    uint64_t prefix;
    __builtin_memcpy(&prefix, digest.bytes.data(), sizeof(prefix));
    return prefix | 1;
  }

  // set_track_references() keeps a CLOCK reference bit per entry from now
  // on. REQUIRES: the table is empty and has never grown.
  void set_track_references() { track_references_ = true; }

  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }

  // Find() is the index of `digest`, or kNotFound.
  size_t Find(const SecretDigest& digest) const;
  // Prefetch() starts loading the first slot `digest` probes; PrefetchKey()
  // (once that is loaded) its key. Hints only.
  void Prefetch(const SecretDigest& digest) const;
  void PrefetchKey(const SecretDigest& digest) const;

  // Accessors of an occupied index.
  const SecretDigest& digest(size_t i) const { return digests_[i]; }
  const KeyPtr& key(size_t i) const { return slots_[i].key; }
  absl::Time secret_expire_time(size_t i) const {
    return FromExpireNanos(slots_[i].secret_expire_nanos);
  }
  bool occupied(size_t i) const { return slots_[i].fingerprint != 0; }

  // Set() makes `digest` map to (`key`, `secret_expire_time`); returns true
  // if it was not in the table. The key it replaced, if any, goes to
  // `*replaced` (for the caller to free outside its lock). A replaced entry
  // keeps its reference bit; a new one starts clear.
  bool Set(const SecretDigest& digest, KeyPtr key,
           absl::Time secret_expire_time, KeyPtr* replaced);
  // SetKeyAt() replaces the key of occupied index `i`, returning the old.
  KeyPtr SetKeyAt(size_t i, KeyPtr key);
  // EraseAt() removes occupied index `i`; returns its key.
  KeyPtr EraseAt(size_t i);

  // CLOCK reference bit of occupied index `i` (tables tracking references
  // only). MarkReferenced() may be called under a shared lock.
  void MarkReferenced(size_t i) const;
  // TakeReferenced() clears the bit and returns what it was.
  bool TakeReferenced(size_t i);

  // Occupied() ranges over the occupied indices, in index order:
  //   for (size_t i : table.Occupied()) ...
  // The loop must not insert or erase (SetKeyAt() is fine). A plain loop
  // rather than a callback, so that clang's lock analysis sees the guarded
  // table used under the caller's lock (it does not follow a lock into a
  // lambda).
  class OccupiedIndices {
   public:
    class Iterator {
     public:
      size_t operator*() const { return i_; }
      Iterator& operator++() {
        i_ = table_->NextOccupied(i_ + 1);
        return *this;
      }
      bool operator!=(const Iterator& other) const { return i_ != other.i_; }

     private:
      friend class OccupiedIndices;
      Iterator(const KeyTable* table, size_t i) : table_(table), i_(i) {}
      const KeyTable* table_;
      size_t i_;
    };
    Iterator begin() const { return {table_, table_->NextOccupied(0)}; }
    Iterator end() const { return {table_, table_->capacity_}; }

   private:
    friend class KeyTable;
    explicit OccupiedIndices(const KeyTable* table) : table_(table) {}
    const KeyTable* table_;
  };
  OccupiedIndices Occupied() const { return OccupiedIndices(this); }

 private:
  struct Slot {
    uint64_t fingerprint = 0;  // 0: empty
    int64_t secret_expire_nanos = 0;
    KeyPtr key;
  };
  static_assert(sizeof(Slot) == 32, "two slots per cache line");

  // The secret's expiry in Unix nanoseconds, saturated: INT64_MAX is the
  // infinite future, INT64_MIN the infinite past. Finite times beyond those
  // bounds (before 1678, after 2262) saturate; rounding is toward the past,
  // so an expiry never moves later.
  static int64_t ToExpireNanos(absl::Time t);
  static absl::Time FromExpireNanos(int64_t nanos);

  size_t Home(uint64_t fingerprint) const {
    return static_cast<size_t>(
        (static_cast<unsigned __int128>(fingerprint) * capacity_) >> 64);
  }
  size_t Next(size_t i) const { return i + 1 == capacity_ ? 0 : i + 1; }
  // NextOccupied() is the first occupied index at or after `i`, or
  // capacity_.
  size_t NextOccupied(size_t i) const {
    while (i < capacity_ && slots_[i].fingerprint == 0) ++i;
    return i;
  }
  // Grow() rehashes into a larger table.
  void Grow();

  bool track_references_ = false;
  size_t size_ = 0;
  size_t capacity_ = 0;
  std::unique_ptr<Slot[]> slots_;
  std::unique_ptr<SecretDigest[]> digests_;
  // Per index, tables tracking references only.
  std::unique_ptr<std::atomic<bool>[]> referenced_;
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_DECISION_KEY_TABLE_H_
