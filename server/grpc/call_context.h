// What the gRPC adapters read from a call's context: its deadline and the
// caller's credentials.
#ifndef SCOPEKEEPER_SERVER_GRPC_CALL_CONTEXT_H_
#define SCOPEKEEPER_SERVER_GRPC_CALL_CONTEXT_H_

#include <grpcpp/server_context.h>

#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/auth/caller_auth.h"

namespace scopekeeper {

// DeadlineOf() is the call's deadline; InfiniteFuture() when the client set
// none (gRPC reports that as a far-future time point absl cannot represent).
absl::Time DeadlineOf(const grpc::CallbackServerContext* context);

// AuthenticateCall() is auth.Authenticate() of the call's `authorization`
// metadata and its verified client-certificate subjects (none without mTLS).
absl::StatusOr<std::string> AuthenticateCall(
    const CallerAuthenticator& auth,
    const grpc::CallbackServerContext* context);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_GRPC_CALL_CONTEXT_H_
