#include "server/auth/caller_auth.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/regular_file.h"
#include "base/status_macros.h"

namespace scopekeeper {
namespace {

constexpr absl::string_view kBearer = "Bearer ";

// A token file holds one line; anything this large is the wrong file.
constexpr size_t kMaxTokenFileBytes = 64 << 10;

// SyncParentDirectory() fsyncs the directory holding `path`, so a name just
// linked there survives a power loss.
bool SyncParentDirectory(const std::string& path) {
  const size_t slash = path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : path.substr(0, slash);
  const int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  const bool ok = fsync(fd) == 0;
  close(fd);
  return ok;
}

// CreateTokenFile() writes a new random token to `path`, which must not
// exist. The token is written and synced under a temporary name, then linked
// into place: a crash at any moment leaves either no file at `path` (the next
// start generates one) or the whole token, never an empty or partial file,
// which would stop every later start. link() never replaces a file that
// appeared meanwhile (a token someone may already hold).
absl::StatusOr<std::string> CreateTokenFile(const std::string& path) {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof(raw)) != 1) {
    return absl::UnavailableError("CSPRNG (RAND_bytes) failed");
  }
  const std::string token = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(raw), sizeof(raw)));
  std::string temporary = absl::StrCat(path, ".tmp.XXXXXX");
  const int fd = mkostemp(temporary.data(), O_CLOEXEC);  // mode 0600
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create admin token file ", path, ": ", std::strerror(errno)));
  }
  const std::string content = token + "\n";
  bool ok = write(fd, content.data(), content.size()) ==
                static_cast<ssize_t>(content.size()) &&
            fsync(fd) == 0;
  ok = close(fd) == 0 && ok;
  ok = ok && link(temporary.c_str(), path.c_str()) == 0;
  const int error = errno;
  unlink(temporary.c_str());
  if (!ok) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot write admin token file ", path, ": ", std::strerror(error)));
  }
  if (!SyncParentDirectory(path)) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot sync the directory of admin token file ", path,
                     ": ", std::strerror(errno)));
  }
  return token;
}

}  // namespace

std::string WeakTokenReason(absl::string_view token) {
  if (token.size() < kMinTokenLength) {
    return absl::StrCat("it has ", token.size(), " characters; at least ",
                        kMinTokenLength, " are needed");
  }
  const size_t n = token.size();
  for (size_t period = 1; period <= n / 2; ++period) {
    size_t i = period;
    while (i < n && token[i] == token[i - period]) ++i;
    if (i == n) {
      return absl::StrCat("it is one pattern of ", period,
                          " characters repeated");
    }
  }
  size_t counts[256] = {};
  for (const char c : token) ++counts[static_cast<unsigned char>(c)];
  double bits = 0;
  for (const size_t count : counts) {
    if (count == 0) continue;
    const double p = static_cast<double>(count) / static_cast<double>(n);
    bits -= static_cast<double>(count) * std::log2(p);
  }
  if (bits < kMinTokenBits) {
    return absl::StrCat("it is made of too few different characters (about ",
                        static_cast<int>(bits),
                        " bits by character frequency; at least ",
                        static_cast<int>(kMinTokenBits), ")");
  }
  return "";
}

absl::StatusOr<std::string> ReadTokenFile(absl::string_view what,
                                          const std::string& path) {
  SK_ASSIGN_OR_RETURN(std::string token,
                      ReadSecretLine(what, path, kMaxTokenFileBytes));
  const std::string weak = WeakTokenReason(token);
  if (!weak.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": the token in ", path, " is too weak: ", weak,
                     " (make one with `openssl rand -hex 32`)"));
  }
  return token;
}

absl::string_view AuthRefusalName(AuthRefusal reason) {
  switch (reason) {
    case AuthRefusal::kMissingCredential:
      return "missing_credential";
    case AuthRefusal::kMalformedAuthorization:
      return "malformed_authorization";
    case AuthRefusal::kWrongToken:
      return "wrong_token";
    case AuthRefusal::kSubjectNotListed:
      return "subject_not_listed";
  }
  return "unknown";
}

absl::Status CallerAuthenticator::Refuse(
    AuthRefusal reason, const std::vector<std::string>& peer_subjects,
    std::string message) const {
  if (observer_ != nullptr) observer_->OnRefused(reason, peer_subjects);
  return absl::UnauthenticatedError(std::move(message));
}

absl::StatusOr<std::string> CallerAuthenticator::Authenticate(
    std::optional<absl::string_view> authorization,
    const std::vector<std::string>& peer_subjects) const {
  for (const std::string& subject : peer_subjects) {
    if (std::find(subjects_.begin(), subjects_.end(), subject) !=
        subjects_.end()) {
      return absl::StrCat("mtls:", subject);
    }
  }
  if (!authorization.has_value()) {
    return Refuse(peer_subjects.empty() ? AuthRefusal::kMissingCredential
                                        : AuthRefusal::kSubjectNotListed,
                  peer_subjects,
                  absl::StrCat("missing `authorization: Bearer <", role_,
                               " token>` metadata"));
  }
  if (!absl::StartsWith(*authorization, kBearer)) {
    return Refuse(AuthRefusal::kMalformedAuthorization, peer_subjects,
                  absl::StrCat("authorization metadata must be `Bearer <",
                               role_, " token>`"));
  }
  const SecretDigest presented =
      HashSecret(authorization->substr(kBearer.size()));
  if (!has_token_ ||
      !ConstantTimeEquals(presented.view(), token_digest_.view())) {
    return Refuse(AuthRefusal::kWrongToken, peer_subjects,
                  absl::StrCat("invalid ", role_, " token"));
  }
  return absl::StrCat(role_, "-token");
}

std::vector<std::string> ParseSubjectList(absl::string_view list) {
  std::vector<std::string> out;
  for (absl::string_view subject : absl::StrSplit(list, ';')) {
    subject = absl::StripAsciiWhitespace(subject);
    if (!subject.empty()) out.emplace_back(subject);
  }
  return out;
}

absl::StatusOr<AdminToken> LoadOrCreateAdminToken(absl::string_view token_file,
                                                  absl::string_view data_dir) {
  AdminToken out;
  if (!token_file.empty()) {
    out.path = std::string(token_file);
    absl::StatusOr<std::string> token =
        ReadTokenFile("--admin_token_file", out.path);
    if (!token.ok()) return token.status();
    out.token = *std::move(token);
    return out;
  }
  out.path = absl::StrCat(data_dir, "/admin_token");
  if (access(out.path.c_str(), F_OK) != 0) {
    absl::StatusOr<std::string> token = CreateTokenFile(out.path);
    if (!token.ok()) return token.status();
    out.token = *std::move(token);
    out.created = true;
    return out;
  }
  absl::StatusOr<std::string> token = ReadTokenFile("admin token", out.path);
  if (!token.ok()) return token.status();
  out.token = *std::move(token);
  return out;
}

}  // namespace scopekeeper
