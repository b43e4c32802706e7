// Envoy ext_authz's messages on the wire, for the Check handler's hot path.
//
// ParseCheckRequest() parses a CheckRequest's bytes as a CheckRequestView
// (check_request_view.proto): protobuf's generated parser over the fields
// Scopekeeper reads, Envoy's numbers and types, the rest left unparsed.
// SerializeCheckResponse() writes the CheckResponse of a GatewayAnswer with
// protobuf's wire-format primitives, without building the message first.
// Both are checked against Envoy's generated messages in check_wire_test.cc:
// the view reads what CheckRequest reads, and the bytes written are the
// bytes CheckResponse serializes to.
#ifndef SCOPEKEEPER_SERVER_GRPC_CHECK_WIRE_H_
#define SCOPEKEEPER_SERVER_GRPC_CHECK_WIRE_H_

#include <grpcpp/support/byte_buffer.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "server/gateway/gateway.h"
#include "server/grpc/check_request_view.pb.h"

namespace scopekeeper {

// ParseCheckRequest() parses `raw` into `*request` (cleared first).
// INVALID_ARGUMENT as ParseRequest() gives for an
// envoy.service.auth.v3.CheckRequest: naming the string field that is not
// valid UTF-8, or the message type when the encoding is broken.
//
// What the view does not declare is not checked: bytes a CheckRequest
// would refuse there (a peer's principal that is not UTF-8, a malformed
// TLS session) are accepted, since nothing the decision reads is in them.
absl::Status ParseCheckRequest(const grpc::ByteBuffer& raw,
                               envoy_view::CheckRequestView* request);

// LastValue() is the value of the last entry named `key` (as a
// map<string, string> parsed from the same bytes holds it); nullptr when
// there is none.
const std::string* LastValue(
    const google::protobuf::RepeatedPtrField<envoy_view::StringEntry>& entries,
    absl::string_view key);

// SerializeCheckResponse() puts the envoy.service.auth.v3.CheckResponse
// answering `answer` into `*raw`, as one slice:
// - allowed: status OK and an OkHttpResponse whose headers are the
//   upstream headers with a value (append_action
//   OVERWRITE_IF_EXISTS_OR_ADD), and whose headers_to_remove are those
//   without one, then answer.remove_header if set;
// - denied: status with RpcCodeForHttpStatus(http_status) and a
//   DeniedHttpResponse with the HTTP status, the headers content-type
//   (application/json) and x-scopekeeper-trace-id, and the JSON body.
void SerializeCheckResponse(const GatewayAnswer& answer, grpc::ByteBuffer* raw);

// SerializeCheckAllowed() writes the same bytes as SerializeCheckResponse()
// for the allowed answer `upstream` describes, from its views: no copies.
void SerializeCheckAllowed(const UpstreamHeaders& upstream,
                           grpc::ByteBuffer* raw);

// The google.rpc.Code of a denial's HTTP status: INVALID_ARGUMENT (400),
// UNAUTHENTICATED (401), NOT_FOUND (404), PERMISSION_DENIED (any other).
int RpcCodeForHttpStatus(int http_status);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_GRPC_CHECK_WIRE_H_
