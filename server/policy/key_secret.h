// Key secrets and ids: generation from OpenSSL's CSPRNG and SHA-256 hashing.
// Secrets are "<prefix>_<32 base62 characters>" (190 bits of randomness).
// Only their SHA-256 digest is ever stored.
#ifndef SCOPEKEEPER_SERVER_POLICY_KEY_SECRET_H_
#define SCOPEKEEPER_SERVER_POLICY_KEY_SECRET_H_

#include <array>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace scopekeeper {

// A SHA-256 digest. Hashable (absl::Hash) and comparable.
struct SecretDigest {
  std::array<uint8_t, 32> bytes{};

  absl::string_view view() const {
    return absl::string_view(reinterpret_cast<const char*>(bytes.data()),
                             bytes.size());
  }
  static SecretDigest FromBytes(absl::string_view raw);  // REQUIRES: size 32
  friend bool operator==(const SecretDigest& a, const SecretDigest& b) {
    return a.bytes == b.bytes;
  }
  template <typename H>
  friend H AbslHashValue(H h, const SecretDigest& d) {
    // The digest is uniformly random: its first 8 bytes are a fine hash.
    uint64_t prefix;
    static_assert(sizeof(prefix) <= sizeof(d.bytes));
    __builtin_memcpy(&prefix, d.bytes.data(), sizeof(prefix));
    return H::combine(std::move(h), prefix);
  }
};

// HashSecret() returns SHA-256(secret). Allocation-free; thread-safe.
SecretDigest HashSecret(absl::string_view secret);

struct NewSecret {
  std::string secret;          // "<prefix>_<random>": shown once
  std::string display_prefix;  // "<prefix>_" + first 3 random characters
};

// GenerateSecret() makes a new secret with `prefix` (a valid key prefix).
// UNAVAILABLE if the CSPRNG fails.
absl::StatusOr<NewSecret> GenerateSecret(absl::string_view prefix);

// GenerateId() returns "<kind>_" + 24 lowercase hex characters (96 random
// bits), e.g. "key_3f9a...". UNAVAILABLE if the CSPRNG fails.
absl::StatusOr<std::string> GenerateId(absl::string_view kind);

// ConstantTimeEquals() compares without an early exit on the first
// difference (only the lengths leak).
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_POLICY_KEY_SECRET_H_
