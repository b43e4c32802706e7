#include "server/caller_auth.h"

#include <fcntl.h>
#include <openssl/rand.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace scopekeeper {
namespace {

constexpr absl::string_view kBearer = "Bearer ";

absl::StatusOr<std::string> CreateTokenFile(const std::string& path) {
  unsigned char raw[32];
  if (RAND_bytes(raw, sizeof(raw)) != 1) {
    return absl::UnavailableError("CSPRNG (RAND_bytes) failed");
  }
  const std::string token = absl::BytesToHexString(
      absl::string_view(reinterpret_cast<const char*>(raw), sizeof(raw)));
  const int fd =
      open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create admin token file ", path, ": ", std::strerror(errno)));
  }
  const std::string content = token + "\n";
  const bool ok = write(fd, content.data(), content.size()) ==
                      static_cast<ssize_t>(content.size()) &&
                  fsync(fd) == 0;
  close(fd);
  if (!ok) {
    unlink(path.c_str());
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write admin token file ", path));
  }
  return token;
}

}  // namespace

absl::StatusOr<std::string> ReadTokenFile(absl::string_view what,
                                          const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot read ", what, " file ", path, ": ", std::strerror(errno)));
  }
  std::string line;
  std::getline(in, line);
  std::string token(absl::StripAsciiWhitespace(line));
  if (token.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, " file ", path, " is empty"));
  }
  return token;
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
    return absl::UnauthenticatedError(absl::StrCat(
        "missing `authorization: Bearer <", role_, " token>` metadata"));
  }
  if (!absl::StartsWith(*authorization, kBearer)) {
    return absl::UnauthenticatedError(absl::StrCat(
        "authorization metadata must be `Bearer <", role_, " token>`"));
  }
  const SecretDigest presented =
      HashSecret(authorization->substr(kBearer.size()));
  if (!has_token_ ||
      !ConstantTimeEquals(presented.view(), token_digest_.view())) {
    return absl::UnauthenticatedError(
        absl::StrCat("invalid ", role_, " token"));
  }
  return absl::StrCat(role_, "-token");
}

absl::StatusOr<AdminToken> LoadOrCreateAdminToken(absl::string_view token_file,
                                                  absl::string_view data_dir) {
  AdminToken out;
  if (!token_file.empty()) {
    out.path = std::string(token_file);
    absl::StatusOr<std::string> token = ReadTokenFile("admin token", out.path);
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
