#include "client/proto_yaml.h"

#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/struct.pb.h"
#include "gtest/gtest.h"
#include "proto/scopekeeper/v1/scopekeeper.pb.h"

namespace scopekeeper {
namespace {

TEST(YamlScalarTest, PlainOnlyWhenItReadsBackAsTheSameString) {
  for (const char* plain :
       {"orders_read", "read:patients", "/pharmacy_orders/{uid}", "GET",
        "key_1", "analytics dashboard", "Insufficient scope."}) {
    EXPECT_EQ(YamlScalar(plain), plain);
  }
  // Booleans, null, numbers, dates, indicators, ": " and " #", edges.
  EXPECT_EQ(YamlScalar(""), "\"\"");
  EXPECT_EQ(YamlScalar("true"), "\"true\"");
  EXPECT_EQ(YamlScalar("No"), "\"No\"");
  EXPECT_EQ(YamlScalar("y"), "\"y\"");
  EXPECT_EQ(YamlScalar("null"), "\"null\"");
  EXPECT_EQ(YamlScalar("~"), "\"~\"");
  EXPECT_EQ(YamlScalar("0123"), "\"0123\"");
  EXPECT_EQ(YamlScalar("1.5"), "\"1.5\"");
  EXPECT_EQ(YamlScalar("2030-01-31T00:00:00Z"), "\"2030-01-31T00:00:00Z\"");
  EXPECT_EQ(YamlScalar("-x"), "\"-x\"");
  EXPECT_EQ(YamlScalar("*alias"), "\"*alias\"");
  EXPECT_EQ(YamlScalar("Required: a, b"), "\"Required: a, b\"");
  EXPECT_EQ(YamlScalar("a #b"), "\"a #b\"");
  EXPECT_EQ(YamlScalar("trailing:"), "\"trailing:\"");
  EXPECT_EQ(YamlScalar("x "), "\"x \"");
  EXPECT_EQ(YamlScalar("{\"a\": 1}"), "\"{\\\"a\\\": 1}\"");
  EXPECT_EQ(YamlScalar("line\nbreak\ttab\\"), "\"line\\nbreak\\ttab\\\\\"");
  EXPECT_EQ(YamlScalar(std::string("nul\0bell\a", 9)), "\"nul\\x00bell\\x07\"");
}

TEST(MessageToYamlTest, JsonNamesNestedMessagesListsAndWellKnownTypes) {
  v1::Key key;
  key.set_key_id("key_1");
  key.add_apis("external-pharmacy");
  key.add_apis("public");
  v1::Grant* grant = key.add_grants();
  grant->set_scope("orders_read");
  grant->mutable_expire_time()->set_seconds(1896048000);
  key.add_grants()->set_scope("stock_read");
  key.set_status(v1::REVOKED);
  key.set_revoke_reason("leaked: in a \"public\" repo");
  key.set_revision(18446744073709551615u);
  EXPECT_EQ(MessageToYaml(key),
            "keyId: key_1\n"
            "apis:\n"
            "- external-pharmacy\n"
            "- public\n"
            "grants:\n"
            "- scope: orders_read\n"
            "  expireTime: \"2030-01-31T00:00:00Z\"\n"
            "- scope: stock_read\n"
            "status: REVOKED\n"
            "revokeReason: \"leaked: in a \\\"public\\\" repo\"\n"
            "revision: 18446744073709551615\n");
}

TEST(MessageToYamlTest, NestingIndentsAndEmptyMessagesAreBraces) {
  v1::WatchEvent event;
  event.set_revision(3);
  event.mutable_event()->set_action("CreateKey");
  event.mutable_key()->set_key_id("key_1");
  event.mutable_key()->add_grants();  // a grant with nothing set
  event.set_policy_changed(true);
  EXPECT_EQ(MessageToYaml(event),
            "revision: 3\n"
            "event:\n"
            "  action: CreateKey\n"
            "key:\n"
            "  keyId: key_1\n"
            "  grants:\n"
            "  - {}\n"
            "policyChanged: true\n");

  v1::Route route;
  route.mutable_requirement();  // present, all defaults
  route.add_redactions()->set_field("prescription");
  EXPECT_EQ(MessageToYaml(route),
            "requirement: {}\n"
            "redactions:\n"
            "- field: prescription\n");
  EXPECT_EQ(MessageToYaml(v1::Key()), "{}\n");

  v1::RotateKeyRequest rotate;
  rotate.mutable_grace_period()->set_seconds(5400);
  EXPECT_EQ(MessageToYaml(rotate), "gracePeriod: \"5400s\"\n");
}

TEST(MessageToYamlTest, MapsHaveSortedQuotedKeys) {
  google::protobuf::Struct s;
  (*s.mutable_fields())["zeta"].set_string_value("z");
  (*s.mutable_fields())["true"].set_bool_value(true);
  (*s.mutable_fields())["alpha"].set_number_value(1.5);
  EXPECT_EQ(MessageToYaml(s),
            "fields:\n"
            "  alpha:\n"
            "    numberValue: 1.5\n"
            "  \"true\":\n"
            "    boolValue: true\n"
            "  zeta:\n"
            "    stringValue: z\n");
}

}  // namespace
}  // namespace scopekeeper
