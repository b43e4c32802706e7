#include "server/grpc/check_wire.h"

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "envoy/service/auth/v3/external_auth.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/grpc/check_wire_testing.h"
#include "server/grpc/raw_messages.h"

namespace scopekeeper {
namespace {

using ::envoy::config::core::v3::HeaderValueOption;
using ::envoy::service::auth::v3::AttributeContext;
using ::envoy::service::auth::v3::CheckRequest;
using ::envoy::service::auth::v3::CheckResponse;
using ::testing::HasSubstr;

// `bytes` in up to `pieces` slices cut at random places: the parser reads
// across slice boundaries as it does from gRPC's buffers.
grpc::ByteBuffer BufferOf(const std::string& bytes, absl::BitGen& random,
                          int pieces = 1) {
  std::vector<size_t> cuts = {0, bytes.size()};
  for (int i = 1; i < pieces; ++i) {
    cuts.push_back(absl::Uniform<size_t>(random, 0, bytes.size() + 1));
  }
  std::sort(cuts.begin(), cuts.end());
  std::vector<grpc::Slice> slices;
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    slices.emplace_back(bytes.data() + cuts[i], cuts[i + 1] - cuts[i]);
  }
  return grpc::ByteBuffer(slices.data(), slices.size());
}

// Strings from a small alphabet, so that keys collide and the names the
// gateway reads turn up.
std::string Pick(absl::BitGen& random, const std::vector<std::string>& from) {
  return from[absl::Uniform<size_t>(random, 0, from.size())];
}
const std::vector<std::string>& Values() {
  static const auto* const values = new std::vector<std::string>{
      "",
      "GET",
      "/v1/patients/p_1?q=1",
      "Bearer rxs_ph_abc",
      "org_abc123",
      std::string(200, 'v'),  // a length of two varint bytes
      "caf\xc3\xa9"};
  return *values;
}

// A CheckRequest as Envoy fills it, every field at random, the fields
// Scopekeeper does not read included.
CheckRequest RandomCheck(absl::BitGen& random) {
  CheckRequest request;
  AttributeContext* attributes = request.mutable_attributes();
  if (absl::Bernoulli(random, 0.8)) {
    auto* socket = attributes->mutable_source()
                       ->mutable_address()
                       ->mutable_socket_address();
    socket->set_address("10.1.2.3");
    socket->set_port_value(absl::Uniform<uint32_t>(random, 0, 65536));
    attributes->mutable_source()->set_principal(Pick(random, Values()));
    (*attributes->mutable_destination()->mutable_labels())["k"] =
        Pick(random, Values());
  }
  if (absl::Bernoulli(random, 0.3)) {
    attributes->mutable_tls_session()->set_sni(Pick(random, Values()));
    (*attributes->mutable_metadata_context()->mutable_filter_metadata())["f"];
  }
  for (int i = absl::Uniform(random, 0, 3); i > 0; --i) {
    (*attributes->mutable_context_extensions())[Pick(random, ReadNames())] =
        Pick(random, Values());
  }
  auto* http_request = attributes->mutable_request();
  if (absl::Bernoulli(random, 0.7)) {
    http_request->mutable_time()->set_seconds(
        absl::Uniform<int64_t>(random, 0, int64_t{1} << 40));
  }
  if (absl::Bernoulli(random, 0.1)) return request;  // no http
  auto* http = http_request->mutable_http();
  http->set_id(absl::StrCat(absl::Uniform<uint64_t>(random)));
  http->set_method(Pick(random, Values()));
  http->set_path(Pick(random, Values()));
  http->set_host(Pick(random, Values()));
  http->set_scheme("https");
  http->set_protocol("HTTP/1.1");
  http->set_size(absl::Uniform<int64_t>(random, -1, 1000));
  http->set_body(Pick(random, Values()));
  if (absl::Bernoulli(random, 0.7)) {
    for (int i = absl::Uniform(random, 0, 6); i > 0; --i) {
      (*http->mutable_headers())[Pick(random, ReadNames())] =
          Pick(random, Values());
    }
  } else {
    for (int i = absl::Uniform(random, 0, 6); i > 0; --i) {
      auto* header = http->mutable_header_map()->add_headers();
      header->set_key(Pick(random, ReadNames()));
      if (absl::Bernoulli(random, 0.5))
        header->set_value(Pick(random, Values()));
      if (absl::Bernoulli(random, 0.5)) {
        header->set_raw_value(Pick(random, Values()));
      }
    }
  }
  return request;
}

// Bytes as a gateway could send them: one request, or two concatenated --
// which parse as the two merged: a map key in both keeps the second's
// value, a string field the second's (when set there).
std::string RandomCheckBytes(absl::BitGen& random) {
  std::string bytes = RandomCheck(random).SerializeAsString();
  if (absl::Bernoulli(random, 0.3)) {
    bytes += RandomCheck(random).SerializeAsString();
  }
  return bytes;
}

TEST(ReadCheckRequestTest, ReadsWhatEnvoysCheckRequestHolds) {
  absl::BitGen random;
  for (int i = 0; i < 3000; ++i) {
    const std::string bytes = RandomCheckBytes(random);
    CheckRequest full;
    ASSERT_TRUE(full.ParseFromString(bytes));
    CheckReading reading;
    const absl::Status status =
        ReadCheckRequest(BufferOf(bytes, random, 3), &reading);
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_EQ(ReadingDiff(full, reading), "");
  }
}

TEST(ReadCheckRequestTest, DamagedBytesEnvoysCheckRequestAcceptsReadTheSame) {
  // Bytes cut short, bytes flipped, bytes inserted: whatever Envoy's
  // CheckRequest parses is read to the same values; whatever the reader
  // refuses, the answer is INVALID_ARGUMENT.
  absl::BitGen random;
  int accepted = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string bytes = RandomCheckBytes(random);
    if (bytes.empty()) continue;
    for (int edits = absl::Uniform(random, 1, 4); edits > 0; --edits) {
      const size_t at = absl::Uniform<size_t>(random, 0, bytes.size());
      switch (absl::Uniform(random, 0, 3)) {
        case 0:
          bytes.resize(at);
          break;
        case 1:
          bytes[at] = static_cast<char>(absl::Uniform<int>(random, 0, 256));
          break;
        default:
          bytes.insert(at, 1,
                       static_cast<char>(absl::Uniform<int>(random, 0, 256)));
      }
      if (bytes.empty()) break;
    }
    CheckRequest full;
    const bool full_parses = full.ParseFromString(bytes);
    CheckReading reading;
    const absl::Status status =
        ReadCheckRequest(BufferOf(bytes, random, 2), &reading);
    if (full_parses) {
      ++accepted;
      ASSERT_TRUE(status.ok()) << status;
      EXPECT_EQ(ReadingDiff(full, reading), "");
    } else if (!status.ok()) {
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    }
  }
  EXPECT_GT(accepted, 1000);  // the damage left many requests parsable
}

TEST(ReadCheckRequestTest, RefusalsNameEnvoysFieldsAsForAnyRequest) {
  absl::BitGen random;
  CheckRequest request;
  auto* http = request.mutable_attributes()->mutable_request()->mutable_http();
  (*http->mutable_headers())["authorization"] = "Bearer \xff";
  CheckReading reading;
  absl::Status status =
      ReadCheckRequest(BufferOf(request.SerializeAsString(), random), &reading);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("envoy.service.auth.v3.AttributeContext.HttpRequest."
                        "HeadersEntry.value is not valid UTF-8"));

  http->mutable_headers()->clear();
  http->set_path("/v1/\xc0");
  status =
      ReadCheckRequest(BufferOf(request.SerializeAsString(), random), &reading);
  EXPECT_THAT(status.message(),
              HasSubstr("envoy.service.auth.v3.AttributeContext.HttpRequest."
                        "path is not valid UTF-8"));

  status = ReadCheckRequest(BufferOf("\x0a\x05\x22", random), &reading);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("not a valid envoy.service.auth.v3.CheckRequest"));
}

TEST(ReadCheckRequestTest, FieldsNothingReadsAreNotChecked) {
  // The header's contract: a peer's principal that is not UTF-8 is refused
  // by Envoy's CheckRequest, accepted by the reader (nothing reads it).
  absl::BitGen random;
  CheckRequest request;
  request.mutable_attributes()->mutable_source()->set_principal("\xff");
  request.mutable_attributes()->mutable_request()->mutable_http()->set_path(
      "/v1/x");
  const std::string bytes = request.SerializePartialAsString();
  CheckRequest full;
  EXPECT_FALSE(full.ParseFromString(bytes));
  CheckReading reading;
  ASSERT_TRUE(ReadCheckRequest(BufferOf(bytes, random), &reading).ok());
  EXPECT_EQ(reading.path, "/v1/x");
}

// Wire-format pieces, for bytes no serializer writes.
std::string Varint(uint64_t value) {
  std::string out;
  do {
    out += static_cast<char>((value & 0x7f) | (value >= 0x80 ? 0x80 : 0));
    value >>= 7;
  } while (value != 0);
  return out;
}
std::string Tag(int field, int wire_type) {
  return Varint((static_cast<uint64_t>(field) << 3) | wire_type);
}
constexpr int kVarint = 0, kFixed64 = 1, kLength = 2, kStartGroup = 3,
              kEndGroup = 4, kFixed32 = 5;
std::string Len(int field, const std::string& payload) {
  return Tag(field, kLength) + Varint(payload.size()) + payload;
}
std::string Group(int field, const std::string& payload) {
  return Tag(field, kStartGroup) + payload + Tag(field, kEndGroup);
}
// CheckRequest.attributes.request.http holding `http`.
std::string InHttp(const std::string& http) {
  return Len(1, Len(4, Len(2, http)));
}
// `depth` groups nested in one another.
std::string NestedGroups(int depth) {
  std::string bytes;
  for (int i = 0; i < depth; ++i) bytes = Group(9, bytes);
  return bytes;
}

TEST(ReadCheckRequestTest, WireEdgesAreReadAsProtobufReadsThem) {
  // Encodings Envoy does not write but a client could: for each, the reader
  // accepts exactly when Envoy's generated CheckRequest does, and then
  // reads what it holds.
  const std::string method = Len(2, "GET");
  std::vector<std::pair<std::string, std::string>> cases = {
      {"plain", InHttp(method)},
      {"empty", ""},
      {"method as a varint", InHttp(Tag(2, kVarint) + Varint(5))},
      {"method as fixed32", InHttp(Tag(2, kFixed32) + "abcd")},
      {"method as fixed64", InHttp(Tag(2, kFixed64) + "abcdefgh")},
      {"method as a group", InHttp(Group(2, Tag(1, kVarint) + Varint(1)))},
      {"http as a varint", Len(1, Len(4, Tag(2, kVarint) + Varint(1)))},
      {"attributes twice, merged",
       Len(1, Len(4, Len(2, method))) + Len(1, Len(4, Len(2, Len(4, "/a"))))},
      {"http twice, the last method wins",
       Len(1, Len(4, Len(2, method) + Len(2, Len(2, "PUT"))))},
      {"a string twice, the last wins", InHttp(method + Len(2, "POST"))},
      {"an entry's key twice",
       InHttp(Len(3, Len(1, "x-api-key") + Len(2, "v") + Len(1, "accept")))},
      {"an entry without a key", InHttp(Len(3, Len(2, "v")))},
      {"an entry with an unknown field",
       InHttp(Len(3, Len(1, "x-api-key") + Tag(3, kVarint) + Varint(7) +
                         Len(2, "v")))},
      {"an entry cut short", InHttp(Len(3, Len(1, "x-api-key").substr(0, 3)))},
      {"header_map entries, raw_value not UTF-8",
       InHttp(Len(13, Len(1, Len(1, "authorization") + Len(3, "\xff"))))},
      {"header_map value not UTF-8",
       InHttp(Len(13, Len(1, Len(1, "authorization") + Len(2, "\xff"))))},
      {"method not UTF-8", InHttp(Len(2, "G\xc3"))},
      {"context extension value not UTF-8",
       Len(1, Len(10, Len(1, "api") + Len(2, "\xe2\x82")))},
      {"an unknown group",
       Group(7, Tag(1, kVarint) + Varint(1)) + InHttp(method)},
      {"a group in http", InHttp(Group(7, Len(1, "x")) + method)},
      {"a group ended by another field's end",
       Tag(7, kStartGroup) + Tag(8, kEndGroup)},
      {"a group never ended", Tag(7, kStartGroup) + Tag(1, kVarint) + "\x01"},
      {"an end group alone", Tag(7, kEndGroup)},
      {"an end group alone in http", InHttp(Tag(7, kEndGroup))},
      {"field number 0", Tag(0, kVarint) + Varint(1)},
      {"field number 0 in http", InHttp(Tag(0, kLength) + Varint(0))},
      {"a zero byte", std::string(1, '\0')},
      {"wire type 6", Tag(7, 6)},
      {"wire type 7 in http", InHttp(Tag(7, 7))},
      {"the largest field number",
       Tag((1 << 29) - 1, kVarint) + Varint(1) + InHttp(method)},
      {"a tag in 5 bytes",
       std::string("\x8a\x80\x80\x80\x00", 5) + Varint(0) + InHttp(method)},
      {"a tag in 5 bytes, the last one large",
       std::string("\x8a\x80\x80\x80\x7f", 5) + Varint(0) + InHttp(method)},
      {"an unknown tag in 6 bytes",
       std::string("\xb8\x80\x80\x80\x80\x00", 6) + Varint(0) + InHttp(method)},
      {"a tag in 6 bytes in a group",
       Group(7, std::string("\xb8\x80\x80\x80\x80\x00", 6) + Varint(0))},
      {"an unknown length in 6 bytes",
       Tag(7, kLength) + std::string("\x81\x80\x80\x80\x80\x00", 6) + "x"},
      {"a length in 5 bytes",
       Tag(1, kLength) + std::string("\x80\x80\x80\x80\x00", 5)},
      {"a group inside a group",
       Group(7, Group(8, Len(1, "x")) + Tag(2, kFixed32) + "abcd")},
      {"a group closed twice", Group(7, "") + Tag(7, kEndGroup)},
      {"a group cut in its fixed64",
       Tag(7, kStartGroup) + Tag(1, kFixed64) + "abc"},
      {"a tag in 6 bytes",
       std::string("\x8a\x80\x80\x80\x80\x00", 6) + Varint(0) + InHttp(method)},
      {"a length in 10 bytes",
       Tag(1, kLength) +
           std::string("\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00", 10)},
      {"a length of 2^31", Tag(1, kLength) + Varint(uint64_t{1} << 31)},
      {"a length of 2^32 + 1",
       Tag(1, kLength) + Varint((uint64_t{1} << 32) + 1) + "x"},
      {"a length past the end", Tag(1, kLength) + Varint(5) + "ab"},
      {"a message longer than its parent",
       Len(1, Tag(4, kLength) + Varint(10) + Len(2, method))},
      {"a string longer than its message",
       Len(1, Len(4, Len(2, Tag(2, kLength) + Varint(9) + "GET")))},
      {"a varint of 11 bytes",
       Tag(7, kVarint) + std::string(10, '\x80') + "\x01" + InHttp(method)},
      {"cut in a varint", Tag(7, kVarint) + "\x80"},
      {"cut in a tag", std::string("\x8a", 1)},
  };
  for (int depth : {90, 95, 96, 97, 98, 99, 100, 101, 102}) {
    cases.push_back({absl::StrCat(depth, " nested groups"),
                     NestedGroups(depth) + InHttp(method)});
    cases.push_back({absl::StrCat(depth, " nested groups in http"),
                     InHttp(NestedGroups(depth) + method)});
  }
  absl::BitGen random;
  int accepted = 0, refused = 0;
  for (const auto& [name, bytes] : cases) {
    CheckRequest full;
    const bool full_parses = full.ParseFromString(bytes);
    for (int pieces : {1, 3}) {
      CheckReading reading;
      const absl::Status status =
          ReadCheckRequest(BufferOf(bytes, random, pieces), &reading);
      EXPECT_EQ(status.ok(), full_parses) << name << ": " << status;
      if (status.ok() && full_parses) {
        EXPECT_EQ(ReadingDiff(full, reading), "") << name;
      }
      if (!status.ok()) {
        EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << name;
      }
    }
    ++(full_parses ? accepted : refused);
  }
  EXPECT_GT(accepted, 15);
  EXPECT_GT(refused, 15);
}

// The CheckResponse of an answer as built with Envoy's generated message:
// what SerializeCheckResponse() must write, byte for byte.
CheckResponse BuiltResponse(const GatewayAnswer& answer) {
  CheckResponse response;
  if (answer.allowed()) {
    response.mutable_status()->set_code(0);
    auto* ok = response.mutable_ok_response();
    for (const auto& [name, value] : answer.upstream_headers) {
      if (value.empty()) {
        ok->add_headers_to_remove(std::string(name));
        continue;
      }
      HeaderValueOption* option = ok->add_headers();
      option->mutable_header()->set_key(std::string(name));
      option->mutable_header()->set_value(value);
      option->set_append_action(HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD);
    }
    if (!answer.remove_header.empty()) {
      ok->add_headers_to_remove(answer.remove_header);
    }
    return response;
  }
  response.mutable_status()->set_code(RpcCodeForHttpStatus(answer.http_status));
  auto* denied = response.mutable_denied_response();
  denied->mutable_status()->set_code(
      static_cast<envoy::type::v3::StatusCode>(answer.http_status));
  for (const auto& [name, value] :
       {std::pair<std::string, std::string>{"content-type", "application/json"},
        {std::string(kTraceIdHeader), answer.trace_id}}) {
    denied->add_headers()->mutable_header()->set_key(name);
    denied->mutable_headers(denied->headers_size() - 1)
        ->mutable_header()
        ->set_value(value);
  }
  denied->set_body(answer.body);
  return response;
}

std::string Flat(const grpc::ByteBuffer& raw) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(raw.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& slice : slices) {
    bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  return bytes;
}

TEST(SerializeCheckResponseTest, WritesTheBytesCheckResponseSerializesTo) {
  absl::BitGen random;
  std::vector<GatewayAnswer> answers;
  for (int i = 0; i < 500; ++i) {
    GatewayAnswer answer;
    constexpr int kStatuses[] = {200, 200, 400, 401, 403, 404, 503};
    answer.http_status = kStatuses[absl::Uniform(random, 0, 7)];
    for (absl::string_view name :
         {kKeyIdHeader, kOrganizationIdHeader, kAppIdHeader, kRedactHeader,
          kTraceIdHeader}) {
      answer.upstream_headers.emplace_back(name, Pick(random, Values()));
    }
    if (absl::Bernoulli(random, 0.5)) answer.remove_header = "authorization";
    answer.trace_id = Pick(random, Values());
    answer.body = absl::StrCat("{\"code\":\"forbidden\",\"message\":\"",
                               Pick(random, Values()), "\"}");
    answers.push_back(std::move(answer));
  }
  for (const GatewayAnswer& answer : answers) {
    SCOPED_TRACE(answer.http_status);
    grpc::ByteBuffer raw;
    SerializeCheckResponse(answer, &raw);
    const std::string expected = BuiltResponse(answer).SerializeAsString();
    EXPECT_EQ(Flat(raw), expected);
    if (answer.allowed()) {
      UpstreamHeaders upstream;
      ASSERT_EQ(answer.upstream_headers.size(), upstream.headers.size());
      for (size_t i = 0; i < upstream.headers.size(); ++i) {
        upstream.headers[i] = answer.upstream_headers[i];
      }
      upstream.remove_header = answer.remove_header;
      SerializeCheckAllowed(upstream, &raw);
      EXPECT_EQ(Flat(raw), expected);
    }
  }
}

TEST(SerializeCheckResponseTest, AnAllowAndADenialAsEnvoyReadsThem) {
  GatewayAnswer allow;
  allow.http_status = 200;
  allow.upstream_headers = {{kKeyIdHeader, "key_1"},
                            {kAppIdHeader, ""},
                            {kTraceIdHeader, std::string(300, 't')}};
  allow.remove_header = "x-api-key";
  grpc::ByteBuffer raw;
  SerializeCheckResponse(allow, &raw);
  CheckResponse response;
  ASSERT_TRUE(ParseRequest(raw, &response).ok());
  EXPECT_EQ(response.status().code(), 0);
  ASSERT_TRUE(response.has_ok_response());
  ASSERT_EQ(response.ok_response().headers_size(), 2);
  EXPECT_EQ(response.ok_response().headers(0).header().key(),
            "x-scopekeeper-key-id");
  EXPECT_EQ(response.ok_response().headers(0).header().value(), "key_1");
  EXPECT_EQ(response.ok_response().headers(0).append_action(),
            HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD);
  EXPECT_EQ(response.ok_response().headers(1).header().value(),
            std::string(300, 't'));
  EXPECT_THAT(response.ok_response().headers_to_remove(),
              testing::ElementsAre("x-scopekeeper-app-id", "x-api-key"));

  GatewayAnswer deny;
  deny.http_status = 404;
  deny.trace_id = "abc";
  deny.body = "{}";
  SerializeCheckResponse(deny, &raw);
  ASSERT_TRUE(ParseRequest(raw, &response).ok());
  EXPECT_EQ(response.status().code(), grpc::StatusCode::NOT_FOUND);
  ASSERT_TRUE(response.has_denied_response());
  EXPECT_EQ(response.denied_response().status().code(), 404);
  ASSERT_EQ(response.denied_response().headers_size(), 2);
  EXPECT_EQ(response.denied_response().headers(0).header().key(),
            "content-type");
  EXPECT_EQ(response.denied_response().headers(1).header().key(),
            "x-scopekeeper-trace-id");
  EXPECT_EQ(response.denied_response().headers(1).header().value(), "abc");
  EXPECT_EQ(response.denied_response().body(), "{}");
}

}  // namespace
}  // namespace scopekeeper
