// scopectl's command layer on a MockConnection: parsing, exit codes, output
// formats, and where secrets may (once) and may not appear.
#include "client/scopectl.h"

#include <sys/stat.h>

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
#include "base/version.h"
#include "client/mocks.h"
#include "client/test_pem.h"
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

std::vector<std::string> Lines(const std::string& text) {
  return absl::StrSplit(text, '\n', absl::SkipEmpty());
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
  EXPECT_THAT(out(), HasSubstr("1  check, batch: denied"));
  EXPECT_THAT(out(), HasSubstr("SCOPEKEEPER_TLS_CA"));
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
      {"--addr", "127.0.0.1", "policy", "get"},  // no port
      {"--addr", "foo bar:1", "check", "--key", "k", "--api", "a", "GET", "/"},
      {"-o", "xml", "policy", "get"},
      {"--json", "-o", "yaml", "policy", "get"},
      {"backup", "relative/dir"},
      {"backup"},
      {"install", "get", "--org", "o"},  // --app_id missing
      {"key", "list", "--unused_for", "a month"},
      {"check", "--key", "k", "--all_of", "a", "--api", "x", "GET", "/"},
      {"check", "--key", "k", "--authenticated_only", "--any_of", "a"},
      {"batch", "/nonexistent/requests.jsonl"},
      {"completion", "fish"},
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
  const std::string ca = WriteFile("ca.pem", MakeTestPem("ca").cert);
  EXPECT_EQ(Run({"policy", "get", "--tls_ca", ca}), kExitOk);
  EXPECT_NE(options_.credentials, nullptr);

  connects_ = 0;
  EXPECT_EQ(Run({"policy", "get", "--tls_cert", ca}), kExitUsage);
  EXPECT_THAT(err(), HasSubstr("TLS needs --tls_ca"));
  EXPECT_EQ(Run({"policy", "get", "--tls_ca", "/nonexistent/ca.pem"}),
            kExitUsage);
  EXPECT_EQ(err(),
            "scopectl: policy get: cannot read the CA bundle (--tls_ca) from "
            "/nonexistent/ca.pem: No such file or directory\n");
  // Not PEM: one clear line, not gRPC's four and "empty address list".
  const std::string not_pem = WriteFile("not.pem", "not a certificate\n");
  EXPECT_EQ(Run({"policy", "get", "--tls_ca", not_pem}), kExitUsage);
  EXPECT_EQ(err(), absl::StrCat("scopectl: policy get: --tls_ca ", not_pem,
                                ": not a PEM certificate (-----BEGIN "
                                "CERTIFICATE-----)\n"));
  EXPECT_EQ(connects_, 0);
}

TEST_F(ScopectlTest, TlsSettingsFromTheEnvironment) {
  const TestPem client = MakeTestPem("ops");
  env_.tls_ca = WriteFile("env_ca.pem", MakeTestPem("ca").cert);
  env_.tls_cert = WriteFile("env_client.pem", client.cert);
  env_.tls_key = WriteFile("env_client.key", client.key);
  env_.admin_token_file = "";  // the certificate is the admin identity
  EXPECT_CALL(*mock_, GetPolicy).WillOnce(Return(v1::Policy()));
  EXPECT_EQ(Run({"policy", "get"}), kExitOk) << err();
  EXPECT_NE(options_.credentials, nullptr);
  EXPECT_EQ(options_.admin_token, "");
  env_.tls_key = WriteFile("env_other.key", MakeTestPem("other").key);
  EXPECT_EQ(Run({"policy", "get"}), kExitUsage);
  EXPECT_THAT(err(), HasSubstr("SCOPEKEEPER_TLS_KEY"));
  EXPECT_THAT(err(), HasSubstr("is not the key of SCOPEKEEPER_TLS_CERT"));
}

TEST_F(ScopectlTest, ClosedTlsConnectionHintsAtAClientCertificate) {
  env_.tls_ca = WriteFile("hint_ca.pem", MakeTestPem("ca").cert);
  EXPECT_CALL(*mock_, GetPolicy)  // retried: UNAVAILABLE
      .WillRepeatedly(Return(absl::UnavailableError("Socket closed")));
  EXPECT_EQ(Run({"policy", "get"}), kExitRpcError);
  EXPECT_EQ(err(),
            "scopectl: policy get: UNAVAILABLE: Socket closed (the TLS "
            "connection was closed: the server may require a client "
            "certificate; pass --tls_cert and --tls_key)\n");
}

TEST_F(ScopectlTest, AddressErrorsAreUsageErrorsNamingTheSource) {
  EXPECT_EQ(Run({"--addr", "127.0.0.1", "check", "--key", "k", "--api", "a",
                 "GET", "/"}),
            kExitUsage);
  EXPECT_EQ(err(),
            "scopectl: check: --addr \"127.0.0.1\": no port; expected "
            "HOST:PORT, e.g. 127.0.0.1:50051\n");
  env_.addr = "foo bar";
  EXPECT_EQ(Run({"policy", "get"}), kExitUsage);
  EXPECT_THAT(err(), HasSubstr("SCOPEKEEPER_ADDR \"foo bar\": contains "
                               "whitespace"));
  EXPECT_EQ(connects_, 0);
}

TEST_F(ScopectlTest, DefaultAddressAndMissingTokenFile) {
  env_.admin_token_file = "";
  EXPECT_EQ(Run({"key", "get", "key_1"}), kExitUsage);
  EXPECT_THAT(err(), HasSubstr("no admin token: pass --admin_token_file, "
                               "set SCOPEKEEPER_ADMIN_TOKEN_FILE"));
  env_.admin_token_file = "/nonexistent/token";
  EXPECT_EQ(Run({"key", "get", "key_1"}), kExitUsage);
  EXPECT_EQ(err(),
            "scopectl: key get: cannot read the admin token from "
            "/nonexistent/token: No such file or directory\n");
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

TEST_F(ScopectlTest, WatchEndsWhenCaughtUpUnlessFollowing) {
  std::vector<v1::WatchRequest> sent;
  auto record = [&](const v1::WatchRequest& request, absl::Time,
                    const std::function<bool(const v1::WatchEvent&)>&) {
    sent.push_back(request);
    return absl::OkStatus();
  };
  EXPECT_CALL(*mock_, Watch)
      .WillOnce(DoAll(Invoke(record), Invoke(OfferEvents(3))))
      .WillOnce(DoAll(Invoke(record), Invoke(OfferEvents(3))));
  // The server has 3 events and ends the stream: all 3, then exit 0, even
  // though --max_events asks for more.
  EXPECT_EQ(Run({"watch", "--from_revision", "0", "--max_events", "10"}),
            kExitOk);
  ASSERT_EQ(sent.size(), 1u);
  EXPECT_TRUE(sent[0].end_when_caught_up());
  EXPECT_EQ(Lines(out()).size(), 3u) << out();
  EXPECT_EQ(Run({"watch", "--follow"}), kExitOk);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_FALSE(sent[1].end_when_caught_up());
}

TEST_F(ScopectlTest, VersionPrintsTheVersionAndExitsZero) {
  EXPECT_EQ(Run({"--version"}), kExitOk);
  EXPECT_EQ(out(), absl::StrCat("scopectl ", ScopekeeperVersion(), "\n"));
  EXPECT_EQ(err(), "");
  EXPECT_EQ(connects_, 0);
}

TEST_F(ScopectlTest, CompletionScriptListsCommandsAndFlags) {
  EXPECT_EQ(Run({"completion", "bash"}), kExitOk);
  EXPECT_THAT(out(), HasSubstr("complete -F _scopectl scopectl\n"));
  EXPECT_THAT(out(), HasSubstr("[\".\"]=\"policy key app install check "
                               "batch describe audit watch backup context "
                               "completion\""));
  EXPECT_THAT(out(), HasSubstr("[\"install\"]=\"approve get\""));
  EXPECT_THAT(out(), HasSubstr("--secret_file"));
  EXPECT_THAT(out(), HasSubstr("--unused_for"));
  EXPECT_EQ(connects_, 0);
}

TEST_F(ScopectlTest, OutputFormatsUseTheProtoJsonMapping) {
  v1::Key key = Key("key_1");  // name, revision, ... left at their defaults
  EXPECT_CALL(*mock_, GetKey).WillRepeatedly(Return(key));
  EXPECT_EQ(Run({"-o", "json", "key", "get", "key_1"}), kExitOk);
  const std::string json = out();
  EXPECT_THAT(json, HasSubstr("\"keyId\": \"key_1\""));
  EXPECT_THAT(json, HasSubstr("\"effectiveScopes\": ["));
  EXPECT_THAT(json, Not(HasSubstr("key_id")));
  EXPECT_THAT(json, Not(HasSubstr("\"name\"")));      // empty: omitted
  EXPECT_THAT(json, Not(HasSubstr("\"revision\"")));  // zero: omitted
  EXPECT_EQ(Run({"key", "get", "key_1", "--json"}), kExitOk);
  EXPECT_EQ(out(), json);  // --json is -o json
  EXPECT_EQ(Run({"key", "get", "key_1", "--output", "yaml"}), kExitOk);
  EXPECT_EQ(out(),
            "keyId: key_1\n"
            "organizationId: org_a\n"
            "apis:\n"
            "- external-pharmacy\n"
            "effectiveScopes:\n"
            "- orders_read\n"
            "status: ACTIVE\n");
  EXPECT_EQ(Run({"key", "get", "key_1", "-o", "table"}), kExitOk);
  EXPECT_THAT(out(), HasSubstr("key_id:"));
}

TEST_F(ScopectlTest, BackupSendsTheDestinationAndPrintsTheRevision) {
  v1::CreateBackupRequest sent;
  v1::CreateBackupResponse backup;
  backup.set_revision(1234);
  backup.set_path("/var/backups/sk/1");
  EXPECT_CALL(*mock_, CreateBackup)
      .WillOnce(DoAll(SaveArg<0>(&sent), Return(backup)))
      .WillOnce(Return(absl::FailedPreconditionError(
          "checkpoint: /var/backups/sk/1 already exists")));
  EXPECT_EQ(Run({"backup", "/var/backups/sk/1"}), kExitOk);
  EXPECT_EQ(sent.destination(), "/var/backups/sk/1");
  EXPECT_EQ(options_.admin_token, kAdminToken);
  EXPECT_THAT(out(), HasSubstr("path:      /var/backups/sk/1\n"));
  EXPECT_THAT(out(), HasSubstr("revision:  1234\n"));
  EXPECT_EQ(Run({"backup", "/var/backups/sk/1"}), kExitRpcError);
  EXPECT_THAT(err(), HasSubstr("FAILED_PRECONDITION: checkpoint: "));
  EXPECT_EQ(Run({"backup", "backups/1"}), kExitUsage);
  EXPECT_THAT(err(), HasSubstr("must be an absolute path on the server's"));
}

TEST_F(ScopectlTest, InstallGetShowsApprovedAndPendingScopes) {
  v1::GetInstallationRequest sent;
  v1::Installation installation;
  installation.set_installation_id("inst_1");
  installation.add_approved_scopes("read:patients");
  installation.add_pending_scopes("write:patients");
  EXPECT_CALL(*mock_, GetInstallation)
      .WillOnce(DoAll(SaveArg<0>(&sent), Return(installation)));
  EXPECT_EQ(Run({"install", "get", "--org", "org_a", "--app_id", "app_1"}),
            kExitOk);
  EXPECT_EQ(sent.organization_id(), "org_a");
  EXPECT_EQ(sent.app_id(), "app_1");
  EXPECT_THAT(out(), HasSubstr("approved_scopes:  read:patients\n"));
  EXPECT_THAT(out(), HasSubstr("pending_scopes:   write:patients\n"));
}

TEST_F(ScopectlTest, CheckWithAnExplicitRequirementSendsNoRoute) {
  std::vector<v1::AuthorizeRequest> sent;
  v1::AuthorizeResponse allowed;
  allowed.set_allowed(true);
  allowed.set_reason(v1::ALLOWED);
  EXPECT_CALL(*mock_, Authorize)
      .Times(2)
      .WillRepeatedly(
          Invoke([&](const v1::AuthorizeRequest& request, absl::Time) {
            sent.push_back(request);
            return allowed;
          }));
  EXPECT_EQ(Run({"check", "--key", kSecret, "--all_of", "a,b", "--any_of", "c",
                 "--any_of", "d"}),
            kExitOk);
  EXPECT_EQ(Run({"check", "--key", kSecret, "--authenticated_only"}), kExitOk);
  ASSERT_EQ(sent.size(), 2u);
  EXPECT_FALSE(sent[0].has_http());
  EXPECT_THAT(sent[0].requirement().all_of(), ElementsAre("a", "b"));
  EXPECT_THAT(sent[0].requirement().any_of(), ElementsAre("c", "d"));
  EXPECT_FALSE(sent[0].requirement().authenticated_only());
  EXPECT_TRUE(sent[1].requirement().authenticated_only());
  EXPECT_TRUE(sent[1].requirement().all_of().empty());
  EXPECT_THAT(all(), Not(HasSubstr(kSecret)));

  EXPECT_EQ(Run({"check", "--key", "k", "--any_of", "a", "--api", "x"}),
            kExitUsage);
  EXPECT_THAT(err(), HasSubstr("not both"));
  EXPECT_EQ(Run({"check", "--key", "k"}), kExitUsage);
  EXPECT_THAT(err(), HasSubstr("--api is required"));
}

TEST_F(ScopectlTest, KeyListUnusedForAndOnePageAtATime) {
  std::vector<v1::ListKeysRequest> sent;
  v1::ListKeysResponse page;
  *page.add_keys() = Key("key_1");
  page.set_next_page_token("p3");
  EXPECT_CALL(*mock_, ListKeys)
      .Times(2)
      .WillRepeatedly(
          Invoke([&](const v1::ListKeysRequest& request, absl::Time) {
            sent.push_back(request);
            return page;
          }));
  EXPECT_EQ(Run({"key", "list", "--unused_for", "720h", "--page_token", "p2"}),
            kExitOk);
  ASSERT_EQ(sent.size(), 1u);  // one page, not every page
  EXPECT_EQ(sent[0].unused_for().seconds(), 720 * 3600);
  EXPECT_EQ(sent[0].page_token(), "p2");
  EXPECT_THAT(out(), HasSubstr("key_1"));
  EXPECT_THAT(out(), HasSubstr("next page: --page_token p3\n"));
  EXPECT_EQ(Run({"key", "list", "--page_size", "1", "-o", "json"}), kExitOk);
  EXPECT_EQ(sent[1].page_size(), 1);
  EXPECT_FALSE(sent[1].has_unused_for());
  EXPECT_THAT(out(), HasSubstr("\"nextPageToken\": \"p3\""));
}

TEST_F(ScopectlTest, DescribeReadsTheKeyFromAFile) {
  v1::DescribeKeyRequest sent;
  v1::DescribeKeyResponse described;
  *described.mutable_key() = Key("key_1");
  EXPECT_CALL(*mock_, DescribeKey)
      .WillOnce(DoAll(SaveArg<0>(&sent), Return(described)));
  const std::string key_file =
      WriteFile("describe_key", absl::StrCat(kSecret, "\n"));
  EXPECT_EQ(Run({"describe", "--key_file", key_file}), kExitOk);
  EXPECT_EQ(sent.api_key(), kSecret);
  EXPECT_THAT(out(), HasSubstr("key_1"));
  EXPECT_THAT(all(), Not(HasSubstr(kSecret)));
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST_F(ScopectlTest, SecretFileGetsTheSecretModeSixHundredNeverOverwritten) {
  const std::string path = absl::StrCat(getenv("TEST_TMPDIR"), "/created.key");
  EXPECT_CALL(*mock_, CreateKey).WillOnce(Return(Created()));
  EXPECT_EQ(Run({"key", "create", "--org", "org_a", "--secret_file", path}),
            kExitOk);
  EXPECT_EQ(Slurp(path), absl::StrCat(kSecret, "\n"));
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_THAT(all(), Not(HasSubstr(kSecret)));
  EXPECT_THAT(out(), HasSubstr("secret: written to " + path));

  // The path is taken: refused before any key is created (mock_ is strict).
  EXPECT_EQ(Run({"key", "create", "--org", "org_a", "--secret_file", path}),
            kExitUsage);
  EXPECT_THAT(err(), HasSubstr("--secret_file: " + path + " already exists"));
  EXPECT_EQ(Slurp(path), absl::StrCat(kSecret, "\n"));

  // JSON without the secret; a failed call leaves no file behind.
  const std::string rotated =
      absl::StrCat(getenv("TEST_TMPDIR"), "/rotated.key");
  const std::string failed = absl::StrCat(getenv("TEST_TMPDIR"), "/failed.key");
  EXPECT_CALL(*mock_, RotateKey)
      .WillOnce(Return(Created()))
      .WillOnce(Return(absl::NotFoundError("no key key_9")));
  EXPECT_EQ(
      Run({"-o", "json", "key", "rotate", "key_1", "--secret_file", rotated}),
      kExitOk);
  EXPECT_EQ(Slurp(rotated), absl::StrCat(kSecret, "\n"));
  EXPECT_THAT(out(), HasSubstr("\"keyId\": \"key_1\""));
  EXPECT_THAT(out(), Not(HasSubstr("secret")));
  EXPECT_EQ(Run({"key", "rotate", "key_9", "--secret_file", failed}),
            kExitRpcError);
  EXPECT_NE(::stat(failed.c_str(), &st), 0);
}

// Batch input: JSON lines of AuthorizeRequest, snake_case or lowerCamelCase.
std::string BatchLine(const std::string& path) {
  return absl::StrCat(R"({"apiKey": ")", kSecret,
                      R"(", "http": {"api": "a", "method": "GET", "path": ")",
                      path, "\"}}\n");
}

TEST_F(ScopectlTest, BatchDecidesJsonLinesOneDecisionPerLine) {
  std::istringstream in(absl::StrCat(
      BatchLine("/allowed"), "\n",
      R"({"api_key": "k2", "requirement": {"all_of": ["orders_read"]}})",
      "\n"));
  env_.in = &in;
  v1::BatchAuthorizeRequest sent;
  v1::BatchAuthorizeResponse answer;
  answer.add_responses()->set_allowed(true);
  v1::AuthorizeResponse* denied = answer.add_responses();
  denied->set_reason(v1::INSUFFICIENT_SCOPE);
  denied->set_http_status(403);
  EXPECT_CALL(*mock_, BatchAuthorize)
      .WillOnce(DoAll(SaveArg<0>(&sent), Return(answer)));
  EXPECT_EQ(Run({"batch", "-o", "json"}), kExitDenied);
  ASSERT_EQ(sent.requests_size(), 2);
  EXPECT_EQ(sent.requests(0).api_key(), kSecret);
  EXPECT_EQ(sent.requests(0).http().path(), "/allowed");
  EXPECT_THAT(sent.requests(1).requirement().all_of(),
              ElementsAre("orders_read"));
  EXPECT_TRUE(options_.admin_token.empty());
  const std::vector<std::string> lines =
      absl::StrSplit(out(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << out();
  EXPECT_EQ(lines[0], R"({"allowed":true})");
  EXPECT_EQ(lines[1], R"({"reason":"INSUFFICIENT_SCOPE","httpStatus":403})");
  EXPECT_THAT(all(), Not(HasSubstr(kSecret)));

  // A table from a file; all allowed: exit 0. Line numbers count blanks.
  const std::string file =
      WriteFile("batch.jsonl", absl::StrCat("\n", BatchLine("/a")));
  v1::BatchAuthorizeResponse allowed;
  allowed.add_responses()->set_allowed(true);
  EXPECT_CALL(*mock_, BatchAuthorize).WillOnce(Return(allowed));
  EXPECT_EQ(Run({"batch", file}), kExitOk);
  EXPECT_THAT(out(), HasSubstr("LINE  DECISION"));
  EXPECT_THAT(out(), HasSubstr("\n2     ALLOWED"));
}

TEST_F(ScopectlTest, BatchSplitsBigInputsAndFailsClosed) {
  std::string text;
  for (int i = 0; i < 1001; ++i) text += BatchLine("/x");
  std::istringstream in(text);
  env_.in = &in;
  std::vector<int> sizes;
  EXPECT_CALL(*mock_, BatchAuthorize)
      .WillOnce(Invoke([&](const v1::BatchAuthorizeRequest& r, absl::Time) {
        sizes.push_back(r.requests_size());
        v1::BatchAuthorizeResponse answer;
        for (int i = 0; i < r.requests_size(); ++i) {
          answer.add_responses()->set_allowed(true);
        }
        return answer;
      }))
      .WillRepeatedly(Return(absl::UnavailableError("down")));  // retried
  EXPECT_EQ(Run({"batch", "--json"}), kExitRpcError);
  EXPECT_EQ(sizes, std::vector<int>{1000});
  EXPECT_EQ(Lines(out()).size(), 1000u);
  EXPECT_THAT(err(), HasSubstr("UNAVAILABLE: down (no decisions for lines "
                               "1001-1001: treat them as denied)"));
}

TEST_F(ScopectlTest, BatchInputErrorsNameTheLineNeverTheKey) {
  std::istringstream in(
      absl::StrCat(BatchLine("/ok"), R"({"apiKey": )", kSecret, "}\n"));
  env_.in = &in;
  EXPECT_EQ(Run({"batch", "-"}), kExitUsage);
  EXPECT_THAT(err(), HasSubstr("standard input line 2: not a JSON "
                               "AuthorizeRequest"));
  EXPECT_THAT(all(), Not(HasSubstr(kSecret)));
  EXPECT_THAT(all(), Not(HasSubstr(std::string(kSecret).substr(7, 12))));
  std::istringstream empty("\n\n");
  env_.in = &empty;
  EXPECT_EQ(Run({"batch"}), kExitUsage);
  EXPECT_THAT(err(), HasSubstr("no requests in standard input"));
  EXPECT_EQ(connects_, 0);
}

// Contexts: a config file in a temporary HOME, passed in as the config
// path (the entry layer computes it from the environment).
class ScopectlContextTest : public ScopectlTest {
 protected:
  ScopectlContextTest() {
    const std::string home = absl::StrCat(
        getenv("TEST_TMPDIR"), "/home_",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    env_.config_path = DefaultConfigPath("", "", home);
    env_.admin_token_file = "";
  }
};

TEST_F(ScopectlContextTest, SetUseListDeleteAndThePrecedence) {
  const std::string prod_token = WriteFile("prod_token", "prod-token\n");
  const std::string staging_token =
      WriteFile("staging_token", "staging-token\n");
  EXPECT_EQ(Run({"context", "set", "prod", "--addr", "prod:443",
                 "--admin_token_file", prod_token}),
            kExitOk);
  EXPECT_THAT(out(), HasSubstr("(current)"));  // the first one
  EXPECT_EQ(Run({"context", "set", "staging", "--addr", "staging:443",
                 "--admin_token_file", staging_token}),
            kExitOk);
  struct stat st;
  ASSERT_EQ(::stat(env_.config_path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  EXPECT_EQ(Run({"context", "list"}), kExitOk);
  EXPECT_THAT(out(), HasSubstr("*        prod     prod:443"));
  EXPECT_THAT(out(), HasSubstr("\n         staging  staging:443"));
  EXPECT_EQ(connects_, 0);

  EXPECT_CALL(*mock_, GetPolicy).WillRepeatedly(Return(v1::Policy()));
  // The current context.
  EXPECT_EQ(Run({"policy", "get"}), kExitOk) << err();
  EXPECT_EQ(options_.address, "prod:443");
  EXPECT_EQ(options_.admin_token, "prod-token");
  // --context picks another.
  EXPECT_EQ(Run({"policy", "get", "--context", "staging"}), kExitOk);
  EXPECT_EQ(options_.address, "staging:443");
  EXPECT_EQ(options_.admin_token, "staging-token");
  // The environment beats the context, the flag beats both.
  env_.addr = "env:1";
  EXPECT_EQ(Run({"policy", "get"}), kExitOk);
  EXPECT_EQ(options_.address, "env:1");
  EXPECT_EQ(options_.admin_token, "prod-token");
  EXPECT_EQ(Run({"policy", "get", "--addr", "flag:1"}), kExitOk);
  EXPECT_EQ(options_.address, "flag:1");
  env_.addr = "";

  EXPECT_EQ(Run({"context", "use", "staging"}), kExitOk);
  EXPECT_EQ(Run({"policy", "get"}), kExitOk);
  EXPECT_EQ(options_.address, "staging:443");
  EXPECT_EQ(Run({"-o", "json", "context", "list"}), kExitOk);
  EXPECT_THAT(out(), HasSubstr("\"currentContext\": \"staging\""));

  EXPECT_EQ(Run({"context", "delete", "staging"}), kExitOk);
  EXPECT_EQ(Run({"policy", "get"}), kExitUsage);  // no context, no token
  EXPECT_THAT(err(), HasSubstr("no admin token"));
  EXPECT_EQ(Run({"policy", "get", "--context", "prod"}), kExitOk);
  EXPECT_EQ(options_.address, "prod:443");
}

TEST_F(ScopectlContextTest, MistakesAreUsageErrors) {
  EXPECT_EQ(Run({"policy", "get", "--context", "nope"}), kExitUsage);
  EXPECT_THAT(err(),
              HasSubstr("--context \"nope\" is not in " + env_.config_path));
  EXPECT_EQ(Run({"context", "use", "nope"}), kExitUsage);
  EXPECT_EQ(Run({"context", "set", "x"}), kExitUsage);
  EXPECT_THAT(err(), HasSubstr("nothing to set"));
  EXPECT_EQ(Run({"context", "set", "x", "--addr", "no-port"}), kExitUsage);
  EXPECT_THAT(err(), HasSubstr("--addr \"no-port\": no port"));
  // A relative file is stored absolute: the context works from anywhere.
  EXPECT_EQ(Run({"context", "set", "rel", "--tls_ca", "ca.pem"}), kExitOk);
  EXPECT_EQ(Run({"-o", "yaml", "context", "list"}), kExitOk);
  EXPECT_THAT(out(), HasSubstr("  tlsCa: /"));
  std::ofstream(env_.config_path) << "{not json";
  EXPECT_EQ(Run({"key", "get", "key_1"}), kExitUsage);
  EXPECT_THAT(err(), HasSubstr("is not a scopectl config"));
  EXPECT_EQ(connects_, 0);
}

}  // namespace
}  // namespace scopekeeper
