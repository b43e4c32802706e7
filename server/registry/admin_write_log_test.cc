// Every admin write logs one line: action, actor, what it was about, the
// organization, the revision it returned and its outcome; never a secret.
#include "server/registry/admin_write_log.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/log_capture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/testing/core_test_env.h"

namespace scopekeeper {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

class AdminWriteLogTest : public ::testing::Test {
 protected:
  void SetUp() override { env_.PutPolicyJson(kTestPolicyJson); }

  // The "admin write" lines logged since the last call.
  std::vector<std::string> Written() {
    std::vector<std::string> lines = log_.LinesContaining("admin write");
    std::vector<std::string> fresh(lines.begin() + seen_, lines.end());
    seen_ = lines.size();
    return fresh;
  }

  LogCapture log_;
  CoreTestEnv env_;
  size_t seen_ = 0;
};

TEST_F(AdminWriteLogTest, PolicyWrite) {
  // The policy put in SetUp() (revision 1).
  EXPECT_THAT(Written(),
              ElementsAre(HasSubstr("level=info msg=\"admin write\" "
                                    "action=PutPolicy actor=test-admin "
                                    "revision=1 outcome=ok\n")));
}

TEST_F(AdminWriteLogTest, KeyWritesNameTheKeyOrganizationAndRevision) {
  Written();
  v1::CreateKeyRequest create;
  create.set_organization_id("org_a");
  create.set_name("nightly export");
  create.add_apis("pharmacy");
  create.add_scopes("orders_read");
  absl::StatusOr<v1::CreateKeyResponse> created =
      env_.registry.CreateKey(create, "mtls:CN=ops,O=Example");
  ASSERT_TRUE(created.ok()) << created.status();
  const std::string& id = created->key().key_id();
  const std::vector<std::string> create_lines = Written();
  ASSERT_THAT(create_lines, SizeIs(1));
  EXPECT_THAT(create_lines[0],
              HasSubstr(absl::StrCat("action=CreateKey "
                                     "actor=\"mtls:CN=ops,O=Example\" key_id=",
                                     id,
                                     " organization_id=org_a revision=2 "
                                     "outcome=ok\n")));
  // Neither the secret nor free text from the request.
  EXPECT_THAT(create_lines[0], Not(HasSubstr(created->secret())));
  EXPECT_THAT(create_lines[0], Not(HasSubstr("nightly")));

  v1::GrantScopesRequest grant;
  grant.set_key_id(id);
  grant.add_scopes("orders_write");
  ASSERT_TRUE(env_.registry.GrantScopes(grant, "admin-token").ok());
  v1::RevokeScopesRequest revoke_scopes;
  revoke_scopes.set_key_id(id);
  revoke_scopes.add_scopes("orders_write");
  ASSERT_TRUE(env_.registry.RevokeScopes(revoke_scopes, "admin-token").ok());
  v1::RotateKeyRequest rotate;
  rotate.set_key_id(id);
  absl::StatusOr<v1::CreateKeyResponse> rotated =
      env_.registry.RotateKey(rotate, "admin-token");
  ASSERT_TRUE(rotated.ok());
  v1::RevokeKeyRequest revoke;
  revoke.set_key_id(id);
  revoke.set_reason("leaked in ticket 4711");
  ASSERT_TRUE(env_.registry.RevokeKey(revoke, "admin-token").ok());
  const std::string tail = absl::StrCat(" actor=admin-token key_id=", id,
                                        " organization_id=org_a revision=");
  const std::vector<std::string> lines = Written();
  EXPECT_THAT(
      lines,
      ElementsAre(HasSubstr("action=GrantScopes" + tail + "3 outcome=ok"),
                  HasSubstr("action=RevokeScopes" + tail + "4 outcome=ok"),
                  HasSubstr("action=RotateKey" + tail + "5 outcome=ok"),
                  HasSubstr("action=RevokeKey" + tail + "6 outcome=ok")));
  for (const std::string& line : lines) {
    EXPECT_THAT(line, Not(HasSubstr(rotated->secret())));
    EXPECT_THAT(line, Not(HasSubstr("4711")));  // the revoke reason
  }
}

TEST_F(AdminWriteLogTest, AppAndInstallationWritesCarryTheirRevision) {
  Written();
  v1::PutAppRequest put;
  put.mutable_app()->set_app_id("app_1");
  put.mutable_app()->add_requested_scopes("orders_read");
  ASSERT_TRUE(env_.registry.PutApp(put, "admin-token").ok());
  v1::ApproveInstallationRequest approve;
  approve.set_organization_id("org_b");
  approve.set_app_id("app_1");
  approve.add_approved_scopes("orders_read");
  absl::StatusOr<v1::Installation> installation =
      env_.registry.ApproveInstallation(approve, "admin-token");
  ASSERT_TRUE(installation.ok());
  EXPECT_THAT(
      Written(),
      ElementsAre(
          HasSubstr("action=PutApp actor=admin-token app_id=app_1 revision=2 "
                    "outcome=ok\n"),
          HasSubstr(absl::StrCat("action=ApproveInstallation actor=admin-token "
                                 "installation_id=",
                                 installation->installation_id(),
                                 " app_id=app_1 organization_id=org_b "
                                 "revision=3 outcome=ok\n"))));
}

TEST_F(AdminWriteLogTest, RefusedWritesLogTheCodeAndRedactCallerValues) {
  Written();
  v1::CreateKeyRequest create;
  // A key pasted into the organization field: never echoed.
  const std::string pasted =
      "Bearer rx_ph_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
  create.set_organization_id(pasted);
  ASSERT_FALSE(env_.registry.CreateKey(create, "admin-token").ok());
  v1::RevokeKeyRequest revoke;
  revoke.set_key_id("key_doesnotexist");
  ASSERT_FALSE(env_.registry.RevokeKey(revoke, "admin-token").ok());
  v1::CreateBackupRequest backup;
  backup.set_destination("relative/path");
  ASSERT_FALSE(env_.registry.CreateBackup(backup, "admin-token").ok());
  const std::vector<std::string> lines = Written();
  ASSERT_THAT(lines, SizeIs(3));
  EXPECT_THAT(lines[0],
              AllOf(HasSubstr("level=warning msg=\"admin write\" "
                              "action=CreateKey actor=admin-token "
                              "organization_id=\"Bearer rx_ph_<redacted>\" "
                              "outcome=INVALID_ARGUMENT error="),
                    Not(HasSubstr("AbCdEfGh")), Not(HasSubstr("revision="))));
  EXPECT_THAT(lines[1], HasSubstr("action=RevokeKey actor=admin-token "
                                  "key_id=key_doesnotexist "
                                  "outcome=NOT_FOUND error=\"key_id: no key "));
  EXPECT_THAT(lines[2], HasSubstr("action=CreateBackup actor=admin-token "
                                  "path=relative/path "
                                  "outcome=INVALID_ARGUMENT error="));
}

TEST_F(AdminWriteLogTest, ReadsAreNotLogged) {
  Written();
  const v1::CreateKeyResponse key = env_.CreateKey({"pharmacy"}, {});
  Written();
  v1::GetKeyRequest get;
  get.set_key_id(key.key().key_id());
  ASSERT_TRUE(env_.registry.GetKey(get).ok());
  ASSERT_TRUE(env_.registry.ListKeys(v1::ListKeysRequest()).ok());
  ASSERT_TRUE(env_.registry.ListAuditEvents(v1::ListAuditEventsRequest()).ok());
  EXPECT_THAT(Written(), IsEmpty());
}

TEST_F(AdminWriteLogTest, JsonFormat) {
  Written();
  SetLogFormat(LogFormat::kJson);
  LogAdminWrite({"PutApp", "admin-token", {{"app_id", "app_1"}}, "", 7},
                absl::OkStatus());
  SetLogFormat(LogFormat::kLogfmt);
  EXPECT_THAT(Written(), ElementsAre(HasSubstr(
                             "\"level\":\"info\",\"msg\":\"admin write\","
                             "\"action\":\"PutApp\",\"actor\":\"admin-token\","
                             "\"app_id\":\"app_1\",\"revision\":\"7\","
                             "\"outcome\":\"ok\"}\n")));
}

}  // namespace
}  // namespace scopekeeper
