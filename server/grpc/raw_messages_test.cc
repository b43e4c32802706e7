#include "server/grpc/raw_messages.h"

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/util/message_differencer.h"
#include "gtest/gtest.h"
#include "proto/scopekeeper/v1/scopekeeper.pb.h"

namespace scopekeeper {
namespace {

using ::google::protobuf::util::MessageDifferencer;
using ::testing::HasSubstr;

grpc::ByteBuffer BufferOf(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

v1::AuthorizeResponse Answer(size_t message_bytes) {
  v1::AuthorizeResponse answer;
  answer.set_allowed(true);
  answer.set_http_status(200);
  answer.set_key_id("key_1");
  answer.add_redactions("prescription");
  answer.set_message(std::string(message_bytes, 'm'));
  answer.set_revision(42);
  return answer;
}

TEST(SerializeResponseTest, SmallAndLargeAnswersRoundTrip) {
  // One slice up to kFlatResponseBytes; the stream writer beyond.
  for (size_t bytes : {size_t{0}, size_t{10}, kFlatResponseBytes - 64,
                       kFlatResponseBytes + 1, 3 * kFlatResponseBytes}) {
    SCOPED_TRACE(bytes);
    const v1::AuthorizeResponse answer = Answer(bytes);
    grpc::ByteBuffer raw;
    SerializeResponse(answer, &raw);
    EXPECT_EQ(raw.Length(), answer.ByteSizeLong());
    v1::AuthorizeResponse parsed;
    ASSERT_TRUE(ParseRequest(raw, &parsed).ok());
    EXPECT_TRUE(MessageDifferencer::Equals(parsed, answer));
  }
}

TEST(SerializeResponseTest, ReplacesWhatTheBufferHeld) {
  // Watch serializes each event into the same buffer.
  grpc::ByteBuffer raw;
  SerializeResponse(Answer(2 * kFlatResponseBytes), &raw);
  v1::AuthorizeResponse small;
  small.set_key_id("key_2");
  SerializeResponse(small, &raw);
  v1::AuthorizeResponse parsed;
  ASSERT_TRUE(ParseRequest(raw, &parsed).ok());
  EXPECT_TRUE(MessageDifferencer::Equals(parsed, small));
  v1::AuthorizeResponse empty;
  SerializeResponse(empty, &raw);
  EXPECT_EQ(raw.Length(), 0u);
}

TEST(ParseRequestTest, NamesTheFieldThatIsNotUtf8) {
  // api_key (field 1) = "\xff\xfe", encoded by hand.
  v1::AuthorizeRequest parsed;
  const absl::Status status =
      ParseRequest(BufferOf(std::string("\x0a\x02\xff\xfe", 4)), &parsed);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("scopekeeper.v1.AuthorizeRequest.api_key"));
  EXPECT_THAT(status.message(), HasSubstr("not valid UTF-8"));
}

TEST(ParseRequestTest, NamesTheTypeOfABrokenEncoding) {
  v1::AuthorizeRequest parsed;
  const absl::Status status =
      ParseRequest(BufferOf(std::string("\x0a\x50short", 7)), &parsed);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("not a valid scopekeeper.v1.AuthorizeRequest"));
}

TEST(ParseRequestTest, OneSliceOrManyParseAlikeAndReplaceWhatWasThere) {
  v1::AuthorizeRequest request;
  request.set_api_key("rxs_ph_key");
  request.mutable_http()->set_path("/v1/patients/p_1");
  const std::string bytes = request.SerializeAsString();
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    SCOPED_TRACE(cut);
    // cut 0: one slice; else two (the stream reader's path).
    std::vector<grpc::Slice> slices;
    if (cut > 0) slices.emplace_back(bytes.data(), cut);
    slices.emplace_back(bytes.data() + cut, bytes.size() - cut);
    const grpc::ByteBuffer raw(slices.data(), slices.size());
    v1::AuthorizeRequest parsed;
    parsed.set_organization_id("org_left_over");
    ASSERT_TRUE(ParseRequest(raw, &parsed).ok());
    EXPECT_TRUE(MessageDifferencer::Equals(parsed, request));
    // Cut short, in one slice or two: refused.
    std::vector<grpc::Slice> short_slices;
    if (cut > 0) short_slices.emplace_back(bytes.data(), cut);
    short_slices.emplace_back(bytes.data() + cut, bytes.size() - cut - 1);
    EXPECT_FALSE(
        ParseRequest(grpc::ByteBuffer(short_slices.data(), short_slices.size()),
                     &parsed)
            .ok());
  }
}

}  // namespace
}  // namespace scopekeeper
