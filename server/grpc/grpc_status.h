// ToGrpcStatus(): the one place absl::Status becomes grpc::Status.
#ifndef SCOPEKEEPER_SERVER_GRPC_GRPC_STATUS_H_
#define SCOPEKEEPER_SERVER_GRPC_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace scopekeeper {

// Longest error message sent to a client; longer ones are truncated.
inline constexpr size_t kMaxErrorMessageLength = 512;

// ToGrpcStatus() maps the canonical code one to one and caps the message.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_GRPC_GRPC_STATUS_H_
