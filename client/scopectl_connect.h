// From resolved settings (client/scopectl_config.h) to the ConnectionOptions
// of the client library: the address checked, token files read, PEM files
// parsed, so that mistakes are one clear usage error before any call.
#ifndef SCOPEKEEPER_CLIENT_SCOPECTL_CONNECT_H_
#define SCOPEKEEPER_CLIENT_SCOPECTL_CONNECT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/connection.h"
#include "client/scopectl_config.h"

namespace scopekeeper {

// ValidateAddress() accepts HOST:PORT ("127.0.0.1:50051", "sk.internal:443",
// "[::1]:50051") and gRPC target URIs with a scheme gRPC resolves ("dns:",
// "unix:", "unix-abstract:", "ipv4:", "ipv6:"). INVALID_ARGUMENT otherwise
// (no port, whitespace, ...), naming `source` (e.g. "--addr").
absl::Status ValidateAddress(absl::string_view source,
                             absl::string_view address);

// CheckPem() parses the PEM file `setting` names (`what` it is for, e.g.
// "CA bundle"): certificates when `private_key` is false (at least one),
// else one private key (not encrypted). INVALID_ARGUMENT naming the
// setting's source and path when it is not such a file; the OS error when
// unreadable. Returns the contents.
absl::StatusOr<std::string> CheckPem(const Setting& setting,
                                     absl::string_view what, bool private_key);

// MakeConnectionOptions() builds the options for a command: the address
// (validated), the admin token when `admin` (from admin_token_file; with
// neither a token file nor a client certificate, FAILED_PRECONDITION), the
// authorizer token when a file is set, and TLS credentials when tls_ca (and,
// for mTLS, tls_cert with tls_key) is set, after CheckPem() on each. Every
// error is a problem with the settings, explained in one line.
absl::StatusOr<ConnectionOptions> MakeConnectionOptions(
    const ConnectionSettings& settings, bool admin);

// ConnectionHint() explains a failed call where the status alone does not:
// a TLS connection closed with UNAVAILABLE while no client certificate was
// given is most often a server that requires one (mTLS). Empty when there
// is nothing to add; else text starting with " (".
std::string ConnectionHint(const absl::Status& status,
                           const ConnectionSettings& settings);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_CLIENT_SCOPECTL_CONNECT_H_
