// Validation of the names and free-text fields that cross the API. Every
// function returns INVALID_ARGUMENT naming `field` (e.g. "grants[2].scope")
// and the offending value (truncated, never a secret), or OK.
#ifndef SCOPEKEEPER_SERVER_POLICY_NAMES_H_
#define SCOPEKEEPER_SERVER_POLICY_NAMES_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "base/redact.h"

namespace scopekeeper {

// Limits on request fields.
inline constexpr size_t kMaxApiKeyLength = 256;
inline constexpr size_t kMaxPathLength = 4096;
inline constexpr size_t kMaxIdLength = 128;
inline constexpr size_t kMaxTextLength = 1024;
inline constexpr size_t kMaxScopesPerRequest = 256;

// Scope and bundle names: ^[a-z][a-z0-9_.:-]{0,127}$.
absl::Status ValidateScopeName(absl::string_view field, absl::string_view name);
// API names: ^[a-z][a-z0-9_.-]{0,63}$.
absl::Status ValidateApiName(absl::string_view field, absl::string_view name);
// Key prefixes: ^[a-z][a-z0-9_]{0,31}$.
absl::Status ValidateKeyPrefix(absl::string_view field, absl::string_view name);
// Host names in a policy (Api.hosts): a lowercase DNS name of labels of
// [a-z0-9-] (not starting or ending with '-'), at most 253 bytes, optionally
// starting with "*." (any subdomain). No port, no trailing dot.
absl::Status ValidateHostName(absl::string_view field, absl::string_view host);
// Identifiers (organization, key, app, installation ids, environment,
// trace ids): 1..128 characters of [A-Za-z0-9_.:-].
absl::Status ValidateId(absl::string_view field, absl::string_view id);
// Free text (names, descriptions, reasons): valid UTF-8, no control
// characters other than tab/newline, at most `max_len` bytes. May be empty.
absl::Status ValidateText(absl::string_view field, absl::string_view text,
                          size_t max_len = kMaxTextLength);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_POLICY_NAMES_H_
