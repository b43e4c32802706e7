#include "base/regular_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace scopekeeper {

std::string OctalMode(mode_t mode) {
  char out[8];
  std::snprintf(out, sizeof(out), "%04o", static_cast<unsigned>(mode & 07777));
  return out;
}

absl::string_view FileTypeName(mode_t st_mode) {
  if (S_ISREG(st_mode)) return "a regular file";
  if (S_ISDIR(st_mode)) return "a directory";
  if (S_ISFIFO(st_mode)) return "a FIFO";
  if (S_ISSOCK(st_mode)) return "a socket";
  if (S_ISCHR(st_mode)) return "a character device";
  if (S_ISBLK(st_mode)) return "a block device";
  return "not a regular file";
}

// Paths come from the operator's flags, not from callers: errors show them
// as given.
absl::StatusOr<RegularFile> ReadRegularFile(absl::string_view what,
                                            const std::string& path,
                                            size_t max_bytes) {
  if (path.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(what, ": no file named"));
  }
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a
  // writer, and the server would hang at start-up without a word.
  const int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": cannot open ", path, ": ", std::strerror(errno)));
  }
  struct stat st;
  if (fstat(fd, &st) != 0) {
    const int error = errno;
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": cannot stat ", path, ": ", std::strerror(error)));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return absl::FailedPreconditionError(absl::StrCat(what, ": ", path, " is ",
                                                      FileTypeName(st.st_mode),
                                                      ", not a regular file"));
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": ", path, " is too large (", st.st_size,
                     " bytes; at most ", max_bytes, ")"));
  }
  RegularFile file;
  file.mode = st.st_mode & 07777;
  char buffer[64 << 10];
  for (;;) {
    const ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;
      close(fd);
      return absl::FailedPreconditionError(absl::StrCat(
          what, ": cannot read ", path, ": ", std::strerror(error)));
    }
    file.content.append(buffer, static_cast<size_t>(n));
    if (file.content.size() > max_bytes) {  // it grew while we read
      close(fd);
      return absl::FailedPreconditionError(absl::StrCat(
          what, ": ", path, " is too large (more than ", max_bytes, " bytes)"));
    }
  }
  close(fd);
  return file;
}

absl::StatusOr<std::string> ReadSecretLine(absl::string_view what,
                                           const std::string& path,
                                           size_t max_bytes) {
  absl::StatusOr<RegularFile> file = ReadRegularFile(what, path, max_bytes);
  if (!file.ok()) return file.status();
  if ((file->mode & (S_IRWXG | S_IRWXO)) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, ": ", path, " is accessible by group or others (mode ",
        OctalMode(file->mode),
        "): chmod 600 it, and replace the secret if others may have read it"));
  }
  const absl::string_view first_line =
      absl::string_view(file->content).substr(0, file->content.find('\n'));
  std::string secret(absl::StripAsciiWhitespace(first_line));
  if (secret.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(what, ": ", path, " has an empty first line"));
  }
  return secret;
}

}  // namespace scopekeeper
