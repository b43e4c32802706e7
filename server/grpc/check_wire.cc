#include "server/grpc/check_wire.h"

#include <grpcpp/support/slice.h>
#include <grpcpp/support/status.h>

#include <cassert>
#include <climits>
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
using ::google::protobuf::io::CodedInputStream;
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

// Field numbers of the CheckRequest fields read (Envoy's protos); all are
// length-delimited: strings, bytes and messages.
enum : int {
  kCheckRequestAttributes = 1,        // AttributeContext
  kAttributesRequest = 4,             // AttributeContext.Request
  kAttributesContextExtensions = 10,  // map<string, string>
  kRequestHttp = 2,                   // AttributeContext.HttpRequest
  kHttpMethod = 2,                    // string
  kHttpHeaders = 3,                   // map<string, string>
  kHttpPath = 4,                      // string
  kHttpHost = 5,                      // string
  kHttpHeaderMap = 13,                // envoy.config.core.v3.HeaderMap
  kEntryKey = 1,                      // string
  kEntryValue = 2,                    // string
  kHeaderMapHeaders = 1,              // repeated HeaderValue
  kHeaderValueRawValue = 3,           // bytes
};

// Reads a CheckRequest's bytes into a CheckReading, as protobuf's generated
// parser reads them: a field is read when its number and wire type are the
// ones declared, and skipped otherwise, its encoding checked as the parser
// checks an unknown field's (tags and lengths of at most 5 bytes, groups
// closed by their own END_GROUP); each message and group counts against
// the recursion limit; a string is refused when it is not UTF-8.
class CheckRequestReader {
 public:
  CheckRequestReader(const uint8_t* data, int size, CheckReading* out)
      : input_(data, size), end_(size), out_(*out) {}

  bool ReadAll() {
    return Fields([this](int field) {
      if (field != kCheckRequestAttributes) return Field::kSkipped;
      return Read(
          Message([this](int field) { return AttributesField(field); }));
    });
  }

 private:
  // What a field handler returns: whether it read the field. A field it
  // does not read is skipped; a field it reads but finds broken fails.
  enum class Field { kSkipped, kRead, kBroken };
  static Field Read(bool read) { return read ? Field::kRead : Field::kBroken; }
  static constexpr bool kUtf8 = true;    // a string field
  static constexpr bool kBytes = false;  // a bytes field

  Field AttributesField(int field) {
    switch (field) {
      case kAttributesRequest:
        return Read(Message([this](int field) {
          if (field != kRequestHttp) return Field::kSkipped;
          return Read(Message([this](int field) { return HttpField(field); }));
        }));
      case kAttributesContextExtensions:
        return Read(Entry(&out_.context_extensions));
      default:
        return Field::kSkipped;
    }
  }

  Field HttpField(int field) {
    switch (field) {
      case kHttpMethod:
        return Read(String(&out_.method, kUtf8));
      case kHttpHeaders:
        return Read(Entry(&out_.headers));
      case kHttpPath:
        return Read(String(&out_.path, kUtf8));
      case kHttpHost:
        return Read(String(&out_.host, kUtf8));
      case kHttpHeaderMap:
        return Read(Message([this](int field) {
          if (field != kHeaderMapHeaders) return Field::kSkipped;
          return Read(HeaderValue(&out_.header_map.emplace_back()));
        }));
      default:
        return Field::kSkipped;
    }
  }

  // An envoy.config.core.v3.HeaderValue.
  bool HeaderValue(CheckReading::HeaderValue* header) {
    return Message([this, header](int field) {
      switch (field) {
        case kHeaderValueKey:
          return Read(String(&header->key, kUtf8));
        case kHeaderValueValue:
          return Read(String(&header->value, kUtf8));
        case kHeaderValueRawValue:
          return Read(String(&header->raw_value, kBytes));
        default:
          return Field::kSkipped;
      }
    });
  }

  // A map<string, string> entry, added to `entries`.
  template <typename Entries>
  bool Entry(Entries* entries) {
    CheckReading::Entry* entry = &entries->emplace_back();
    return Message([this, entry](int field) {
      switch (field) {
        case kEntryKey:
          return Read(String(&entry->key, kUtf8));
        case kEntryValue:
          return Read(String(&entry->value, kUtf8));
        default:
          return Field::kSkipped;
      }
    });
  }

  // The fields up to the message's end (end_group == 0), or up to the
  // END_GROUP tag `end_group`: `on_field(number)` for each length-delimited
  // one, the others skipped. Fails at an END_GROUP tag that is not
  // `end_group`, at the end while a group is open, and when a field runs
  // past the end.
  template <typename OnField>
  bool Fields(OnField on_field, uint32_t end_group = 0) {
    while (input_.CurrentPosition() < end_) {
      uint32_t tag = 0;
      if (!ReadTag(&tag)) return false;
      const int number = WireFormatLite::GetTagFieldNumber(tag);
      switch (WireFormatLite::GetTagWireType(tag)) {
        case WireFormatLite::WIRETYPE_LENGTH_DELIMITED:
          switch (on_field(number)) {
            case Field::kRead:
              continue;
            case Field::kBroken:
              return false;
            case Field::kSkipped:
              break;
          }
          {
            int length = 0;
            if (!ReadSize(&length) || !input_.Skip(length)) return false;
          }
          continue;
        case WireFormatLite::WIRETYPE_VARINT: {
          uint64_t value = 0;
          if (!input_.ReadVarint64(&value)) return false;
          continue;
        }
        case WireFormatLite::WIRETYPE_FIXED64:
          if (!input_.Skip(8)) return false;
          continue;
        case WireFormatLite::WIRETYPE_FIXED32:
          if (!input_.Skip(4)) return false;
          continue;
        case WireFormatLite::WIRETYPE_START_GROUP: {
          // An unknown group: skipped, its fields' encoding checked.
          if (!SkipGroup(number)) return false;
          continue;
        }
        case WireFormatLite::WIRETYPE_END_GROUP:
          return tag == end_group;
        default:  // wire types 6 and 7 do not exist
          return false;
      }
    }
    return input_.CurrentPosition() == end_ && end_group == 0;
  }

  // An unknown group's fields, up to its END_GROUP tag.
  bool SkipGroup(int number) {
    struct SkipAll {
      Field operator()(int) const { return Field::kSkipped; }
    };
    if (!input_.IncrementRecursionDepth()) return false;
    const bool skipped = Fields(
        SkipAll(),
        WireFormatLite::MakeTag(number, WireFormatLite::WIRETYPE_END_GROUP));
    input_.DecrementRecursionDepth();
    return skipped;
  }

  // A tag as protobuf's parser reads one: at most 5 bytes, field number 0
  // refused (a 0 from ReadTag() is a broken tag or the end).
  bool ReadTag(uint32_t* tag) {
    const int start = input_.CurrentPosition();
    *tag = input_.ReadTag();
    return input_.CurrentPosition() - start <= 5 &&
           WireFormatLite::GetTagFieldNumber(*tag) != 0;
  }

  // A length as protobuf's parser reads one: at most 5 bytes, and no more
  // than the bytes left in the message.
  bool ReadSize(int* length) {
    const int start = input_.CurrentPosition();
    return input_.ReadVarintSizeAsInt(length) &&
           input_.CurrentPosition() - start <= 5 &&
           *length <= end_ - input_.CurrentPosition();
  }

  // A message field's value: its length, then Fields() within it.
  template <typename OnField>
  bool Message(OnField on_field) {
    int length = 0;
    if (!ReadSize(&length) || !input_.IncrementRecursionDepth()) return false;
    const int outer_end = end_;
    end_ = input_.CurrentPosition() + length;
    const bool read = Fields(on_field);
    end_ = outer_end;
    input_.DecrementRecursionDepth();
    return read;
  }

  // A string (utf8) or bytes field's value, as a view into the input.
  bool String(absl::string_view* value, bool utf8) {
    int length = 0;
    if (!ReadSize(&length)) return false;
    const void* data = nullptr;
    int available = 0;
    input_.GetDirectBufferPointerInline(&data, &available);
    *value = absl::string_view(static_cast<const char*>(data),
                               static_cast<size_t>(length));
    input_.Skip(length);
    return !utf8 || google::protobuf::internal::IsStructurallyValidUTF8(
                        static_cast<const char*>(data), length);
  }

  CodedInputStream input_;  // over the whole request: no limits pushed
  int end_;                 // where the message being read ends
  CheckReading& out_;
};

}  // namespace

absl::Status ReadCheckRequest(const grpc::ByteBuffer& raw, CheckReading* out) {
  out->method = out->path = out->host = absl::string_view();
  out->headers.clear();
  out->header_map.clear();
  out->context_extensions.clear();
  if (!raw.TrySingleSlice(&out->bytes).ok() &&
      !raw.DumpToSingleSlice(&out->bytes).ok()) {
    out->bytes = grpc::Slice();
  }
  if (out->bytes.size() <= static_cast<size_t>(INT_MAX) &&
      CheckRequestReader(out->bytes.begin(),
                         static_cast<int>(out->bytes.size()), out)
          .ReadAll()) {
    return absl::OkStatus();
  }
  // Refused: Envoy's CheckRequest says why, as for any other request. It
  // refuses whatever the reader refuses (a check_wire_test property); should
  // it not, the request is still refused.
  CallArena arena;
  absl::Status status =
      ParseRequest(raw, arena.Create<envoy::service::auth::v3::CheckRequest>());
  if (!status.ok()) return status;
  return absl::InvalidArgumentError(
      "request: not a valid envoy.service.auth.v3.CheckRequest");
}

const absl::string_view* LastValue(
    absl::Span<const CheckReading::Entry> entries, absl::string_view key) {
  for (auto entry = entries.rbegin(); entry != entries.rend(); ++entry) {
    if (entry->key == key) return &entry->value;
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
