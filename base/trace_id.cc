#include "base/trace_id.h"

#include <cstdint>

#include "absl/random/random.h"

namespace scopekeeper {

// Formatted by hand: one is made per decision, and StrFormat was ~5 % of a
// batch's CPU.
std::string NewTraceId() {
  thread_local absl::BitGen gen;
  const uint64_t hi = (absl::Uniform<uint64_t>(gen) & ~uint64_t{0xf000}) |
                      uint64_t{0x4000};  // version 4
  const uint64_t lo = (absl::Uniform<uint64_t>(gen) >> 2) |
                      (uint64_t{0x2} << 62);  // variant 10xx
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(36, '-');
  int pos = 0;
  const auto put = [&](uint64_t bits, int nibbles) {
    for (int i = nibbles - 1; i >= 0; --i) {
      out[pos++] = kHex[(bits >> (4 * i)) & 0xf];
    }
  };
  put(hi >> 32, 8);
  ++pos;
  put(hi >> 16, 4);
  ++pos;
  put(hi, 4);
  ++pos;
  put(lo >> 48, 4);
  ++pos;
  put(lo, 12);
  return out;
}

}  // namespace scopekeeper
