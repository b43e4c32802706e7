// For tests and fuzzers of check_wire: what Scopekeeper reads of a
// CheckRequest, compared between Envoy's generated message and
// ReadCheckRequest()'s reading.
#ifndef SCOPEKEEPER_SERVER_GRPC_CHECK_WIRE_TESTING_H_
#define SCOPEKEEPER_SERVER_GRPC_CHECK_WIRE_TESTING_H_

#include <string>
#include <vector>

#include "envoy/service/auth/v3/external_auth.pb.h"
#include "server/grpc/check_wire.h"

namespace scopekeeper {

// The header and context-extension names ReadingDiff() looks up: those the
// gateway reads and a few it does not.
const std::vector<std::string>& ReadNames();

// ReadingDiff() is "" when `reading` holds what `full` holds: method,
// path, host; for each of ReadNames(), the header map's and the context
// extensions' value (LastValue() against the map's find()); the header_map
// list entry by entry. Otherwise it names the first difference.
std::string ReadingDiff(const envoy::service::auth::v3::CheckRequest& full,
                        const CheckReading& reading);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_GRPC_CHECK_WIRE_TESTING_H_
