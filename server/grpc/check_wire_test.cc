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
using ::scopekeeper::envoy_view::CheckRequestView;
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

TEST(ParseCheckRequestTest, TheViewReadsWhatEnvoysCheckRequestReads) {
  absl::BitGen random;
  for (int i = 0; i < 3000; ++i) {
    const std::string bytes = RandomCheckBytes(random);
    CheckRequest full;
    ASSERT_TRUE(full.ParseFromString(bytes));
    CheckRequestView view;
    const absl::Status status =
        ParseCheckRequest(BufferOf(bytes, random, 3), &view);
    ASSERT_TRUE(status.ok()) << status;
    EXPECT_EQ(ReadingDiff(full, view), "");
  }
}

TEST(ParseCheckRequestTest, DamagedBytesEnvoysCheckRequestAcceptsReadTheSame) {
  // Bytes cut short, bytes flipped, bytes inserted: whatever Envoy's
  // CheckRequest parses, the view parses to the same reading; whatever the
  // view refuses, the answer is INVALID_ARGUMENT.
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
    CheckRequestView view;
    const absl::Status status =
        ParseCheckRequest(BufferOf(bytes, random, 2), &view);
    if (full_parses) {
      ++accepted;
      ASSERT_TRUE(status.ok()) << status;
      EXPECT_EQ(ReadingDiff(full, view), "");
    } else if (!status.ok()) {
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    }
  }
  EXPECT_GT(accepted, 1000);  // the damage left many requests parsable
}

TEST(ParseCheckRequestTest, RefusalsNameEnvoysFieldsAsForAnyRequest) {
  absl::BitGen random;
  CheckRequest request;
  auto* http = request.mutable_attributes()->mutable_request()->mutable_http();
  (*http->mutable_headers())["authorization"] = "Bearer \xff";
  CheckRequestView view;
  absl::Status status =
      ParseCheckRequest(BufferOf(request.SerializeAsString(), random), &view);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("envoy.service.auth.v3.AttributeContext.HttpRequest."
                        "HeadersEntry.value is not valid UTF-8"));

  http->mutable_headers()->clear();
  http->set_path("/v1/\xc0");
  status =
      ParseCheckRequest(BufferOf(request.SerializeAsString(), random), &view);
  EXPECT_THAT(status.message(),
              HasSubstr("envoy.service.auth.v3.AttributeContext.HttpRequest."
                        "path is not valid UTF-8"));

  status = ParseCheckRequest(BufferOf("\x0a\x05\x22", random), &view);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("not a valid envoy.service.auth.v3.CheckRequest"));
}

TEST(ParseCheckRequestTest, FieldsNothingReadsAreNotChecked) {
  // The header's contract: a peer's principal that is not UTF-8 is refused
  // by Envoy's CheckRequest, accepted by the view (nothing reads it).
  absl::BitGen random;
  CheckRequest request;
  request.mutable_attributes()->mutable_source()->set_principal("\xff");
  request.mutable_attributes()->mutable_request()->mutable_http()->set_path(
      "/v1/x");
  const std::string bytes = request.SerializePartialAsString();
  CheckRequest full;
  EXPECT_FALSE(full.ParseFromString(bytes));
  CheckRequestView view;
  ASSERT_TRUE(ParseCheckRequest(BufferOf(bytes, random), &view).ok());
  EXPECT_EQ(view.attributes().request().http().path(), "/v1/x");
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
