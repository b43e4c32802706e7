// ScopeSet: a set of interned scope ids (small integers assigned in policy
// declaration order) as a bitset. Ids are only meaningful within one
// PolicySnapshot.
#ifndef SCOPEKEEPER_SERVER_POLICY_SCOPE_SET_H_
#define SCOPEKEEPER_SERVER_POLICY_SCOPE_SET_H_

#include <cstdint>

#include "absl/container/inlined_vector.h"

namespace scopekeeper {

// A value type; not thread-safe for concurrent mutation.
class ScopeSet {
 public:
  void Add(int id) {
    const size_t word = static_cast<size_t>(id) / 64;
    if (word >= words_.size()) words_.resize(word + 1, 0);
    words_[word] |= uint64_t{1} << (id % 64);
  }
  bool Contains(int id) const {
    const size_t word = static_cast<size_t>(id) / 64;
    return word < words_.size() && (words_[word] >> (id % 64)) & 1;
  }
  void AddAll(const ScopeSet& other) {
    if (other.words_.size() > words_.size()) {
      words_.resize(other.words_.size(), 0);
    }
    for (size_t i = 0; i < other.words_.size(); ++i)
      words_[i] |= other.words_[i];
  }
  // ContainsAll() is true when every id of `other` is in this set.
  bool ContainsAll(const ScopeSet& other) const {
    for (size_t i = 0; i < other.words_.size(); ++i) {
      const uint64_t mine = i < words_.size() ? words_[i] : 0;
      if (other.words_[i] & ~mine) return false;
    }
    return true;
  }
  // Intersects() is true when the sets share an id.
  bool Intersects(const ScopeSet& other) const {
    const size_t n = std::min(words_.size(), other.words_.size());
    for (size_t i = 0; i < n; ++i) {
      if (words_[i] & other.words_[i]) return true;
    }
    return false;
  }
  bool empty() const {
    for (uint64_t w : words_) {
      if (w) return false;
    }
    return true;
  }
  // ForEach() calls fn(id) for every id, ascending (= policy order).
  template <typename Fn>
  void ForEach(Fn fn) const {
    for (size_t i = 0; i < words_.size(); ++i) {
      for (uint64_t w = words_[i]; w != 0; w &= w - 1) {
        fn(static_cast<int>(i * 64 + __builtin_ctzll(w)));
      }
    }
  }
  friend bool operator==(const ScopeSet& a, const ScopeSet& b) {
    const size_t n = std::max(a.words_.size(), b.words_.size());
    for (size_t i = 0; i < n; ++i) {
      const uint64_t x = i < a.words_.size() ? a.words_[i] : 0;
      const uint64_t y = i < b.words_.size() ? b.words_[i] : 0;
      if (x != y) return false;
    }
    return true;
  }

 private:
  absl::InlinedVector<uint64_t, 2> words_;  // 128 scopes without allocation
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_POLICY_SCOPE_SET_H_
