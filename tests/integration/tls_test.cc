// TLS and mTLS on the real server: certificates are made at test time with
// the openssl CLI in TEST_TMPDIR (a CA, a server certificate for localhost
// and 127.0.0.1, an admin client, a plain client, and a client of a CA the
// server does not trust).
#include <grpcpp/grpcpp.h>

#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "envoy/service/auth/v3/external_auth.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/scopekeeper/v1/scopekeeper.grpc.pb.h"
#include "server/server.h"

namespace scopekeeper {
namespace {

using ::testing::HasSubstr;

constexpr char kPolicyFile[] = "examples/policies/rxscale.json";
constexpr char kAdminSubject[] = "CN=ops-admin,O=Example";
constexpr char kGatewaySubject[] = "CN=gateway,O=Example";

std::string Dir() { return absl::StrCat(getenv("TEST_TMPDIR"), "/pki"); }

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Runs a shell command; fails the test when it fails.
void RunOrFail(const std::string& command) {
  ASSERT_EQ(std::system(absl::StrCat(command, " >/dev/null 2>&1").c_str()), 0)
      << command;
}

// Makes <name>.key/<name>.pem signed by <ca> with `subject` and `extra`
// req arguments.
void MakeCert(const std::string& name, const std::string& ca,
              const std::string& subject, const std::string& extra = "") {
  const std::string d = Dir();
  RunOrFail(absl::StrCat(
      "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1",
      " -nodes -keyout ", d, "/", name, ".key -out ", d, "/", name,
      ".csr -subj '", subject, "' ", extra));
  RunOrFail(absl::StrCat("openssl x509 -req -in ", d, "/", name, ".csr -CA ", d,
                         "/", ca, ".pem -CAkey ", d, "/", ca,
                         ".key -CAcreateserial -out ", d, "/", name,
                         ".pem -days 1 -copy_extensions copy"));
}

void MakeCa(const std::string& name) {
  const std::string d = Dir();
  RunOrFail(absl::StrCat("openssl req -x509 -newkey ec -pkeyopt ",
                         "ec_paramgen_curve:prime256v1 -nodes -keyout ", d, "/",
                         name, ".key -out ", d, "/", name,
                         ".pem -days 1 -subj '/CN=", name, "'"));
}

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    RunOrFail(absl::StrCat("mkdir -p ", Dir()));
    MakeCa("ca");
    MakeCa("rogue_ca");
    MakeCert("server", "ca", "/CN=localhost",
             "-addext 'subjectAltName=DNS:localhost,IP:127.0.0.1'");
    MakeCert("admin", "ca", "/O=Example/CN=ops-admin");
    MakeCert("gateway", "ca", "/O=Example/CN=gateway");
    MakeCert("rogue", "rogue_ca", "/O=Example/CN=ops-admin");
  }

  void Start(bool mtls, std::vector<std::string> authorizer_subjects = {}) {
    auto server =
        ScopekeeperServer::Start(Options(mtls, std::move(authorizer_subjects)));
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    token_ = ReadAll(server_->admin_token_path());
    token_.erase(token_.find('\n'));
  }

  ServerOptions Options(bool mtls,
                        std::vector<std::string> authorizer_subjects = {}) {
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.data_dir = absl::StrCat(
        getenv("TEST_TMPDIR"), "/",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    options.policy_file = kPolicyFile;
    options.tls_cert_file = Dir() + "/server.pem";
    options.tls_key_file = Dir() + "/server.key";
    if (mtls) {
      options.tls_client_ca_file = Dir() + "/ca.pem";
      options.admin_subjects = {kAdminSubject};
      options.authorizer_subjects = std::move(authorizer_subjects);
    }
    return options;
  }

  // A channel trusting our CA, presenting `client` ("" = no certificate).
  std::shared_ptr<grpc::Channel> Channel(const std::string& client) {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = ReadAll(Dir() + "/ca.pem");
    if (!client.empty()) {
      ssl.pem_private_key = ReadAll(Dir() + "/" + client + ".key");
      ssl.pem_cert_chain = ReadAll(Dir() + "/" + client + ".pem");
    }
    return grpc::CreateChannel(server_->address(), grpc::SslCredentials(ssl));
  }

  // GetPolicy with or without the bearer token: the admin check.
  grpc::Status GetPolicy(const std::shared_ptr<grpc::Channel>& channel,
                         bool with_token) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::seconds(10));
    if (with_token) context.AddMetadata("authorization", "Bearer " + token_);
    v1::Policy policy;
    return v1::Admin::NewStub(channel)->GetPolicy(
        &context, v1::GetPolicyRequest(), &policy);
  }

  std::unique_ptr<ScopekeeperServer> server_;
  std::string token_;
};

TEST_F(TlsTest, TlsServesEncryptedCallsAndRefusesPlaintext) {
  Start(/*mtls=*/false);
  EXPECT_TRUE(GetPolicy(Channel(""), /*with_token=*/true).ok());
  EXPECT_EQ(GetPolicy(Channel(""), /*with_token=*/false).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  const auto plaintext = grpc::CreateChannel(
      server_->address(), grpc::InsecureChannelCredentials());
  EXPECT_EQ(GetPolicy(plaintext, /*with_token=*/true).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, MtlsRequiresATrustedClientCertAndMapsAdminSubjects) {
  Start(/*mtls=*/true);
  // The listed subject is an admin without a token, and is audited as such.
  ASSERT_TRUE(GetPolicy(Channel("admin"), /*with_token=*/false).ok());
  {
    grpc::ClientContext context;
    v1::CreateKeyRequest request;
    request.set_organization_id("org_pharmacy_1");
    request.add_apis("external-pharmacy");
    v1::CreateKeyResponse created;
    ASSERT_TRUE(v1::Admin::NewStub(Channel("admin"))
                    ->CreateKey(&context, request, &created)
                    .ok());
    grpc::ClientContext audit_context;
    v1::ListAuditEventsRequest audit;
    audit.set_key_id(created.key().key_id());
    v1::ListAuditEventsResponse events;
    ASSERT_TRUE(v1::Admin::NewStub(Channel("admin"))
                    ->ListAuditEvents(&audit_context, audit, &events)
                    .ok());
    ASSERT_EQ(events.events_size(), 1);
    EXPECT_EQ(events.events(0).actor(), absl::StrCat("mtls:", kAdminSubject));
  }
  // Another trusted client is not an admin by certificate, only by token.
  EXPECT_EQ(GetPolicy(Channel("gateway"), /*with_token=*/false).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(GetPolicy(Channel("gateway"), /*with_token=*/true).ok());
  // No certificate, or one of an untrusted CA (even with the admin subject
  // and the token): the handshake fails.
  EXPECT_EQ(GetPolicy(Channel(""), /*with_token=*/true).error_code(),
            grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(GetPolicy(Channel("rogue"), /*with_token=*/true).error_code(),
            grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, AuthorizerSubjectsCloseTheDataPlaneToOtherCallers) {
  Start(/*mtls=*/true, /*authorizer_subjects=*/{kGatewaySubject});
  const auto authorize = [](const std::shared_ptr<grpc::Channel>& channel) {
    grpc::ClientContext context;
    v1::AuthorizeRequest request;
    request.set_api_key("rxs_ph_unknown");
    request.mutable_requirement()->add_all_of("orders_read");
    v1::AuthorizeResponse response;
    return v1::Authorizer::NewStub(channel)->Authorize(&context, request,
                                                       &response);
  };
  // The gateway gets a decision (a denial: the key is unknown).
  EXPECT_TRUE(authorize(Channel("gateway")).ok());
  // Another trusted client, even the admin, is not a data-plane caller.
  const grpc::Status admin = authorize(Channel("admin"));
  EXPECT_EQ(admin.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(admin.error_message(), HasSubstr("authorizer"));
}

TEST_F(TlsTest, AuthorizerSubjectsCloseCheckAndCannotGuardPlainForwardAuth) {
  // Envoy's Check is a data-plane call like Authorize.
  Start(/*mtls=*/true, /*authorizer_subjects=*/{kGatewaySubject});
  const auto check = [](const std::shared_ptr<grpc::Channel>& channel) {
    grpc::ClientContext context;
    envoy::service::auth::v3::CheckRequest request;
    request.mutable_attributes()->mutable_request()->mutable_http()->set_path(
        "/v1/external-pharmacy-api-v1/pharmacy_orders/");
    envoy::service::auth::v3::CheckResponse response;
    return envoy::service::auth::v3::Authorization::NewStub(channel)->Check(
        &context, request, &response);
  };
  EXPECT_TRUE(check(Channel("gateway")).ok());
  EXPECT_EQ(check(Channel("admin")).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  server_.reset();

  // Plain-HTTP forward-auth cannot check certificate subjects: without a
  // token file too, the server refuses to start rather than open it.
  ServerOptions options = Options(/*mtls=*/true, {kGatewaySubject});
  options.http_authz_listen = "127.0.0.1:0";
  auto server = ScopekeeperServer::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(server.status().message(), HasSubstr("--http_authz_listen"));
}

TEST(TlsOptionsTest, IncompleteOrUnreadableTlsOptionsRefuseToStart) {
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.data_dir = absl::StrCat(getenv("TEST_TMPDIR"), "/bad_tls");
  options.tls_cert_file = "/nonexistent/server.pem";
  auto server = ScopekeeperServer::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.status().message(), HasSubstr("--tls_key"));
  options.tls_key_file = "/nonexistent/server.key";
  server = ScopekeeperServer::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.status().message(), HasSubstr("/nonexistent/server.pem"));
  options.tls_cert_file.clear();
  options.tls_key_file.clear();
  options.tls_client_ca_file = "/nonexistent/ca.pem";
  server = ScopekeeperServer::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.status().message(), HasSubstr("--tls_client_ca"));
  // Subjects mean nothing without client certificates.
  options.tls_client_ca_file.clear();
  options.authorizer_subjects = {kGatewaySubject};
  server = ScopekeeperServer::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.status().message(), HasSubstr("--authorizer_subjects"));
}

}  // namespace
}  // namespace scopekeeper
