#include "server/startup_checks.h"

#include <fcntl.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/redact.h"
#include "base/regular_file.h"

namespace scopekeeper {
namespace {

// ParseListen() splits HOST:PORT ("[::1]:0" -> "::1", 0); false if malformed.
bool ParseListen(const std::string& listen, std::string* host, int* port) {
  const size_t colon = listen.rfind(':');
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(listen.substr(colon + 1), port) || *port < 0 ||
      *port > 65535) {
    return false;
  }
  *host = listen.substr(0, colon);
  if (host->size() >= 2 && host->front() == '[' && host->back() == ']') {
    *host = host->substr(1, host->size() - 2);
  }
  return true;
}

absl::Status CheckListenSyntax(absl::string_view flag,
                               const std::string& listen) {
  std::string host;
  int port = 0;
  if (!ParseListen(listen, &host, &port)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag,
                     ": expected HOST:PORT with a port from 0 to 65535, "
                     "got ",
                     Quote(listen)));
  }
  return absl::OkStatus();
}

// CheckDuration() refuses negative and infinite durations, and zero unless
// `zero_allowed`.
absl::Status CheckDuration(absl::string_view flag, absl::Duration value,
                           bool zero_allowed) {
  if (value < absl::ZeroDuration() || value == absl::InfiniteDuration() ||
      (value == absl::ZeroDuration() && !zero_allowed)) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": must be a ",
                     zero_allowed ? "finite duration of 0 or more"
                                  : "positive, finite duration",
                     " such as 1s or 500ms, is ", absl::FormatDuration(value)));
  }
  return absl::OkStatus();
}

// WriteFileDurably() creates `path` with `content` (mode 0600): written and
// synced under a temporary name, renamed, the directory synced.
absl::Status WriteFileDurably(const std::string& dir, const std::string& path,
                              absl::string_view content) {
  const std::string temporary = absl::StrCat(path, ".tmp");
  const int fd =
      open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return absl::UnavailableError(
        absl::StrCat("create ", temporary, ": ", std::strerror(errno)));
  }
  bool ok = write(fd, content.data(), content.size()) ==
                static_cast<ssize_t>(content.size()) &&
            fsync(fd) == 0;
  ok = close(fd) == 0 && ok;
  ok = ok && rename(temporary.c_str(), path.c_str()) == 0;
  const int error = errno;
  if (!ok) {
    unlink(temporary.c_str());
    return absl::UnavailableError(
        absl::StrCat("write ", path, ": ", std::strerror(error)));
  }
  const int dir_fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir_fd >= 0) {
    fsync(dir_fd);
    close(dir_fd);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateOptions(const ServerOptions& options) {
  if (options.data_dir.empty()) {
    return absl::InvalidArgumentError("--data_dir is required");
  }
  if (absl::Status s = CheckListenSyntax("--listen", options.listen); !s.ok()) {
    return s;
  }
  if (!options.metrics_listen.empty()) {
    if (absl::Status s =
            CheckListenSyntax("--metrics_listen", options.metrics_listen);
        !s.ok()) {
      return s;
    }
  }
  // Written so that NaN fails too.
  if (!(options.decision_log_sample_rate >= 0 &&
        options.decision_log_sample_rate <= 1)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--decision_log_sample_rate: must be between 0 and 1 "
                     "(a fraction of decisions), is ",
                     options.decision_log_sample_rate));
  }
  if (options.max_receive_message_bytes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_receive_message_bytes: must be positive (the "
                     "default is 4194304), is ",
                     options.max_receive_message_bytes));
  }
  if (options.key_cache_capacity < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("--key_cache_capacity: must be 0 (unlimited) or "
                     "positive, is ",
                     options.key_cache_capacity));
  }
  // 0: every write after a failure may try to recover (tests use it).
  if (absl::Status s =
          CheckDuration("--store_retry_interval", options.store_retry_interval,
                        /*zero_allowed=*/true);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          CheckDuration("usage_flush_interval", options.usage_flush_interval,
                        /*zero_allowed=*/false);
      !s.ok()) {
    return s;
  }
  if (options.cluster.etcd_endpoints.empty() &&
      !options.cluster.restore_from.empty()) {
    return absl::InvalidArgumentError(
        "--restore_from: needs --etcd_endpoints (a single node restores by "
        "copying the backup into <data_dir>/db; docs/OPERATIONS.md)");
  }
  if (options.server_threads < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "server_threads: must be at least 1, is ", options.server_threads));
  }
  return absl::OkStatus();
}

std::string ListenProblem(const std::string& listen) {
  std::string host;
  int port = -1;
  if (!ParseListen(listen, &host, &port)) return "expected HOST:PORT";
  struct addrinfo hints = {};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
  struct addrinfo* found = nullptr;
  const std::string service = absl::StrCat(port);
  // An empty host (":50051") is every interface.
  if (getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(),
                  &hints, &found) != 0 ||
      found == nullptr) {
    return absl::StrCat("cannot resolve host ", Quote(host));
  }
  std::string why;
  const int fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    why = std::strerror(errno);
  } else {
    // As gRPC binds: SO_REUSEADDR, and not SO_REUSEPORT (see server.cc).
    const int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (bind(fd, found->ai_addr, found->ai_addrlen) != 0) {
      why = errno == EADDRINUSE
                ? "address already in use (is another server running?)"
                : std::strerror(errno);
    }
    close(fd);
  }
  freeaddrinfo(found);
  return why;
}

absl::Status CheckCanListen(absl::string_view flag, const std::string& listen) {
  const std::string problem = ListenProblem(listen);
  if (problem.empty()) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat(flag, ": cannot listen on ", listen, ": ", problem));
}

std::string StoreCreatedMarker(const std::string& data_dir) {
  return absl::StrCat(data_dir, "/store_created");
}

void SecureDataDirectory(const std::string& data_dir) {
  struct stat st;
  if (stat(data_dir.c_str(), &st) == 0 && (st.st_mode & 077) != 0) {
    // It holds the database (key hashes, the audit trail) and perhaps the
    // admin token: for the server's user only.
    const std::string mode = OctalMode(st.st_mode);
    if (chmod(data_dir.c_str(), 0700) == 0) {
      LogWarning(absl::StrCat(
          "data dir ", data_dir, " was accessible by group or others (mode ",
          mode,
          "); changed to 0700. Replace its admin_token, if any, if others "
          "may have read it"));
    } else {
      LogWarning(absl::StrCat("data dir ", data_dir,
                              " is accessible by group or others (mode ", mode,
                              ") and cannot be changed (", std::strerror(errno),
                              "): chmod 700 it"));
    }
  }
}

absl::Status CheckStoreNotLost(const std::string& data_dir,
                               bool accept_data_loss) {
  namespace fs = std::filesystem;
  const fs::path db = fs::path(data_dir) / "db";
  std::error_code error;
  const bool db_exists = fs::exists(db, error);
  if (error) {
    return absl::UnavailableError(
        absl::StrCat("cannot stat ", db.string(), ": ", error.message()));
  }
  const bool db_missing =
      !db_exists || (fs::is_directory(db, error) && fs::is_empty(db, error));
  if (!db_missing) return absl::OkStatus();
  std::string evidence;
  for (const std::string& path :
       {StoreCreatedMarker(data_dir), absl::StrCat(data_dir, "/admin_token")}) {
    if (access(path.c_str(), F_OK) == 0) {
      evidence = path;
      break;
    }
  }
  if (evidence.empty()) return absl::OkStatus();  // a new data dir
  const std::string what =
      absl::StrCat("data dir ", data_dir, " has held a store (", evidence,
                   " exists), but its database ", db.string(),
                   db_exists ? " is empty" : " is missing",
                   ": deleted, moved, or not restored");
  if (accept_data_loss) {
    LogError(absl::StrCat("ACCEPTED DATA LOSS (--accept_data_loss): ", what,
                          ". Starting with a NEW, EMPTY store: no keys, no "
                          "policy, revisions from 1 again"));
    return absl::OkStatus();
  }
  return absl::DataLossError(absl::StrCat(
      what,
      ". Starting would serve an empty store (no keys, no policy) as if "
      "nothing happened. Restore db/ from a backup (docs/OPERATIONS.md, "
      "\"Restore\"); or, to start with an empty store, start once with "
      "--accept_data_loss"));
}

void MarkDataDirectory(const std::string& data_dir) {
  const std::string marker = StoreCreatedMarker(data_dir);
  if (access(marker.c_str(), F_OK) == 0) return;
  const absl::Status written = WriteFileDurably(
      data_dir, marker,
      "Scopekeeper keeps its store in db/ next to this file. While this file "
      "exists, it refuses to start when db/ is missing or empty: restore db/ "
      "from a backup (docs/OPERATIONS.md), or start once with "
      "--accept_data_loss.\n");
  if (!written.ok()) {
    LogWarning(absl::StrCat("cannot record that ", data_dir,
                            " holds a store: ", written.message()));
  }
}

}  // namespace scopekeeper
