#include "server/grpc/check_wire.h"

#include <grpcpp/support/slice.h>
#include <grpcpp/support/status.h>

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <string>

#include "base/proto_log.h"
#include "envoy/service/auth/v3/external_auth.pb.h"
#include "google/protobuf/io/coded_stream.h"
#include "google/protobuf/wire_format_lite.h"
#include "server/grpc/raw_messages.h"

namespace scopekeeper {
namespace {

using ::google::protobuf::internal::WireFormatLite;
using ::google::protobuf::io::CodedOutputStream;

// Field numbers of the messages written (Envoy's and google.rpc's protos).
enum : int {
  kCheckResponseStatus = 1,            // google.rpc.Status
  kCheckResponseDenied = 2,            // DeniedHttpResponse
  kCheckResponseOk = 3,                // OkHttpResponse
  kRpcStatusCode = 1,                  // int32
  kDeniedStatus = 1,                   // envoy.type.v3.HttpStatus
  kDeniedHeaders = 2,                  // repeated HeaderValueOption
  kDeniedBody = 3,                     // string
  kHttpStatusCode = 1,                 // enum StatusCode
  kOkHeaders = 2,                      // repeated HeaderValueOption
  kOkHeadersToRemove = 5,              // repeated string
  kHeaderValueOptionHeader = 1,        // HeaderValue
  kHeaderValueOptionAppendAction = 3,  // enum HeaderAppendAction
  kHeaderValueKey = 1,                 // string
  kHeaderValueValue = 2,               // string
};
// HeaderValueOption.HeaderAppendAction.OVERWRITE_IF_EXISTS_OR_ADD
constexpr uint32_t kOverwriteIfExistsOrAdd = 2;

// Sizes, as proto3 serializes: a scalar or string equal to its default is
// left out; a message field that is set is written even when empty.
size_t TagSize(int field) {
  return CodedOutputStream::VarintSize32(
      WireFormatLite::MakeTag(field, WireFormatLite::WIRETYPE_VARINT));
}
size_t MessageSize(int field, size_t payload) {
  return TagSize(field) +
         CodedOutputStream::VarintSize32(static_cast<uint32_t>(payload)) +
         payload;
}
size_t StringSize(int field, absl::string_view value) {
  return value.empty() ? 0 : MessageSize(field, value.size());
}
size_t VarintSize(int field, uint32_t value) {
  return value == 0 ? 0
                    : TagSize(field) + CodedOutputStream::VarintSize32(value);
}

uint8_t* WriteMessageHeader(int field, size_t payload, uint8_t* out) {
  out = WireFormatLite::WriteTagToArray(
      field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED, out);
  return CodedOutputStream::WriteVarint32ToArray(static_cast<uint32_t>(payload),
                                                 out);
}
uint8_t* WriteString(int field, absl::string_view value, uint8_t* out) {
  if (value.empty()) return out;
  out = WriteMessageHeader(field, value.size(), out);
  return CodedOutputStream::WriteRawToArray(
      value.data(), static_cast<int>(value.size()), out);
}
uint8_t* WriteVarint(int field, uint32_t value, uint8_t* out) {
  if (value == 0) return out;
  out = WireFormatLite::WriteTagToArray(field, WireFormatLite::WIRETYPE_VARINT,
                                        out);
  return CodedOutputStream::WriteVarint32ToArray(value, out);
}

// One envoy.config.core.v3.HeaderValueOption.
struct HeaderOption {
  absl::string_view key;
  absl::string_view value;
  uint32_t append_action = 0;

  size_t HeaderSize() const {
    return StringSize(kHeaderValueKey, key) +
           StringSize(kHeaderValueValue, value);
  }
  size_t Size() const {
    return MessageSize(kHeaderValueOptionHeader, HeaderSize()) +
           VarintSize(kHeaderValueOptionAppendAction, append_action);
  }
  uint8_t* Write(int field, uint8_t* out) const {
    out = WriteMessageHeader(field, Size(), out);
    out = WriteMessageHeader(kHeaderValueOptionHeader, HeaderSize(), out);
    out = WriteString(kHeaderValueKey, key, out);
    out = WriteString(kHeaderValueValue, value, out);
    return WriteVarint(kHeaderValueOptionAppendAction, append_action, out);
  }
};

// A slice of exactly `size` bytes, filled by `write(begin)`, into `*raw`.
template <typename Write>
void PutSlice(size_t size, Write write, grpc::ByteBuffer* raw) {
  grpc::Slice slice(size);
  uint8_t* const begin = const_cast<uint8_t*>(slice.begin());
  [[maybe_unused]] uint8_t* const end = write(begin);
  assert(end == begin + size);
  grpc::ByteBuffer flat(&slice, 1);
  raw->Swap(&flat);
}

// `headers`: (name, value) pairs, an empty value meaning "remove".
template <typename Headers>
void SerializeAllowed(const Headers& headers, absl::string_view remove_header,
                      grpc::ByteBuffer* raw) {
  size_t ok_size = 0;
  for (const auto& [name, value] : headers) {
    ok_size +=
        value.empty()
            ? StringSize(kOkHeadersToRemove, name)
            : MessageSize(
                  kOkHeaders,
                  HeaderOption{name, value, kOverwriteIfExistsOrAdd}.Size());
  }
  ok_size += StringSize(kOkHeadersToRemove, remove_header);
  // status: a google.rpc.Status with code OK (0), written as an empty one.
  const size_t size = MessageSize(kCheckResponseStatus, 0) +
                      MessageSize(kCheckResponseOk, ok_size);
  PutSlice(
      size,
      [&](uint8_t* out) {
        out = WriteMessageHeader(kCheckResponseStatus, 0, out);
        out = WriteMessageHeader(kCheckResponseOk, ok_size, out);
        // Headers first (field 2), then the names to remove (field 5).
        for (const auto& [name, value] : headers) {
          if (value.empty()) continue;
          out = HeaderOption{name, value, kOverwriteIfExistsOrAdd}.Write(
              kOkHeaders, out);
        }
        for (const auto& [name, value] : headers) {
          if (value.empty()) out = WriteString(kOkHeadersToRemove, name, out);
        }
        return WriteString(kOkHeadersToRemove, remove_header, out);
      },
      raw);
}

void SerializeDenied(const GatewayAnswer& answer, grpc::ByteBuffer* raw) {
  const uint32_t rpc_code =
      static_cast<uint32_t>(RpcCodeForHttpStatus(answer.http_status));
  const uint32_t http_status = static_cast<uint32_t>(answer.http_status);
  const HeaderOption headers[] = {{"content-type", "application/json"},
                                  {kTraceIdHeader, answer.trace_id}};
  const size_t status_size = VarintSize(kRpcStatusCode, rpc_code);
  const size_t http_status_size = VarintSize(kHttpStatusCode, http_status);
  size_t denied_size = MessageSize(kDeniedStatus, http_status_size) +
                       StringSize(kDeniedBody, answer.body);
  for (const HeaderOption& header : headers) {
    denied_size += MessageSize(kDeniedHeaders, header.Size());
  }
  const size_t size = MessageSize(kCheckResponseStatus, status_size) +
                      MessageSize(kCheckResponseDenied, denied_size);
  PutSlice(
      size,
      [&](uint8_t* out) {
        out = WriteMessageHeader(kCheckResponseStatus, status_size, out);
        out = WriteVarint(kRpcStatusCode, rpc_code, out);
        out = WriteMessageHeader(kCheckResponseDenied, denied_size, out);
        out = WriteMessageHeader(kDeniedStatus, http_status_size, out);
        out = WriteVarint(kHttpStatusCode, http_status, out);
        for (const HeaderOption& header : headers) {
          out = header.Write(kDeniedHeaders, out);
        }
        return WriteString(kDeniedBody, answer.body, out);
      },
      raw);
}

}  // namespace

absl::Status ParseCheckRequest(const grpc::ByteBuffer& raw,
                               envoy_view::CheckRequestView* request) {
  {
    ProtobufErrorCapture capture;  // the full parse below names the problem
    if (ParseBytes(raw, request)) return absl::OkStatus();
  }
  // Refused: Envoy's CheckRequest says why, as for any other request. It
  // refuses whatever the view refuses (a check_wire_test property); should
  // it not, the request is still refused.
  CallArena arena;
  absl::Status status =
      ParseRequest(raw, arena.Create<envoy::service::auth::v3::CheckRequest>());
  if (!status.ok()) return status;
  return absl::InvalidArgumentError(
      "request: not a valid envoy.service.auth.v3.CheckRequest");
}

const std::string* LastValue(
    const google::protobuf::RepeatedPtrField<envoy_view::StringEntry>& entries,
    absl::string_view key) {
  for (int i = entries.size() - 1; i >= 0; --i) {
    if (entries[i].key() == key) return &entries[i].value();
  }
  return nullptr;
}

void SerializeCheckAllowed(const UpstreamHeaders& upstream,
                           grpc::ByteBuffer* raw) {
  SerializeAllowed(upstream.headers, upstream.remove_header, raw);
}

void SerializeCheckResponse(const GatewayAnswer& answer,
                            grpc::ByteBuffer* raw) {
  if (answer.allowed()) {
    SerializeAllowed(answer.upstream_headers, answer.remove_header, raw);
  } else {
    SerializeDenied(answer, raw);
  }
}

int RpcCodeForHttpStatus(int http_status) {
  switch (http_status) {
    case 400:
      return grpc::StatusCode::INVALID_ARGUMENT;
    case 401:
      return grpc::StatusCode::UNAUTHENTICATED;
    case 404:
      return grpc::StatusCode::NOT_FOUND;
    default:
      return grpc::StatusCode::PERMISSION_DENIED;
  }
}

}  // namespace scopekeeper
