#include "server/key_cache.h"

#include <mutex>
#include <shared_mutex>

namespace scopekeeper {

bool KeyCache::Find(const SecretDigest& digest, Entry* out) const {
  const Shard& shard = ShardFor(digest);
  std::shared_lock<WriterPreferringMutex> lock(shard.mu);
  auto it = shard.map.find(digest);
  if (it == shard.map.end()) return false;
  *out = it->second;
  return true;
}

void KeyCache::Upsert(const SecretDigest& digest, Entry entry) {
  Shard& shard = ShardFor(digest);
  std::shared_ptr<const CompiledKey> old;  // released outside the lock
  {
    std::unique_lock<WriterPreferringMutex> lock(shard.mu);
    Entry& slot = shard.map[digest];
    old = std::move(slot.key);
    slot = std::move(entry);
  }
}

void KeyCache::Erase(const SecretDigest& digest) {
  Shard& shard = ShardFor(digest);
  std::unique_lock<WriterPreferringMutex> lock(shard.mu);
  shard.map.erase(digest);
}

void KeyCache::Recompile(const std::function<std::shared_ptr<const CompiledKey>(
                             const std::shared_ptr<const CompiledKey>&)>& fn) {
  // A key with several secrets (rotation) has entries in several shards:
  // compile it once.
  absl::flat_hash_map<const CompiledKey*, std::shared_ptr<const CompiledKey>>
      done;
  for (Shard& shard : shards_) {
    std::unique_lock<WriterPreferringMutex> lock(shard.mu);
    for (auto& [digest, entry] : shard.map) {
      auto [it, inserted] = done.try_emplace(entry.key.get());
      if (inserted) it->second = fn(entry.key);
      entry.key = it->second;
    }
  }
}

size_t KeyCache::size() const {
  size_t n = 0;
  for (const Shard& shard : shards_) {
    std::shared_lock<WriterPreferringMutex> lock(shard.mu);
    n += shard.map.size();
  }
  return n;
}

}  // namespace scopekeeper
