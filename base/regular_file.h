// Reading the small files an operator points the server at (tokens, TLS
// certificates and keys, the policy): only regular files, read without ever
// blocking on a FIFO, a socket or a device, and only up to a size limit.
#ifndef SCOPEKEEPER_BASE_REGULAR_FILE_H_
#define SCOPEKEEPER_BASE_REGULAR_FILE_H_

#include <sys/types.h>

#include <cstddef>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace scopekeeper {

// The largest file ReadRegularFile() reads by default.
inline constexpr size_t kMaxRegularFileBytes = 16 << 20;

struct RegularFile {
  std::string content;
  mode_t mode = 0;  // permission bits (st_mode & 07777)
};

// ReadRegularFile() reads the file at `path` (symbolic links followed). It
// opens it without blocking, so a FIFO given by mistake is refused rather
// than waited on. FAILED_PRECONDITION, naming `what` (e.g. "--tls_key") and
// the path, when it cannot be opened, is not a regular file, or is larger
// than `max_bytes`. The content never appears in an error.
absl::StatusOr<RegularFile> ReadRegularFile(
    absl::string_view what, const std::string& path,
    size_t max_bytes = kMaxRegularFileBytes);

// ReadSecretLine() reads a file holding a secret (a token, a password) with
// ReadRegularFile() and returns its first line, surrounding whitespace
// removed. FAILED_PRECONDITION, naming `what` and the path but never the
// secret, when group or others can access the file (its mode must be 0600
// or 0400) or the first line is empty.
absl::StatusOr<std::string> ReadSecretLine(absl::string_view what,
                                           const std::string& path,
                                           size_t max_bytes = 64 << 10);

// OctalMode() formats permission bits as chmod takes them ("0644").
std::string OctalMode(mode_t mode);

// FileTypeName() names the type of an st_mode for messages ("a FIFO",
// "a directory", ...).
absl::string_view FileTypeName(mode_t st_mode);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_BASE_REGULAR_FILE_H_
