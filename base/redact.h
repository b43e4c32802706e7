// Redaction of what may echo a secret into an error or a log line. Every
// caller-supplied value quoted into an error message or a log line goes
// through Quote(); a caller's trace id is logged only in a trace-id shape
// (LoggableTraceId()).
#ifndef SCOPEKEEPER_BASE_REDACT_H_
#define SCOPEKEEPER_BASE_REDACT_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

namespace scopekeeper {

// Quote() renders `value` for an error message: non-printable bytes escaped,
// any run of kMinSecretLikeRun or more letters and digits (the shape of an API
// key's random part; ids are shorter) replaced by "<redacted>" -- decided on
// the whole value, so a key is never shown in part -- and then cut to at most
// `max_len` characters between the quotes (followed by "..." when cut). The
// result is printable ASCII holding no such run. File paths use
// kMaxQuotedPath.
inline constexpr size_t kMinSecretLikeRun = 28;
inline constexpr size_t kMaxQuoted = 64;
inline constexpr size_t kMaxQuotedPath = 1024;
std::string Quote(absl::string_view value, size_t max_len = kMaxQuoted);

// Redact() is Quote() without the quotes (a cut value ends in "..."), for a
// log field whose writer quotes it as the log format needs: the same
// escaping, redaction and cut.
std::string Redact(absl::string_view value, size_t max_len = kMaxQuoted);

// RedactSecretShapedRuns() returns `text` with every run of kMinSecretLikeRun
// or more ASCII letters and digits replaced by "<redacted>" (Quote() without
// the escaping and the cut), for text that may echo what a user typed.
std::string RedactSecretShapedRuns(absl::string_view text);

// IsTraceIdShaped() is true for a UUID (8-4-4-4-12 hex digits) or 32 hex
// digits (a W3C traceparent trace-id), in either case.
bool IsTraceIdShaped(absl::string_view trace_id);

// LoggableTraceId() is `trace_id` when IsTraceIdShaped(), else a fixed
// placeholder: a caller may put anything in the field, even a key.
absl::string_view LoggableTraceId(absl::string_view trace_id);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_BASE_REDACT_H_
