// EtcdError(): the one place where a gRPC status from etcd becomes an
// absl::Status. Everything in storage/etcd reports etcd failures through it.
#ifndef SCOPEKEEPER_STORAGE_ETCD_ETCD_STATUS_H_
#define SCOPEKEEPER_STORAGE_ETCD_ETCD_STATUS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "grpcpp/support/status.h"

namespace scopekeeper::storage::etcd {

// EtcdError() converts `status` of the call `operation` (e.g. "Range
// /scopekeeper/s/key/k1") made to `endpoint` (host:port). The code is kept
// (gRPC and absl share them; etcd itself answers UNAVAILABLE for "no
// leader" and "request timed out", OUT_OF_RANGE for a compacted revision,
// INVALID_ARGUMENT for "too many operations in txn request" and "request is
// too large", UNAUTHENTICATED for an invalid token); the message is
// "etcd <operation> at <endpoint>: <etcd's message>". Neither etcd's
// messages nor the callers' operations carry credentials. OK stays OK.
absl::Status EtcdError(const grpc::Status& status, absl::string_view operation,
                       absl::string_view endpoint);

// IsInvalidAuthToken() is true for etcd's "invalid auth token" answer (the
// token expired or the member restarted): authenticate again and retry.
bool IsInvalidAuthToken(const grpc::Status& status);

}  // namespace scopekeeper::storage::etcd

#endif  // SCOPEKEEPER_STORAGE_ETCD_ETCD_STATUS_H_
