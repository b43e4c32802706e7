// Admin authentication: the bearer token the Admin service requires, or,
// with mTLS, a client certificate whose verified subject is on a list.
#ifndef SCOPEKEEPER_SERVER_ADMIN_AUTH_H_
#define SCOPEKEEPER_SERVER_ADMIN_AUTH_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/key_secret.h"

namespace scopekeeper {

// Immutable; thread-safe.
class AdminAuthenticator {
 public:
  // REQUIRES: `token` is non-empty. `admin_subjects` are client-certificate
  // subjects (as gRPC reports them, e.g. "CN=ops-admin,O=Example") that are
  // admins without a token.
  explicit AdminAuthenticator(absl::string_view token,
                              std::vector<std::string> admin_subjects = {})
      : token_digest_(HashSecret(token)),
        admin_subjects_(std::move(admin_subjects)) {}

  // Authenticate() returns the admin identity for the audit log:
  // "mtls:<subject>" when one of `peer_subjects` (verified by the TLS
  // handshake) is an admin subject, else "admin-token" when the
  // `authorization` metadata value is "Bearer <token>". UNAUTHENTICATED
  // otherwise. Tokens are compared as SHA-256 digests in constant time, so
  // neither the token's content nor its length leaks through timing.
  absl::StatusOr<std::string> Authenticate(
      std::optional<absl::string_view> authorization,
      const std::vector<std::string>& peer_subjects = {}) const;

 private:
  SecretDigest token_digest_;
  std::vector<std::string> admin_subjects_;
};

struct AdminToken {
  std::string token;
  std::string path;      // where it was read from or written to
  bool created = false;  // generated on this start
};

// LoadOrCreateAdminToken() reads the first line of `token_file`; when
// `token_file` is empty it reads `<data_dir>/admin_token`, creating it (mode
// 0600, 256 random bits, hex) if it does not exist; creation is atomic, so a
// crash leaves no empty or partial token file. FAILED_PRECONDITION for an
// unreadable or empty file.
absl::StatusOr<AdminToken> LoadOrCreateAdminToken(absl::string_view token_file,
                                                  absl::string_view data_dir);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_ADMIN_AUTH_H_
