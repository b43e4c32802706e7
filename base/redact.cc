#include "base/redact.h"

#include <string>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"

namespace scopekeeper {
namespace {

bool AllHex(absl::string_view s) {
  for (char c : s) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

}  // namespace

std::string RedactSecretShapedRuns(absl::string_view text) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    size_t j = i;
    while (j < text.size() && absl::ascii_isalnum(text[j])) ++j;
    if (j - i >= kMinSecretLikeRun) {
      out += "<redacted>";
    } else {
      out.append(text.data() + i, j - i);
    }
    if (j < text.size()) out.push_back(text[j++]);
    i = j;
  }
  return out;
}

namespace {

// Shown() is the escaped, redacted `value` and whether it was cut to
// `max_len` characters.
std::pair<std::string, bool> Shown(absl::string_view value, size_t max_len) {
  // Escape first, then elide secret-shaped runs of the escaped text, then
  // cut: a client that puts an API key in the wrong field (an organization
  // header, say) must not get it, or most of it, echoed into an error its
  // gateway may log. Redacting before cutting means a key straddling the cut
  // is not shown in part; redacting after escaping means the hex digits of an
  // escape cannot extend a shorter run into a secret-shaped one.
  std::string shown = RedactSecretShapedRuns(absl::CHexEscape(value));
  if (shown.size() <= max_len) return {std::move(shown), false};
  // Cut at max_len, but never inside an escape ("\n", "\x8f", ...).
  size_t cut = 0;
  while (cut < max_len) {
    const size_t len = shown[cut] != '\\' ? 1 : (shown[cut + 1] == 'x' ? 4 : 2);
    if (cut + len > max_len) break;
    cut += len;
  }
  shown.resize(cut);
  return {std::move(shown), true};
}

}  // namespace

std::string Quote(absl::string_view value, size_t max_len) {
  auto [shown, cut] = Shown(value, max_len);
  return absl::StrCat("\"", shown, cut ? "\"..." : "\"");
}

std::string Redact(absl::string_view value, size_t max_len) {
  auto [shown, cut] = Shown(value, max_len);
  if (cut) shown += "...";
  return shown;
}

bool IsTraceIdShaped(absl::string_view id) {
  if (id.size() == 32) return AllHex(id);
  if (id.size() != 36) return false;
  for (size_t dash : {8, 13, 18, 23}) {
    if (id[dash] != '-') return false;
  }
  return AllHex(id.substr(0, 8)) && AllHex(id.substr(9, 4)) &&
         AllHex(id.substr(14, 4)) && AllHex(id.substr(19, 4)) &&
         AllHex(id.substr(24, 12));
}

absl::string_view LoggableTraceId(absl::string_view trace_id) {
  return IsTraceIdShaped(trace_id) ? trace_id : "(not-a-trace-id)";
}

}  // namespace scopekeeper
