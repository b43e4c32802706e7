// Envoy ext_authz's messages on the wire, for the Check handler's hot path.
//
// ReadCheckRequest() reads the fields Scopekeeper needs of a CheckRequest's
// bytes as views, with protobuf's wire-format reader, skipping the rest.
// SerializeCheckResponse() writes the CheckResponse of a GatewayAnswer with
// protobuf's wire-format primitives, without building the message first.
// Both are checked against Envoy's generated messages in check_wire_test.cc:
// what is read is what CheckRequest holds, and the bytes written are the
// bytes CheckResponse serializes to.
#ifndef SCOPEKEEPER_SERVER_GRPC_CHECK_WIRE_H_
#define SCOPEKEEPER_SERVER_GRPC_CHECK_WIRE_H_

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include "absl/container/inlined_vector.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "server/gateway/gateway.h"

namespace scopekeeper {

// What Scopekeeper reads of an envoy.service.auth.v3.CheckRequest, as
// views into the request's bytes, which it holds (see ReadCheckRequest()).
// Not copyable: the views point into `bytes`.
struct CheckReading {
  // An entry of a map<string, string>, as it came on the wire.
  struct Entry {
    absl::string_view key;
    absl::string_view value;
  };
  // An envoy.config.core.v3.HeaderValue.
  struct HeaderValue {
    absl::string_view key;
    absl::string_view value;
    absl::string_view raw_value;  // bytes, not checked for UTF-8
  };

  CheckReading() = default;
  CheckReading(const CheckReading&) = delete;
  CheckReading& operator=(const CheckReading&) = delete;

  // attributes.request.http: method, path, host.
  absl::string_view method;
  absl::string_view path;
  absl::string_view host;
  // attributes.request.http.headers, every entry in wire order (a key may
  // repeat: read with LastValue(), as a map parsed from them holds it).
  absl::InlinedVector<Entry, 16> headers;
  // attributes.request.http.header_map.headers, in wire order.
  absl::InlinedVector<HeaderValue, 4> header_map;
  // attributes.context_extensions, every entry in wire order.
  absl::InlinedVector<Entry, 2> context_extensions;

  grpc::Slice bytes;  // what the views point into
};

// ReadCheckRequest() reads `raw` into `*out` (reset first). The bytes are
// walked with protobuf's CodedInputStream and WireFormatLite: the fields
// above are taken with Envoy's field numbers and wire types, merged as
// protobuf merges (a message field that comes twice is one message; a
// string's last value wins), strings checked for UTF-8 as protobuf's
// parser checks them; every other field is skipped as protobuf skips an
// unknown field, its encoding checked, its content not. Nothing is copied
// from a request that came in one slice.
//
// INVALID_ARGUMENT as ParseRequest() gives for an
// envoy.service.auth.v3.CheckRequest: naming the string field that is not
// valid UTF-8, or the message type when the encoding is broken.
//
// What is not read is not checked: bytes a CheckRequest would refuse there
// (a peer's principal that is not UTF-8, a malformed TLS session) are
// accepted, since nothing the decision reads is in them. check_wire_test.cc
// and //fuzz:check_request_fuzzer hold it to Envoy's generated parser:
// whatever CheckRequest parses is read to the same values.
absl::Status ReadCheckRequest(const grpc::ByteBuffer& raw, CheckReading* out);

// LastValue() is the value of the last entry named `key` (as a
// map<string, string> parsed from the same bytes holds it); nullptr when
// there is none.
const absl::string_view* LastValue(
    absl::Span<const CheckReading::Entry> entries, absl::string_view key);

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
