#include "server/policy/names.h"

#include <cstdint>
#include <cstring>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace scopekeeper {
namespace {

bool IsLowerAlnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// Checks ^[a-z][<lower alnum + extra>]{0,max_len-1}$.
absl::Status ValidateLowerName(absl::string_view kind, absl::string_view field,
                               absl::string_view name, absl::string_view extra,
                               size_t max_len) {
  if (name.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": empty ", kind));
  }
  bool ok = name.size() <= max_len && name[0] >= 'a' && name[0] <= 'z';
  for (size_t i = 1; ok && i < name.size(); ++i) {
    ok = IsLowerAlnum(name[i]) || extra.find(name[i]) != extra.npos;
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": invalid ", kind, " ", Quote(name),
        " (must match ^[a-z][a-z0-9", extra, "]{0,", max_len - 1, "}$)"));
  }
  return absl::OkStatus();
}

// Length of the UTF-8 sequence starting with `c`, or 0 if `c` cannot start
// one.
int Utf8SequenceLength(unsigned char c) {
  if (c < 0x80) return 1;
  if (c >= 0xC2 && c <= 0xDF) return 2;
  if (c >= 0xE0 && c <= 0xEF) return 3;
  if (c >= 0xF0 && c <= 0xF4) return 4;
  return 0;
}

bool IsValidUtf8(absl::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = s[i];
    const int n = Utf8SequenceLength(c);
    if (n == 0 || i + n > s.size()) return false;
    for (int k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    if (n == 3) {  // no overlongs, no surrogates
      const unsigned char c1 = s[i + 1];
      if ((c == 0xE0 && c1 < 0xA0) || (c == 0xED && c1 >= 0xA0)) return false;
    } else if (n == 4) {  // no overlongs, nothing above U+10FFFF
      const unsigned char c1 = s[i + 1];
      if ((c == 0xF0 && c1 < 0x90) || (c == 0xF4 && c1 >= 0x90)) return false;
    }
    i += n;
  }
  return true;
}

// IsPrintableAscii() is whether every byte of `s` is in [0x20, 0x7E].
bool IsPrintableAscii(absl::string_view s) {
  constexpr uint64_t kOnes = 0x0101010101010101;
  constexpr uint64_t kHighs = 0x8080808080808080;
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    uint64_t w;
    std::memcpy(&w, s.data() + i, sizeof(w));
    // Nonzero exactly when some byte is below 0x20, resp. at or above 0x7F
    // (the "haszero"/"hasmore" word tricks; exact for the word as a whole).
    const uint64_t below_space = (w - kOnes * 0x20) & ~w & kHighs;
    const uint64_t del_or_high = ((w + kOnes * 0x01) | w) & kHighs;
    if ((below_space | del_or_high) != 0) return false;
  }
  for (; i < s.size(); ++i) {
    const unsigned char u = s[i];
    if (u < 0x20 || u >= 0x7F) return false;
  }
  return true;
}

}  // namespace

absl::Status ValidateScopeName(absl::string_view field,
                               absl::string_view name) {
  return ValidateLowerName("scope name", field, name, "_.:-", 128);
}

absl::Status ValidateApiName(absl::string_view field, absl::string_view name) {
  return ValidateLowerName("API name", field, name, "_.-", 64);
}

absl::Status ValidateKeyPrefix(absl::string_view field,
                               absl::string_view name) {
  return ValidateLowerName("key prefix", field, name, "_", 32);
}

absl::Status ValidateHostName(absl::string_view field, absl::string_view host) {
  absl::string_view rest = host;
  if (absl::StartsWith(rest, "*.")) rest.remove_prefix(2);
  bool ok = !rest.empty() && host.size() <= 253;
  for (absl::string_view label : absl::StrSplit(rest, '.')) {
    if (!ok) break;
    ok = !label.empty() && label.size() <= 63 && label.front() != '-' &&
         label.back() != '-';
    for (size_t i = 0; ok && i < label.size(); ++i) {
      const char c = label[i];
      ok = absl::ascii_isdigit(static_cast<unsigned char>(c)) ||
           (c >= 'a' && c <= 'z') || c == '-';
    }
  }
  if (!ok) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, ": invalid host ", Quote(host),
        " (a lowercase DNS name, optionally \"*.\" first; no port)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateId(absl::string_view field, absl::string_view id) {
  if (id.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": required"));
  }
  bool ok = id.size() <= kMaxIdLength;
  for (size_t i = 0; ok && i < id.size(); ++i) {
    const char c = id[i];
    ok = absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_' ||
         c == '.' || c == ':' || c == '-';
  }
  if (!ok) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": invalid value ", Quote(id),
                     " (1-128 characters of A-Z a-z 0-9 _ . : -)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateText(absl::string_view field, absl::string_view text,
                          size_t max_len) {
  if (text.size() > max_len) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": longer than ", max_len, " bytes"));
  }
  // Printable ASCII (the whole of almost every path) is valid: decided
  // eight bytes at a time, before the byte-wise checks below.
  if (IsPrintableAscii(text)) return absl::OkStatus();
  if (!IsValidUtf8(text)) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": not valid UTF-8"));
  }
  for (const char c : text) {
    const unsigned char u = c;
    if ((u < 0x20 && c != '\t' && c != '\n') || u == 0x7F) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": contains a control character"));
    }
  }
  return absl::OkStatus();
}

}  // namespace scopekeeper
