#include "server/grpc/grpc_status.h"

#include <string>

namespace scopekeeper {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  std::string message(status.message().substr(
      0, std::min(status.message().size(), kMaxErrorMessageLength)));
  if (status.message().size() > kMaxErrorMessageLength) message += "...";
  // absl and gRPC share the canonical code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), message);
}

}  // namespace scopekeeper
