// ParseHostPort(): the HOST:PORT addresses of the HTTP listeners.
#ifndef SCOPEKEEPER_BASE_HOST_PORT_H_
#define SCOPEKEEPER_BASE_HOST_PORT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace scopekeeper {

// ParseHostPort() splits "host:port" (port 0..65535; "[::1]:80" gives host
// "::1") into *host and *port. INVALID_ARGUMENT naming `flag` otherwise.
absl::Status ParseHostPort(absl::string_view flag, absl::string_view listen,
                           std::string* host, int* port);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_BASE_HOST_PORT_H_
