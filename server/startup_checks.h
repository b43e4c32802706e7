// Start-up checks of ScopekeeperServer::Start(). Everything that can refuse
// a start is checked before the server changes anything (the stored policy,
// an audit event, a generated token), with a message naming the flag and the
// cause: flag values, the listen addresses, the data directory.
#ifndef SCOPEKEEPER_SERVER_STARTUP_CHECKS_H_
#define SCOPEKEEPER_SERVER_STARTUP_CHECKS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/server.h"

namespace scopekeeper {

// ValidateOptions() checks the values that come from flags: HOST:PORT
// syntax, ranges (a sample rate in [0, 1], positive sizes, durations and
// thread counts). INVALID_ARGUMENT naming the flag and the value.
absl::Status ValidateOptions(const ServerOptions& options);

// ListenProblem() says why `listen` (HOST:PORT) cannot be listened on right
// now ("address already in use (is another server running?)"), or returns
// "" if it can. It binds a socket and closes it at once.
std::string ListenProblem(const std::string& listen);

// CheckCanListen() is UNAVAILABLE ("<flag>: cannot listen on <listen>:
// <problem>") unless `listen` can be listened on right now: a port already
// taken is found before the stored policy is replaced.
absl::Status CheckCanListen(absl::string_view flag, const std::string& listen);

// SecureDataDirectory() makes an existing `data_dir` that group or others
// may access private (0700), with a warning; a warning only if it cannot.
// It holds the database and perhaps the admin token.
void SecureDataDirectory(const std::string& data_dir);

// CheckStoreNotLost() is for the embedded store in <data_dir>/db, before it
// is opened: DATA_LOSS, naming the recovery (restore from a backup), if the
// data dir has held a store (StoreCreatedMarker() or an admin_token exists)
// but db/ is missing or empty, which would otherwise open as a new, empty
// store. With `accept_data_loss`: logged as an error, and OK.
absl::Status CheckStoreNotLost(const std::string& data_dir,
                               bool accept_data_loss);

// MarkDataDirectory() records in `data_dir` that it holds a store in db/
// (once; durably). A failure is logged: it only weakens CheckStoreNotLost().
void MarkDataDirectory(const std::string& data_dir);

// StoreCreatedMarker() is the path of that record.
std::string StoreCreatedMarker(const std::string& data_dir);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_STARTUP_CHECKS_H_
