// scopectl's command layer on a MockConnection: parsing, exit codes, output
// formats, and where secrets may (once) and may not appear.
#include "client/scopectl.h"

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "client/mocks.h"
#include "gmock/gmock.h"
#include "google/protobuf/util/json_util.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

using ::testing::_;
using ::testing::DoAll;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Invoke;
using ::testing::Not;
using ::testing::Return;
using ::testing::SaveArg;
using ::testing::StrictMock;

constexpr char kAdminToken[] = "admin-token-that-must-never-print";
constexpr char kSecret[] = "rxs_ph_SECRETsecretSECRETsecret0123";

int Occurrences(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

std::string WriteFile(const std::string& name, const std::string& content) {
  const std::string path = absl::StrCat(getenv("TEST_TMPDIR"), "/", name);
  std::ofstream(path) << content;
  return path;
}

class ScopectlTest : public ::testing::Test {
 protected:
  ScopectlTest() {
    env_.admin_token_file =
        WriteFile("admin_token", absl::StrCat(kAdminToken, "\n"));
    env_.connect = [this](const ConnectionOptions& options) {
      ++connects_;
      options_ = options;
      return std::shared_ptr<Connection>(mock_);
    };
  }

  int Run(const std::vector<std::string>& args) {
    out_.str("");
    err_.str("");
    return RunScopectl(args, env_, out_, err_);
  }
  std::string out() const { return out_.str(); }
  std::string err() const { return err_.str(); }
  // Everything printed, for "never printed" checks.
  std::string all() const { return out_.str() + err_.str(); }

  static v1::Key Key(const std::string& id) {
    v1::Key key;
    key.set_key_id(id);
    key.set_organization_id("org_a");
    key.add_apis("external-pharmacy");
    key.add_effective_scopes("orders_read");
    key.set_status(v1::ACTIVE);
    return key;
  }
  static v1::CreateKeyResponse Created() {
    v1::CreateKeyResponse created;
    *created.mutable_key() = Key("key_1");
    created.mutable_key()->set_display_prefix("rxs_ph_SEC");
    created.set_secret(kSecret);
    created.set_revision(7);
    return created;
  }

  // Strict: a call nobody expected (e.g. after a usage error) fails the test.
  std::shared_ptr<StrictMock<MockConnection>> mock_ =
      std::make_shared<StrictMock<MockConnection>>();
  ScopectlEnvironment env_;
  int connects_ = 0;
  ConnectionOptions options_;
  std::ostringstream out_;
  std::ostringstream err_;
};

TEST_F(ScopectlTest, HelpExitsZeroAndDocumentsExitCodes) {
  EXPECT_EQ(Run({"--help"}), kExitOk);
  EXPECT_THAT(out(), HasSubstr("check"));
  EXPECT_THAT(out(), HasSubstr("SCOPEKEEPER_ADMIN_TOKEN_FILE"));
  EXPECT_THAT(out(), HasSubstr("1  check: denied"));
  EXPECT_EQ(Run({"key", "create", "--help"}), kExitOk);
  EXPECT_THAT(out(), HasSubstr("--scope"));
  EXPECT_EQ(connects_, 0);
}

// Every usage error exits 2 with a message and sends no RPC (mock_ is
// strict); the command line itself is checked before any connection.
TEST_F(ScopectlTest, UsageErrorsExitTwoWithoutACall) {
  const std::vector<std::vector<std::string>> bad = {
      {},
      {"frobnicate"},
      {"key"},
      {"key", "get"},                        // KEY_ID missing
      {"key", "create"},                     // --org missing
      {"check", "--api", "a", "GET"},        // PATH missing
      {"check", "--api", "a", "GET", "/x"},  // no key
      {"--timeout", "-1", "policy", "get"},  // not positive
      {"key", "grant", "key_1"},             // nothing to grant
      {"key", "create", "--org", "o", "--expire_time", "tomorrow"},
      {"key", "rotate", "key_1", "--grace_period", "a while"},
      {"watch", "--max_duration", "soon"},
      {"policy", "apply", "/nonexistent/policy.json"},
  };
  for (const auto& args : bad) {
    SCOPED_TRACE(absl::StrJoin(args, " "));
    EXPECT_EQ(Run(args), kExitUsage);
    EXPECT_THAT(err(), HasSubstr("scopectl: "));
    EXPECT_EQ(out(), "");
  }
  connects_ = 0;
  EXPECT_EQ(Run({"key", "create", "--org", "o", "--bogus"}), kExitUsage);
  EXPECT_EQ(Run({"check", "--api", "a", "GET"}), kExitUsage);
  EXPECT_EQ(connects_, 0);
}

TEST_F(ScopectlTest, UsageErrorsNameTheProblem) {
  EXPECT_EQ(Run({"key", "create", "--org", "o", "--expire_time", "soon"}),
            kExitUsage);
  EXPECT_THAT(err(), HasSubstr("--expire_time: not an RFC 3339 time"));
  EXPECT_EQ(
      Run({"check", "--api", "a", "--key", "k", "--key_file", "f", "GET", "/"}),
      kExitUsage);
  EXPECT_THAT(err(), HasSubstr("exactly one of --key, --key_file"));
  EXPECT_EQ(Run({"key", "frob"}), kExitUsage);
  EXPECT_THAT(err(), HasSubstr("unknown command \"frob\" for \"key\"; "
                               "one of: create, get, list,"));
  EXPECT_EQ(Run({"policy"}), kExitUsage);
  EXPECT_THAT(err(), HasSubstr("a command is required for \"policy\""));
  EXPECT_EQ(Run({"--timeout", "0", "audit"}), kExitUsage);
  EXPECT_THAT(err(), HasSubstr("--timeout: must be a positive number"));
}

TEST_F(ScopectlTest, ASecretTypedInTheWrongPlaceIsNotEchoed) {
  // CLI11 names unexpected arguments in its error; a key pasted as an extra
  // argument must not end up in the terminal's scrollback or a CI log.
  EXPECT_EQ(Run({"key", "get", "key_1", kSecret}), kExitUsage);
  EXPECT_THAT(err(), HasSubstr("<redacted>"));
  EXPECT_THAT(all(), Not(HasSubstr(kSecret)));
  EXPECT_THAT(all(), Not(HasSubstr(std::string(kSecret).substr(7, 20))));
}

TEST_F(ScopectlTest, AdminTokenFromTheEnvironmentFileIsSentNeverPrinted) {
  env_.addr = "10.0.0.1:1234";
  EXPECT_CALL(*mock_, GetPolicy)
      .WillOnce(Return(absl::UnauthenticatedError("bad admin token")));
  EXPECT_EQ(Run({"policy", "get"}), kExitRpcError);
  EXPECT_EQ(options_.address, "10.0.0.1:1234");
  EXPECT_EQ(options_.admin_token, kAdminToken);
  EXPECT_EQ(err(), "scopectl: policy get: UNAUTHENTICATED: bad admin token\n");
  EXPECT_THAT(all(), Not(HasSubstr(kAdminToken)));
}

TEST_F(ScopectlTest, FlagsOverrideTheEnvironment) {
  const std::string other = WriteFile("other_token", "other-token\n");
  EXPECT_CALL(*mock_, GetPolicy).WillOnce(Return(v1::Policy()));
  EXPECT_EQ(
      Run({"policy", "get", "--addr", "h:1", "--admin_token_file", other}),
      kExitOk);
  EXPECT_EQ(options_.address, "h:1");
  EXPECT_EQ(options_.admin_token, "other-token");
}

TEST_F(ScopectlTest, TlsFlagsMakeTlsCredentialsOrAUsageError) {
  EXPECT_CALL(*mock_, GetPolicy).WillRepeatedly(Return(v1::Policy()));
  EXPECT_EQ(Run({"policy", "get"}), kExitOk);
  EXPECT_EQ(options_.credentials, nullptr);  // plaintext by default
  const std::string ca = WriteFile("ca.pem", "not really a PEM, unused\n");
  EXPECT_EQ(Run({"policy", "get", "--tls_ca", ca}), kExitOk);
  EXPECT_NE(options_.credentials, nullptr);

  connects_ = 0;
  EXPECT_EQ(Run({"policy", "get", "--tls_cert", ca}), kExitUsage);
  EXPECT_THAT(err(), HasSubstr("TLS needs --tls_ca"));
  EXPECT_EQ(Run({"policy", "get", "--tls_ca", "/nonexistent/ca.pem"}),
            kExitUsage);
  EXPECT_THAT(err(), HasSubstr("cannot read the CA bundle from "
                               "/nonexistent/ca.pem"));
  EXPECT_EQ(connects_, 0);
}

TEST_F(ScopectlTest, DefaultAddressAndMissingTokenFile) {
  env_.admin_token_file = "";
  EXPECT_EQ(Run({"key", "get", "key_1"}), kExitUsage);
  EXPECT_THAT(err(), HasSubstr("pass --admin_token_file or set "
                               "SCOPEKEEPER_ADMIN_TOKEN_FILE"));
  env_.admin_token_file = "/nonexistent/token";
  EXPECT_EQ(Run({"key", "get", "key_1"}), kExitUsage);
  EXPECT_THAT(err(), HasSubstr("/nonexistent/token"));
  EXPECT_EQ(connects_, 0);

  EXPECT_CALL(*mock_, Authorize).WillOnce(Return(v1::AuthorizeResponse()));
  Run({"check", "--key", "k", "--api", "a", "GET", "/"});
  EXPECT_EQ(options_.address, kDefaultAddress);
}

TEST_F(ScopectlTest, KeyCreatePrintsTheSecretExactlyOnce) {
  v1::CreateKeyRequest sent;
  EXPECT_CALL(*mock_, CreateKey)
      .Times(2)
      .WillRepeatedly(DoAll(SaveArg<0>(&sent), Return(Created())));
  EXPECT_EQ(Run({"key", "create", "--org", "org_a", "--api",
                 "external-pharmacy", "--scope", "orders_read,stock_read",
                 "--scope", "webhooks_read", "--bundle", "b1", "--name", "ci",
                 "--expire_time", "2030-01-31T00:00:00Z"}),
            kExitOk);
  EXPECT_EQ(Occurrences(all(), kSecret), 1);
  EXPECT_THAT(out(), HasSubstr(absl::StrCat("secret: ", kSecret, "\n")));
  EXPECT_THAT(out(), HasSubstr("shown once"));
  EXPECT_THAT(out(), HasSubstr("key_1"));
  EXPECT_EQ(sent.organization_id(), "org_a");
  EXPECT_THAT(sent.apis(), ElementsAre("external-pharmacy"));
  EXPECT_THAT(sent.scopes(),
              ElementsAre("orders_read", "stock_read", "webhooks_read"));
  EXPECT_THAT(sent.bundles(), ElementsAre("b1"));
  EXPECT_EQ(sent.name(), "ci");
  EXPECT_EQ(sent.expire_time().seconds(), 1896048000);

  EXPECT_EQ(Run({"--json", "key", "create", "--org", "org_a"}), kExitOk);
  EXPECT_EQ(Occurrences(all(), kSecret), 1);
  v1::CreateKeyResponse parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out(), &parsed).ok())
      << out();
  EXPECT_EQ(parsed.secret(), kSecret);
  EXPECT_EQ(parsed.key().key_id(), "key_1");
}

TEST_F(ScopectlTest, KeyRotatePrintsTheNewSecretOnceAndSendsTheGrace) {
  v1::RotateKeyRequest sent;
  EXPECT_CALL(*mock_, RotateKey)
      .WillOnce(DoAll(SaveArg<0>(&sent), Return(Created())));
  EXPECT_EQ(Run({"key", "rotate", "key_1", "--grace_period", "1h30m"}),
            kExitOk);
  EXPECT_EQ(sent.key_id(), "key_1");
  EXPECT_EQ(sent.grace_period().seconds(), 5400);
  EXPECT_EQ(Occurrences(all(), kSecret), 1);
}

TEST_F(ScopectlTest, KeyReadsAndWritesPrintTheKeyWithoutASecret) {
  v1::GrantScopesRequest grant;
  v1::RevokeScopesRequest revoke_scopes;
  v1::RevokeKeyRequest revoke;
  EXPECT_CALL(*mock_, GetKey).WillOnce(Return(Key("key_1")));
  EXPECT_CALL(*mock_, GrantScopes)
      .WillOnce(DoAll(SaveArg<0>(&grant), Return(Key("key_1"))));
  EXPECT_CALL(*mock_, RevokeScopes)
      .WillOnce(DoAll(SaveArg<0>(&revoke_scopes), Return(Key("key_1"))));
  v1::Key revoked = Key("key_1");
  revoked.set_status(v1::REVOKED);
  EXPECT_CALL(*mock_, RevokeKey)
      .WillOnce(DoAll(SaveArg<0>(&revoke), Return(revoked)));

  EXPECT_EQ(Run({"key", "get", "key_1"}), kExitOk);
  EXPECT_THAT(out(), HasSubstr("key_id:"));
  EXPECT_THAT(out(), HasSubstr("orders_read"));
  EXPECT_EQ(
      Run({"key", "grant", "key_1", "--scope", "stock_read", "--bundle", "b"}),
      kExitOk);
  EXPECT_THAT(grant.scopes(), ElementsAre("stock_read"));
  EXPECT_THAT(grant.bundles(), ElementsAre("b"));
  EXPECT_EQ(Run({"key", "revoke-scopes", "key_1", "--scope", "stock_read"}),
            kExitOk);
  EXPECT_EQ(revoke_scopes.key_id(), "key_1");
  EXPECT_THAT(revoke_scopes.scopes(), ElementsAre("stock_read"));
  EXPECT_EQ(Run({"key", "revoke", "key_1", "--reason", "leaked", "--json"}),
            kExitOk);
  EXPECT_EQ(revoke.reason(), "leaked");
  v1::Key parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out(), &parsed).ok());
  EXPECT_EQ(parsed.status(), v1::REVOKED);
}

TEST_F(ScopectlTest, KeyListFollowsEveryPage) {
  v1::ListKeysResponse first;
  *first.add_keys() = Key("key_1");
  first.set_next_page_token("p2");
  v1::ListKeysResponse second;
  *second.add_keys() = Key("key_2");
  std::vector<std::string> tokens;
  EXPECT_CALL(*mock_, ListKeys)
      .Times(2)
      .WillRepeatedly(
          Invoke([&](const v1::ListKeysRequest& request, absl::Time) {
            tokens.push_back(request.page_token());
            EXPECT_EQ(request.organization_id(), "org_a");
            EXPECT_TRUE(request.include_revoked());
            return tokens.size() == 1 ? first : second;
          }));
  EXPECT_EQ(Run({"key", "list", "--org", "org_a", "--include_revoked"}),
            kExitOk);
  EXPECT_THAT(tokens, ElementsAre("", "p2"));
  const std::vector<std::string> lines =
      absl::StrSplit(out(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 3u) << out();
  EXPECT_TRUE(absl::StartsWith(lines[0], "KEY_ID  "));
  EXPECT_TRUE(absl::StartsWith(lines[1], "key_1  "));
  EXPECT_TRUE(absl::StartsWith(lines[2], "key_2  "));
}

TEST_F(ScopectlTest, CheckExitsZeroWhenAllowedOneWhenDeniedNeverPrintsKey) {
  v1::AuthorizeRequest sent;
  v1::AuthorizeResponse allowed;
  allowed.set_allowed(true);
  allowed.set_reason(v1::ALLOWED);
  allowed.set_http_status(200);
  v1::AuthorizeResponse denied;
  denied.set_reason(v1::INSUFFICIENT_SCOPE);
  denied.set_http_status(403);
  denied.set_message("Insufficient scope. Required: stock_read");
  denied.add_missing_scopes("stock_read");
  EXPECT_CALL(*mock_, Authorize)
      .WillOnce(DoAll(SaveArg<0>(&sent), Return(allowed)))
      .WillOnce(Return(denied))
      .WillOnce(Return(denied));

  EXPECT_EQ(
      Run({"check", "--key", kSecret, "--api", "external-pharmacy", "--org",
           "org_a", "--min_revision", "9", "GET", "/pharmacy_orders/"}),
      kExitOk);
  EXPECT_EQ(sent.api_key(), kSecret);
  EXPECT_EQ(sent.http().api(), "external-pharmacy");
  EXPECT_EQ(sent.http().method(), "GET");
  EXPECT_EQ(sent.http().path(), "/pharmacy_orders/");
  EXPECT_EQ(sent.organization_id(), "org_a");
  EXPECT_EQ(sent.min_revision(), 9u);
  EXPECT_THAT(out(), HasSubstr("ALLOWED"));
  EXPECT_TRUE(options_.admin_token.empty());  // the data plane needs none
  EXPECT_THAT(all(), Not(HasSubstr(kSecret)));

  const std::string key_file =
      WriteFile("api_key", absl::StrCat(kSecret, "\n"));
  EXPECT_EQ(Run({"check", "--key_file", key_file, "--api", "a", "GET", "/s"}),
            kExitDenied);
  EXPECT_THAT(out(), HasSubstr("DENIED"));
  EXPECT_THAT(out(), HasSubstr("INSUFFICIENT_SCOPE"));
  EXPECT_THAT(out(), HasSubstr("Insufficient scope. Required: stock_read"));
  EXPECT_THAT(all(), Not(HasSubstr(kSecret)));

  EXPECT_EQ(
      Run({"check", "--json", "--key", kSecret, "--api", "a", "GET", "/s"}),
      kExitDenied);
  v1::AuthorizeResponse parsed;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(out(), &parsed).ok());
  EXPECT_EQ(parsed.reason(), v1::INSUFFICIENT_SCOPE);
  EXPECT_THAT(all(), Not(HasSubstr(kSecret)));
}

TEST_F(ScopectlTest, CheckFailsClosedOnRpcErrors) {
  EXPECT_CALL(*mock_, Authorize)
      .WillRepeatedly(Return(absl::InvalidArgumentError("unknown api \"x\"")));
  EXPECT_EQ(Run({"check", "--key", kSecret, "--api", "x", "GET", "/"}),
            kExitRpcError);
  EXPECT_EQ(out(), "");
  EXPECT_THAT(err(), HasSubstr("scopectl: check: INVALID_ARGUMENT: "
                               "unknown api \"x\""));
  EXPECT_THAT(err(), HasSubstr("treat as denied"));
  EXPECT_THAT(all(), Not(HasSubstr(kSecret)));
}

TEST_F(ScopectlTest, DescribeShowsTheKeyBehindASecretWithoutPrintingIt) {
  v1::DescribeKeyRequest sent;
  v1::DescribeKeyResponse described;
  *described.mutable_key() = Key("key_1");
  described.mutable_app()->set_app_id("app_1");
  EXPECT_CALL(*mock_, DescribeKey)
      .WillOnce(DoAll(SaveArg<0>(&sent), Return(described)));
  EXPECT_EQ(Run({"describe", "--key", kSecret}), kExitOk);
  EXPECT_EQ(sent.api_key(), kSecret);
  EXPECT_TRUE(options_.admin_token.empty());
  EXPECT_THAT(out(), HasSubstr("key_1"));
  EXPECT_THAT(out(), HasSubstr("app_1"));
  EXPECT_THAT(all(), Not(HasSubstr(kSecret)));
}

TEST_F(ScopectlTest, PolicyApplySendsTheParsedFile) {
  const std::string file =
      WriteFile("policy.json",
                R"({"scopes": [{"name": "orders_read"}], "apis": [{"name": "a",
          "routes": [{"method": "GET", "path": "/o",
                      "requirement": {"all_of": ["orders_read"]}}]}]})");
  v1::PutPolicyRequest sent;
  v1::PutPolicyResponse response;
  response.set_revision(12);
  EXPECT_CALL(*mock_, PutPolicy)
      .WillOnce(DoAll(SaveArg<0>(&sent), Return(response)));
  EXPECT_EQ(Run({"policy", "apply", file}), kExitOk);
  EXPECT_EQ(sent.policy().scopes(0).name(), "orders_read");
  EXPECT_EQ(sent.policy().apis(0).routes(0).requirement().all_of(0),
            "orders_read");
  EXPECT_THAT(out(), HasSubstr("revision 12"));
}

TEST_F(ScopectlTest, PolicyApplyRejectsInvalidJsonWithoutACall) {
  const std::string file =
      WriteFile("bad_policy.json", R"({"scopes": [{"nmae": "x"}]})");
  EXPECT_EQ(Run({"policy", "apply", file}), kExitUsage);
  EXPECT_THAT(err(), HasSubstr("is not a JSON Policy"));
  EXPECT_THAT(err(), HasSubstr(file));
}

TEST_F(ScopectlTest, AppPutAndInstallApprove) {
  v1::PutAppRequest app;
  v1::ApproveInstallationRequest approve;
  EXPECT_CALL(*mock_, PutApp)
      .WillOnce(DoAll(SaveArg<0>(&app), Return(v1::App())));
  v1::Installation installation;
  installation.set_installation_id("inst_1");
  installation.add_pending_scopes("write:patients");
  EXPECT_CALL(*mock_, ApproveInstallation)
      .WillOnce(DoAll(SaveArg<0>(&approve), Return(installation)));
  EXPECT_EQ(Run({"app", "put", "app_1", "--slug", "s", "--live_version_id",
                 "v2", "--scope", "read:patients,write:patients"}),
            kExitOk);
  EXPECT_EQ(app.app().app_id(), "app_1");
  EXPECT_EQ(app.app().live_version_id(), "v2");
  EXPECT_THAT(app.app().requested_scopes(),
              ElementsAre("read:patients", "write:patients"));
  EXPECT_EQ(Run({"install", "approve", "--org", "org_a", "--app_id", "app_1",
                 "--scope", "read:patients"}),
            kExitOk);
  EXPECT_EQ(approve.organization_id(), "org_a");
  EXPECT_THAT(approve.approved_scopes(), ElementsAre("read:patients"));
  EXPECT_THAT(out(), HasSubstr("inst_1"));
  EXPECT_THAT(out(), HasSubstr("write:patients"));
}

TEST_F(ScopectlTest, AuditPrintsATable) {
  v1::ListAuditEventsRequest sent;
  v1::ListAuditEventsResponse response;
  v1::AuditEvent* e = response.add_events();
  e->set_revision(5);
  e->set_action("RevokeKey");
  e->set_key_id("key_1");
  EXPECT_CALL(*mock_, ListAuditEvents)
      .WillOnce(DoAll(SaveArg<0>(&sent), Return(response)));
  EXPECT_EQ(Run({"audit", "--key_id", "key_1", "--after_revision", "4"}),
            kExitOk);
  EXPECT_EQ(sent.key_id(), "key_1");
  EXPECT_EQ(sent.after_revision(), 4u);
  EXPECT_THAT(out(), HasSubstr("REVISION"));
  EXPECT_THAT(out(), HasSubstr("RevokeKey"));
}

// A Watch that offers `n` events (revisions 1..n) until the callback stops.
auto OfferEvents(int n, absl::Status end = absl::OkStatus()) {
  return [n, end](const v1::WatchRequest&, absl::Time,
                  const std::function<bool(const v1::WatchEvent&)>& on_event) {
    for (int i = 1; i <= n; ++i) {
      v1::WatchEvent event;
      event.set_revision(i);
      event.mutable_event()->set_action("CreateKey");
      if (!on_event(event)) return absl::OkStatus();
    }
    return end;
  };
}

TEST_F(ScopectlTest, WatchStopsAfterMaxEventsAndPrintsJsonLines) {
  v1::WatchRequest sent;
  EXPECT_CALL(*mock_, Watch)
      .WillOnce(DoAll(SaveArg<0>(&sent), Invoke(OfferEvents(5))));
  EXPECT_EQ(
      Run({"watch", "--from_revision", "3", "--max_events", "2", "--json"}),
      kExitOk);
  EXPECT_EQ(sent.from_revision(), 3u);
  const std::vector<std::string> lines =
      absl::StrSplit(out(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << out();
  for (int i = 0; i < 2; ++i) {
    v1::WatchEvent event;
    ASSERT_TRUE(
        google::protobuf::util::JsonStringToMessage(lines[i], &event).ok());
    EXPECT_EQ(event.revision(), static_cast<uint64_t>(i + 1));
  }
}

TEST_F(ScopectlTest, WatchDeadlineEndsABoundedWatchCleanly) {
  absl::Time deadline;
  EXPECT_CALL(*mock_, Watch)
      .WillOnce(DoAll(SaveArg<1>(&deadline),
                      Invoke(OfferEvents(1, absl::DeadlineExceededError("")))))
      .WillOnce(Invoke(OfferEvents(0, absl::UnavailableError("gone"))));
  EXPECT_EQ(Run({"watch", "--max_duration", "2s"}), kExitOk);
  EXPECT_NE(deadline, absl::InfiniteFuture());
  EXPECT_THAT(out(), HasSubstr("CreateKey"));
  EXPECT_EQ(Run({"watch"}), kExitRpcError);
  EXPECT_THAT(err(), HasSubstr("scopectl: watch: UNAVAILABLE: gone"));
}

}  // namespace
}  // namespace scopekeeper
