// File access for scopectl: reading credential and input files with errors
// that say why (the OS reason), and creating the file a new secret goes to.
// Errors name the path and what the file is for, never its content.
#ifndef SCOPEKEEPER_CLIENT_SCOPECTL_FILES_H_
#define SCOPEKEEPER_CLIENT_SCOPECTL_FILES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace scopekeeper {

// ReadFileContents() is the whole file at `path`. NOT_FOUND when it does
// not exist, else FAILED_PRECONDITION; the message is "cannot read the
// <what> from <path>: <OS reason>".
absl::StatusOr<std::string> ReadFileContents(const std::string& path,
                                             absl::string_view what);

// FirstLineOf() is the first line of the file at `path`, surrounding
// whitespace removed; INVALID_ARGUMENT when that is empty.
absl::StatusOr<std::string> FirstLineOf(const std::string& path,
                                        absl::string_view what);

// A new file for a secret that is shown nowhere else. Create() makes it
// (O_CREAT | O_EXCL, mode 0600) before the secret exists, so a taken path
// fails before anything is created on the server; Write() stores the
// secret and a newline and syncs it. A SecretFile destroyed before a
// successful Write() removes its (empty) file. Move-only.
class SecretFile {
 public:
  // ALREADY_EXISTS when `path` exists (it is never overwritten); the OS
  // error otherwise.
  static absl::StatusOr<SecretFile> Create(const std::string& path);

  SecretFile(SecretFile&& other) noexcept;
  SecretFile& operator=(SecretFile&&) = delete;
  SecretFile(const SecretFile&) = delete;
  ~SecretFile();

  const std::string& path() const { return path_; }
  // REQUIRES: called at most once.
  absl::Status Write(absl::string_view secret);

 private:
  SecretFile(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

  std::string path_;
  int fd_;  // -1 once closed or moved from
  bool written_ = false;
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_CLIENT_SCOPECTL_FILES_H_
