#include "client/scopectl_format.h"

#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(TextTableTest, PadsColumnsToTheWidestCellWithoutTrailingSpaces) {
  TextTable t;
  t.AddRow({"KEY_ID", "STATUS", "SCOPES"});
  t.AddRow({"key_long_id", "ACTIVE", "a, b"});
  t.AddRow({"k", "REVOKED", "-"});
  std::ostringstream out;
  t.Print(out);
  EXPECT_EQ(out.str(),
            "KEY_ID       STATUS   SCOPES\n"
            "key_long_id  ACTIVE   a, b\n"
            "k            REVOKED  -\n");
}

TEST(ToJsonTest, ProtoJsonMappingAsGrpcurlShowsIt) {
  v1::AuthorizeResponse denied;
  denied.set_reason(v1::KEY_REVOKED);
  denied.set_http_status(401);
  denied.set_revision(7);
  const std::string line = ToJson(denied, /*multiline=*/false);
  EXPECT_EQ(line,
            "{\"reason\":\"KEY_REVOKED\",\"revision\":\"7\","
            "\"httpStatus\":401}");
  const std::string indented = ToJson(denied, /*multiline=*/true);
  EXPECT_THAT(indented, HasSubstr("\n"));
  EXPECT_NE(indented.back(), '\n');
  v1::AuthorizeResponse parsed;
  ASSERT_TRUE(
      google::protobuf::util::JsonStringToMessage(indented, &parsed).ok());
  EXPECT_EQ(parsed.reason(), v1::KEY_REVOKED);
}

TEST(PrintStreamedTest, JsonLinesOrYamlDocuments) {
  v1::WatchEvent event;
  event.set_revision(3);
  event.mutable_event()->set_action("PutApp");
  std::ostringstream out;
  PrintStreamed(event, OutputFormat::kJson, out);
  PrintStreamed(event, OutputFormat::kJson, out);
  EXPECT_EQ(out.str(),
            "{\"revision\":\"3\",\"event\":{\"action\":\"PutApp\"}}\n"
            "{\"revision\":\"3\",\"event\":{\"action\":\"PutApp\"}}\n");
  out.str("");
  PrintStreamed(event, OutputFormat::kYaml, out);
  PrintStreamed(event, OutputFormat::kYaml, out);
  EXPECT_EQ(out.str(),
            "---\nrevision: 3\nevent:\n  action: PutApp\n"
            "---\nrevision: 3\nevent:\n  action: PutApp\n");
}

TEST(PrintTest, DecisionAndKeyShowWhatAnOperatorNeeds) {
  v1::AuthorizeResponse d;
  d.set_reason(v1::INSUFFICIENT_SCOPE);
  d.set_http_status(403);
  d.set_message("Insufficient scope. Required: stock_read");
  d.add_missing_scopes("stock_read");
  d.set_matched_route("GET /pharmacy_skus/");
  std::ostringstream out;
  PrintDecision(d, out);
  EXPECT_THAT(out.str(), HasSubstr("decision:         DENIED\n"));
  EXPECT_THAT(out.str(), HasSubstr("reason:           INSUFFICIENT_SCOPE\n"));
  EXPECT_THAT(out.str(), HasSubstr("missing_scopes:   stock_read\n"));
  EXPECT_THAT(out.str(), HasSubstr("matched_route:    GET /pharmacy_skus/\n"));

  v1::Key key;
  key.set_key_id("key_1");
  key.set_status(v1::ACTIVE);
  v1::Grant* grant = key.add_grants();
  grant->set_scope("orders_read");
  grant->mutable_expire_time()->set_seconds(1896048000);
  out.str("");
  PrintKey(key, out);
  EXPECT_THAT(out.str(), HasSubstr("status:            ACTIVE\n"));
  EXPECT_THAT(out.str(), HasSubstr("orders_read (until 2030-01-31T00:00:00Z)"));
  EXPECT_THAT(out.str(), HasSubstr("expire_time:       -\n"));
  EXPECT_THAT(out.str(), Not(HasSubstr("revoke_time")));  // not revoked
}

}  // namespace
}  // namespace scopekeeper
