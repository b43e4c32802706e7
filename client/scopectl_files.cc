#include "client/scopectl_files.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace scopekeeper {
namespace {

std::string Reason(int error) { return std::strerror(error); }

}  // namespace

absl::StatusOr<std::string> ReadFileContents(const std::string& path,
                                             absl::string_view what) {
  auto fail = [&](int error) {
    const std::string message = absl::StrCat("cannot read the ", what, " from ",
                                             path, ": ", Reason(error));
    return error == ENOENT ? absl::NotFoundError(message)
                           : absl::FailedPreconditionError(message);
  };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(errno);
  std::string contents;
  char buffer[8192];
  while (true) {
    const ssize_t n = ::read(fd, buffer, sizeof(buffer));
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      const int error = errno;  // EISDIR for a directory
      ::close(fd);
      return fail(error);
    }
    contents.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  return contents;
}

absl::StatusOr<std::string> FirstLineOf(const std::string& path,
                                        absl::string_view what) {
  absl::StatusOr<std::string> contents = ReadFileContents(path, what);
  if (!contents.ok()) return contents.status();
  const absl::string_view line =
      absl::string_view(*contents).substr(0, contents->find('\n'));
  std::string value(absl::StripAsciiWhitespace(line));
  if (value.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the first line of ", path, " (", what, ") is empty"));
  }
  return value;
}

absl::StatusOr<SecretFile> SecretFile::Create(const std::string& path) {
  const int fd =
      ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    const int error = errno;
    if (error == EEXIST) {
      return absl::AlreadyExistsError(absl::StrCat(
          path, " already exists; it is never overwritten: choose a new path"));
    }
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create ", path, ": ", Reason(error)));
  }
  return SecretFile(path, fd);
}

SecretFile::SecretFile(SecretFile&& other) noexcept
    : path_(std::move(other.path_)),
      fd_(std::exchange(other.fd_, -1)),
      written_(other.written_) {}

SecretFile::~SecretFile() {
  if (fd_ < 0) return;
  ::close(fd_);
  if (!written_) ::unlink(path_.c_str());
}

absl::Status SecretFile::Write(absl::string_view secret) {
  const std::string line = absl::StrCat(secret, "\n");
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      return absl::DataLossError(
          absl::StrCat("cannot write ", path_, ": ", Reason(errno)));
    }
    done += static_cast<size_t>(n);
  }
  if (::fsync(fd_) != 0 || ::close(fd_) != 0) {
    const int error = errno;
    fd_ = -1;
    ::unlink(path_.c_str());
    return absl::DataLossError(
        absl::StrCat("cannot write ", path_, ": ", Reason(error)));
  }
  fd_ = -1;
  written_ = true;
  return absl::OkStatus();
}

}  // namespace scopekeeper
