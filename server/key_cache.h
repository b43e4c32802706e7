// KeyCache: secret digest -> compiled key, in memory, in front of the Store.
//
// Sharded; each shard is a flat_hash_map under a WriterPreferringMutex held
// (shared by readers) only for one map operation, so lookups never wait
// behind a write for longer than a hash-map insert, and never touch storage.
// Writer preference matters: a stream of readers must not starve a
// revocation under full load (see server/rw_mutex.h).
//
// Consistency protocol (see Registry): writers Upsert() every digest of a key
// after the Store commit and before the RPC returns, and Erase() digests a
// key no longer has. The cache is loaded completely at start, so readers
// that miss read the store but never insert (see DecisionEngine::LookupKey).
#ifndef SCOPEKEEPER_SERVER_KEY_CACHE_H_
#define SCOPEKEEPER_SERVER_KEY_CACHE_H_

#include <array>
#include <functional>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "server/compiled_key.h"
#include "server/key_secret.h"
#include "server/rw_mutex.h"

namespace scopekeeper {

// Thread-safe.
class KeyCache {
 public:
  struct Entry {
    std::shared_ptr<const CompiledKey> key;
    // This secret stops authenticating at this time (rotation grace period).
    absl::Time secret_expire_time = absl::InfiniteFuture();
  };

  // Find() copies the entry for `digest` into `*out`; false when absent.
  bool Find(const SecretDigest& digest, Entry* out) const;
  // Upsert() sets the entry for `digest`.
  void Upsert(const SecretDigest& digest, Entry entry);
  // Erase() removes the entry for `digest`, if any.
  void Erase(const SecretDigest& digest);
  // Recompile() replaces every entry's key with fn(key) (one call per
  // distinct key). Used after a policy change; entries stay readable.
  void Recompile(const std::function<std::shared_ptr<const CompiledKey>(
                     const std::shared_ptr<const CompiledKey>&)>& fn);
  // size() is the number of digests cached.
  size_t size() const;

 private:
  static constexpr int kShards = 64;
  struct Shard {
    mutable WriterPreferringMutex mu;
    absl::flat_hash_map<SecretDigest, Entry> map ABSL_GUARDED_BY(mu);
  };
  Shard& ShardFor(const SecretDigest& d) {
    return shards_[d.bytes[31] % kShards];
  }
  const Shard& ShardFor(const SecretDigest& d) const {
    return shards_[d.bytes[31] % kShards];
  }
  std::array<Shard, kShards> shards_;
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_KEY_CACHE_H_
