// Caller authentication for a service: a bearer token, or, with mTLS, a
// client certificate whose verified subject is on a list. The Admin service
// always uses one ("admin"); the Authorizer service optionally ("authorizer",
// off by default: see ServerOptions::authorizer_token_file).
#ifndef SCOPEKEEPER_SERVER_AUTH_CALLER_AUTH_H_
#define SCOPEKEEPER_SERVER_AUTH_CALLER_AUTH_H_

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/policy/key_secret.h"

namespace scopekeeper {

// Why a caller's credential was refused (each an UNAUTHENTICATED answer).
enum class AuthRefusal {
  kMissingCredential,       // no `authorization` metadata, no listed subject
  kMalformedAuthorization,  // `authorization` is not "Bearer <token>"
  kWrongToken,              // a bearer token, not the right one
  kSubjectNotListed,        // a verified client certificate whose subject is
                            // not listed, and no token
};
inline constexpr int kAuthRefusals = 4;
// AuthRefusalName() is the reason's metric label and log value:
// "missing_credential", "malformed_authorization", "wrong_token",
// "subject_not_listed".
absl::string_view AuthRefusalName(AuthRefusal reason);

// AuthRefusalObserver hears of every refused credential (for the log and
// metrics; see server/auth/refusal_reporter.h). Implementations must be
// thread-safe; they run on the calling RPC's thread.
class AuthRefusalObserver {
 public:
  virtual ~AuthRefusalObserver() = default;
  // `peer_subjects`: the verified client-certificate subjects presented
  // (empty without mTLS).
  virtual void OnRefused(AuthRefusal reason,
                         const std::vector<std::string>& peer_subjects) = 0;
};

// Immutable; thread-safe.
class CallerAuthenticator {
 public:
  // `role` names the credential in identities and errors ("admin" ->
  // "admin-token", "invalid admin token"). An empty `token` accepts no
  // bearer token (certificate subjects only). `subjects` are client-
  // certificate subjects (as gRPC reports them, e.g. "CN=ops-admin,O=Example")
  // accepted without a token. A non-null `observer` (not owned; it must
  // outlive this) hears of every refusal.
  CallerAuthenticator(absl::string_view role, absl::string_view token,
                      std::vector<std::string> subjects = {},
                      AuthRefusalObserver* observer = nullptr)
      : role_(role),
        has_token_(!token.empty()),
        token_digest_(HashSecret(token)),
        subjects_(std::move(subjects)),
        observer_(observer) {}

  // Authenticate() returns the caller identity for the audit log:
  // "mtls:<subject>" when one of `peer_subjects` (verified by the TLS
  // handshake) is listed, else "<role>-token" when the `authorization`
  // metadata value is "Bearer <token>". UNAUTHENTICATED otherwise. Tokens are
  // compared as SHA-256 digests in constant time, so neither the token's
  // content nor its length leaks through timing.
  absl::StatusOr<std::string> Authenticate(
      std::optional<absl::string_view> authorization,
      const std::vector<std::string>& peer_subjects = {}) const;

 private:
  absl::Status Refuse(AuthRefusal reason,
                      const std::vector<std::string>& peer_subjects,
                      std::string message) const;

  std::string role_;
  bool has_token_;
  SecretDigest token_digest_;
  std::vector<std::string> subjects_;
  AuthRefusalObserver* const observer_;
};

struct AdminToken {
  std::string token;
  std::string path;      // where it was read from or written to
  bool created = false;  // generated on this start
};

// LoadOrCreateAdminToken() reads the first line of `token_file`; when
// `token_file` is empty it reads `<data_dir>/admin_token`, creating it (mode
// 0600, 256 random bits, hex) if it does not exist. FAILED_PRECONDITION as
// for ReadTokenFile().
absl::StatusOr<AdminToken> LoadOrCreateAdminToken(absl::string_view token_file,
                                                  absl::string_view data_dir);

// ParseSubjectList() splits a list of certificate subjects separated by ';'
// (subjects themselves hold commas: "CN=ops-admin,O=Example"), trimming
// whitespace and dropping empty entries.
std::vector<std::string> ParseSubjectList(absl::string_view list);

// Tokens an operator supplies must be at least this long, and not
// trivially repetitive (WeakTokenReason()).
inline constexpr size_t kMinTokenLength = 32;
inline constexpr double kMinTokenBits = 64;

// WeakTokenReason() says why `token` is too weak to guard a service, or is
// empty when it is not: shorter than kMinTokenLength characters; one
// pattern repeated ("abcabc..."); or fewer than kMinTokenBits bits estimated
// from its character frequencies (length x Shannon entropy: "aaaa...ab").
// Every token of `openssl rand -hex 32` or `-base64 32` passes. The reason
// never quotes the token.
std::string WeakTokenReason(absl::string_view token);

// ReadTokenFile() returns the first line of `path`, whitespace-trimmed.
// FAILED_PRECONDITION naming `what` and `path` when the file is unreadable,
// not a regular file (a FIFO is refused, not waited on), accessible by group
// or others (the token may have leaked: mode 0600 or 0400 only), empty, or
// holds a weak token (WeakTokenReason()). The token itself is never in an
// error.
absl::StatusOr<std::string> ReadTokenFile(absl::string_view what,
                                          const std::string& path);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_AUTH_CALLER_AUTH_H_
