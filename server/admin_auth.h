// Admin authentication: the bearer token that the Admin service requires.
#ifndef SCOPEKEEPER_SERVER_ADMIN_AUTH_H_
#define SCOPEKEEPER_SERVER_ADMIN_AUTH_H_

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/key_secret.h"

namespace scopekeeper {

// Immutable; thread-safe.
class AdminAuthenticator {
 public:
  // REQUIRES: `token` is non-empty.
  explicit AdminAuthenticator(absl::string_view token)
      : token_digest_(HashSecret(token)) {}

  // Authenticate() checks an `authorization` metadata value
  // ("Bearer <token>") and returns the admin identity for the audit log.
  // UNAUTHENTICATED when it is missing or wrong. The comparison is of
  // SHA-256 digests in constant time, so neither the token's content nor its
  // length leaks through timing.
  absl::StatusOr<std::string> Authenticate(
      std::optional<absl::string_view> authorization) const;

 private:
  SecretDigest token_digest_;
};

struct AdminToken {
  std::string token;
  std::string path;      // where it was read from or written to
  bool created = false;  // generated on this start
};

// LoadOrCreateAdminToken() reads the first line of `token_file`; when
// `token_file` is empty it reads `<data_dir>/admin_token`, creating it (mode
// 0600, 256 random bits, hex) if it does not exist. FAILED_PRECONDITION for an
// unreadable or empty file.
absl::StatusOr<AdminToken> LoadOrCreateAdminToken(absl::string_view token_file,
                                                  absl::string_view data_dir);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_ADMIN_AUTH_H_
