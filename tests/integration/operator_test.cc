// What an operator sees of the real server, in-process on port 0: health
// per service (and decision holds), reflection of the health service, the
// /metrics page (per-RPC -- each call counted once, whether by its handler
// or the interceptor --, refused credentials, per-API series from start,
// process and build series), the log lines of admin writes and refused
// credentials, and a data dir whose parents do not exist yet.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <sys/stat.h>

#include <condition_variable>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "base/clock.h"
#include "base/log_capture.h"
#include "base/version.h"
#include "envoy/service/auth/v3/external_auth.grpc.pb.h"
#include "gmock/gmock.h"
#include "google/protobuf/descriptor.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "proto/scopekeeper/v1/scopekeeper.grpc.pb.h"
#include "server/server.h"
#include "tests/integration/reflection_client.h"

namespace scopekeeper {
namespace {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::AllOf;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::SizeIs;

constexpr char kPolicyFile[] = "examples/policies/rxscale.json";
constexpr char kPharmacyPrefix[] = "/v1/external-pharmacy-api-v1";

std::string TestDir(absl::string_view name) {
  return absl::StrCat(getenv("TEST_TMPDIR"), "/", name);
}

class OperatorTest : public ::testing::Test {
 protected:
  void Start(ServerOptions options = ServerOptions()) {
    options.listen = "127.0.0.1:0";
    if (options.data_dir.empty()) {
      options.data_dir = TestDir(
          ::testing::UnitTest::GetInstance()->current_test_info()->name());
    }
    options.policy_file = kPolicyFile;
    options.metrics_listen = "127.0.0.1:0";
    options.clock = &clock_;
    auto server = ScopekeeperServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel(server_->address(),
                                   grpc::InsecureChannelCredentials());
    authorizer_ = v1::Authorizer::NewStub(channel_);
    admin_ = v1::Admin::NewStub(channel_);
    health_ = grpc::health::v1::Health::NewStub(channel_);
    std::ifstream token_file(server_->admin_token_path());
    std::getline(token_file, token_);
    // One scrape before anything else: MetricsHttpServer's destructor hangs
    // when it runs before cpp-httplib's listen loop has started (stop() is a
    // no-op until then), and a scrape answered means the loop runs.
    ASSERT_NE(Scrape(), "scrape failed");
  }

  // Health() is the status of `service`, or the call's error code.
  std::string Health(const std::string& service) {
    grpc::ClientContext context;
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    const grpc::Status status = health_->Check(&context, request, &response);
    if (!status.ok()) return absl::StrCat("error ", status.error_code());
    return HealthCheckResponse::ServingStatus_Name(response.status());
  }

  std::unique_ptr<grpc::ClientContext> AdminContext(const std::string& token) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->AddMetadata("authorization", "Bearer " + token);
    return context;
  }

  v1::CreateKeyResponse CreateKey() {
    v1::CreateKeyRequest request;
    request.set_organization_id("org_pharmacy_1");
    request.add_apis("external-pharmacy");
    request.add_scopes("orders_read");
    v1::CreateKeyResponse response;
    const grpc::Status status =
        admin_->CreateKey(AdminContext(token_).get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  grpc::Status Authorize(const std::string& secret,
                         v1::AuthorizeResponse* response) {
    v1::AuthorizeRequest request;
    request.set_api_key(secret);
    request.mutable_http()->set_api("external-pharmacy");
    request.mutable_http()->set_method("GET");
    request.mutable_http()->set_path(
        absl::StrCat(kPharmacyPrefix, "/pharmacy_orders/"));
    grpc::ClientContext context;
    return authorizer_->Authorize(&context, request, response);
  }

  std::string Scrape() {
    httplib::Client http("127.0.0.1", server_->metrics_port());
    auto result = http.Get("/metrics");
    if (!result || result->status != 200) return "scrape failed";
    return result->body;
  }

  FakeClock clock_{absl::Now()};
  std::unique_ptr<ScopekeeperServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Authorizer::Stub> authorizer_;
  std::unique_ptr<v1::Admin::Stub> admin_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
  std::string token_;
};

TEST_F(OperatorTest, HealthIsReportedPerService) {
  Start();
  EXPECT_EQ(Health(""), "SERVING");
  EXPECT_EQ(Health("scopekeeper.v1.Authorizer"), "SERVING");
  EXPECT_EQ(Health("scopekeeper.v1.Admin"), "SERVING");
  EXPECT_EQ(Health("no.such.Service"),
            absl::StrCat("error ", grpc::StatusCode::NOT_FOUND));
}

// What the etcd staleness gate (or any other part of the server) does when
// decisions cannot be made: the Authorizer fails closed and says so in its
// health; the Admin service stays up. A replica not current with etcd can
// write nothing either: "" says so, so that load balancers send it nothing.
TEST_F(OperatorTest, HeldDecisionsAreNotServingUntilEveryHoldIsReleased) {
  Start();
  const v1::CreateKeyResponse key = CreateKey();
  server_->SetDecisionsServing("restore", false, "under review");
  EXPECT_EQ(Health(""), "SERVING");
  server_->SetDecisionsServing(ScopekeeperServer::kClusterHold, false,
                               "replica stale for 12s");
  EXPECT_FALSE(server_->decisions_serving());
  EXPECT_EQ(Health("scopekeeper.v1.Authorizer"), "NOT_SERVING");
  EXPECT_EQ(Health("scopekeeper.v1.Admin"), "SERVING");
  EXPECT_EQ(Health(""), "NOT_SERVING");
  v1::AuthorizeResponse response;
  const grpc::Status held = Authorize(key.secret(), &response);
  EXPECT_EQ(held.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(held.error_message(), HasSubstr("decisions are held ("));
  EXPECT_FALSE(response.allowed());

  server_->SetDecisionsServing(ScopekeeperServer::kClusterHold, true);
  EXPECT_EQ(Health(""), "SERVING");
  EXPECT_EQ(Health("scopekeeper.v1.Authorizer"), "NOT_SERVING");  // restore
  server_->SetDecisionsServing("restore", true);
  EXPECT_EQ(Health("scopekeeper.v1.Authorizer"), "SERVING");
  ASSERT_TRUE(Authorize(key.secret(), &response).ok());
  EXPECT_TRUE(response.allowed());
}

// --hold_decisions, the restore path: decisions wait for the operator, who
// can re-apply revocations made after the backup first.
TEST_F(OperatorTest, StartedHoldingDecisionsServesAdminButNoDecisions) {
  ServerOptions options;
  options.data_dir = TestDir("hold_first");
  Start(options);
  const v1::CreateKeyResponse key = CreateKey();
  server_.reset();
  options.hold_decisions = true;
  LogCapture log;
  Start(options);
  EXPECT_THAT(log.LinesContaining("listening on"),
              ElementsAre(HasSubstr(" decisions=held ")));
  EXPECT_EQ(Health("scopekeeper.v1.Authorizer"), "NOT_SERVING");
  v1::AuthorizeResponse response;
  const grpc::Status held = Authorize(key.secret(), &response);
  EXPECT_EQ(held.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(held.error_message(), HasSubstr("--hold_decisions"));

  v1::RevokeKeyRequest revoke;
  revoke.set_key_id(key.key().key_id());
  v1::Key revoked;
  ASSERT_TRUE(
      admin_->RevokeKey(AdminContext(token_).get(), revoke, &revoked).ok());
  server_->SetDecisionsServing(ScopekeeperServer::kStartHold, true);
  EXPECT_THAT(log.LinesContaining("decisions are served again"),
              ElementsAre(HasSubstr("released_by=hold_decisions")));
  EXPECT_EQ(Health("scopekeeper.v1.Authorizer"), "SERVING");
  ASSERT_TRUE(Authorize(key.secret(), &response).ok());
  EXPECT_EQ(response.reason(), v1::KEY_REVOKED);
}

TEST_F(OperatorTest, ShutdownReportsEveryServiceNotServing) {
  Start();
  grpc::ClientContext context;
  HealthCheckRequest request;
  request.set_service("scopekeeper.v1.Admin");
  auto watch = health_->Watch(&context, request);
  HealthCheckResponse response;
  ASSERT_TRUE(watch->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::SERVING);
  std::thread shutdown([this] { server_->Shutdown(absl::Seconds(5)); });
  ASSERT_TRUE(watch->Read(&response));
  EXPECT_EQ(response.status(), HealthCheckResponse::NOT_SERVING);
  context.TryCancel();
  shutdown.join();
}

TEST_F(OperatorTest, ReflectionDescribesTheHealthService) {
  Start();
  testing::ReflectionClient reflection(channel_);
  const auto files = reflection.FileContainingSymbol("grpc.health.v1.Health");
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_EQ(files->size(), 1u);
  const google::protobuf::FileDescriptorProto& file = files->front();
  EXPECT_EQ(file.name(), "grpc/health/v1/health.proto");
  ASSERT_EQ(file.service_size(), 1);
  EXPECT_EQ(file.service(0).name(), "Health");
  std::vector<std::string> methods;
  for (const auto& m : file.service(0).method()) methods.push_back(m.name());
  EXPECT_THAT(methods, ElementsAre("Check", "Watch"));
  // Its messages too (grpcurl needs them to build a request).
  EXPECT_TRUE(
      reflection.FileContainingSymbol("grpc.health.v1.HealthCheckRequest")
          .ok());
}

TEST_F(OperatorTest, MetricsPage) {
  Start();
  // Before any decision: a series for every API of the policy.
  const std::string before = Scrape();
  for (const char* api :
       {"external-pharmacy", "management", "public", "(requirement)"}) {
    EXPECT_THAT(before,
                HasSubstr(absl::StrCat("scopekeeper_decisions_total{api=\"",
                                       api, "\",reason=\"ALLOWED\"} 0\n")));
  }
  EXPECT_THAT(before,
              HasSubstr(absl::StrCat("scopekeeper_build_info{version=\"",
                                     ScopekeeperVersion(), "\",commit=\"",
                                     ScopekeeperCommit(), "\",mode=\"")));
  EXPECT_THAT(before, Not(HasSubstr("version=\"unknown\"")));
  for (const char* series :
       {"process_cpu_seconds_total ", "process_resident_memory_bytes ",
        "process_open_fds ", "process_max_fds ", "process_start_time_seconds ",
        "process_virtual_memory_bytes "}) {
    EXPECT_THAT(before, HasSubstr(absl::StrCat("\n", series)));
  }
  for (const char* service :
       {"scopekeeper.v1.Admin", "scopekeeper.v1.Authorizer"}) {
    EXPECT_THAT(before, HasSubstr(absl::StrCat(
                            "scopekeeper_auth_refused_total{service="
                            "\"",
                            service, "\",reason=\"wrong_token\"} 0\n")));
  }

  const v1::CreateKeyResponse key = CreateKey();
  v1::AuthorizeResponse response;
  ASSERT_TRUE(Authorize(key.secret(), &response).ok());
  ASSERT_TRUE(Authorize(key.secret(), &response).ok());
  v1::AuthorizeRequest requirement;
  requirement.set_api_key(key.secret());
  requirement.mutable_requirement()->add_all_of("orders_read");
  grpc::ClientContext c1;
  ASSERT_TRUE(authorizer_->Authorize(&c1, requirement, &response).ok());
  v1::GetPolicyRequest get_policy;
  v1::Policy policy;
  EXPECT_EQ(admin_->GetPolicy(AdminContext("wrong").get(), get_policy, &policy)
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  const std::string after = Scrape();
  const std::string authorize =
      "grpc_type=\"unary\",grpc_service=\"scopekeeper.v1.Authorizer\","
      "grpc_method=\"Authorize\"";
  EXPECT_THAT(after,
              HasSubstr(absl::StrCat("grpc_server_handled_total{", authorize,
                                     ",grpc_code=\"OK\"} 3\n")));
  EXPECT_THAT(after,
              HasSubstr(absl::StrCat("grpc_server_handling_seconds_count{",
                                     authorize, "} 3\n")));
  EXPECT_THAT(after, HasSubstr("grpc_server_handled_total{grpc_type=\"unary\","
                               "grpc_service=\"scopekeeper.v1.Admin\","
                               "grpc_method=\"CreateKey\",grpc_code=\"OK\"} "
                               "1\n"));
  EXPECT_THAT(after, HasSubstr("grpc_server_handled_total{grpc_type=\"unary\","
                               "grpc_service=\"scopekeeper.v1.Admin\","
                               "grpc_method=\"GetPolicy\",grpc_code="
                               "\"Unauthenticated\"} 1\n"));
  EXPECT_THAT(after, HasSubstr("scopekeeper_auth_refused_total{service="
                               "\"scopekeeper.v1.Admin\",reason="
                               "\"wrong_token\"} 1\n"));
  EXPECT_THAT(after, HasSubstr("scopekeeper_decisions_total{api=\"(requirement)"
                               "\",reason=\"ALLOWED\"} 1\n"));
  EXPECT_THAT(after, HasSubstr("scopekeeper_decisions_total{api=\"external-"
                               "pharmacy\",reason=\"ALLOWED\"} 2\n"));
  EXPECT_THAT(after, Not(HasSubstr("api=\"\"")));
  EXPECT_THAT(after, Not(HasSubstr(key.secret())));
  EXPECT_THAT(after, Not(HasSubstr(token_)));
}

// Check counts its own calls (no interceptor, as the Authorizer's): once
// each, under its own method, with the RPC's code -- OK for an answered
// denial, InvalidArgument for a request that does not parse -- and nothing
// under "unknown".
TEST_F(OperatorTest, ExtAuthzCheckIsCountedOnceWithItsCode) {
  Start();
  const v1::CreateKeyResponse key = CreateKey();
  auto envoy = envoy::service::auth::v3::Authorization::NewStub(channel_);
  envoy::service::auth::v3::CheckRequest request;
  auto* http = request.mutable_attributes()->mutable_request()->mutable_http();
  http->set_method("GET");
  http->set_host("api.rxscale.com");
  http->set_path(absl::StrCat(kPharmacyPrefix, "/pharmacy_orders/"));
  (*http->mutable_headers())["authorization"] = "Bearer " + key.secret();
  envoy::service::auth::v3::CheckResponse response;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(envoy->Check(&context, request, &response).ok());
    EXPECT_EQ(response.status().code(), grpc::StatusCode::OK);
  }
  (*http->mutable_headers())["authorization"] = "Bearer rxs_ph_unknown";
  {
    grpc::ClientContext context;
    ASSERT_TRUE(envoy->Check(&context, request, &response).ok());
    EXPECT_EQ(response.status().code(), grpc::StatusCode::UNAUTHENTICATED);
  }
  {
    // Not a CheckRequest: field 1 (attributes) with a broken length.
    grpc::GenericStub generic(channel_);
    grpc::ClientContext context;
    const std::string garbage = "\x0a\x7f\x01";
    grpc::Slice slice(garbage);
    const grpc::ByteBuffer body(&slice, 1);
    grpc::ByteBuffer reply;
    grpc::Status status;
    bool done = false;
    std::mutex mu;
    std::condition_variable cv;
    generic.UnaryCall(&context, "/envoy.service.auth.v3.Authorization/Check",
                      grpc::StubOptions(), &body, &reply, [&](grpc::Status s) {
                        std::lock_guard<std::mutex> lock(mu);
                        status = std::move(s);
                        done = true;
                        cv.notify_one();
                      });
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return done; });
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }

  const std::string after = Scrape();
  const std::string check =
      "grpc_type=\"unary\",grpc_service=\"envoy.service.auth.v3."
      "Authorization\",grpc_method=\"Check\"";
  EXPECT_THAT(after, HasSubstr(absl::StrCat("grpc_server_started_total{", check,
                                            "} 3\n")));
  EXPECT_THAT(after, HasSubstr(absl::StrCat("grpc_server_handled_total{", check,
                                            ",grpc_code=\"OK\"} 2\n")));
  EXPECT_THAT(after,
              HasSubstr(absl::StrCat("grpc_server_handled_total{", check,
                                     ",grpc_code=\"InvalidArgument\"} 1\n")));
  EXPECT_THAT(after,
              HasSubstr(absl::StrCat("grpc_server_handling_seconds_count{",
                                     check, "} 3\n")));
  EXPECT_THAT(after, HasSubstr("grpc_server_started_total{grpc_type=\"unary\","
                               "grpc_service=\"unknown\",grpc_method="
                               "\"unknown\"} 0\n"));
}

TEST_F(OperatorTest, AdminWritesAndRefusedCredentialsAreLogged) {
  LogCapture log;
  Start();
  const v1::CreateKeyResponse key = CreateKey();
  EXPECT_THAT(log.LinesContaining("action=CreateKey"),
              ElementsAre(AllOf(
                  HasSubstr(absl::StrCat("level=info msg=\"admin write\" "
                                         "action=CreateKey actor=admin-token "
                                         "key_id=",
                                         key.key().key_id(),
                                         " organization_id=org_pharmacy_1 "
                                         "revision=2 outcome=ok\n")),
                  Not(HasSubstr(key.secret())))));

  // A flood of wrong tokens: one line a second, with the count left out.
  v1::GetPolicyRequest get_policy;
  v1::Policy policy;
  for (int i = 0; i < 20; ++i) {
    admin_->GetPolicy(AdminContext("wrong-token-value").get(), get_policy,
                      &policy);
  }
  EXPECT_THAT(log.LinesContaining("credential refused"), SizeIs(1));
  clock_.Advance(absl::Seconds(1));
  grpc::ClientContext no_token;
  admin_->GetPolicy(&no_token, get_policy, &policy);  // another reason
  admin_->GetPolicy(AdminContext("wrong-token-value").get(), get_policy,
                    &policy);
  EXPECT_THAT(
      log.LinesContaining("credential refused"),
      ElementsAre(HasSubstr("service=scopekeeper.v1.Admin reason=wrong_token "
                            "suppressed=0\n"),
                  HasSubstr("service=scopekeeper.v1.Admin "
                            "reason=missing_credential suppressed=0\n"),
                  HasSubstr("service=scopekeeper.v1.Admin reason=wrong_token "
                            "suppressed=19\n")));
  for (const std::string& line : log.Lines()) {
    EXPECT_THAT(line, Not(HasSubstr("wrong-token-value")));
    EXPECT_THAT(line, Not(HasSubstr(token_)));
  }
}

TEST_F(OperatorTest, StartupLineSaysHowTheServerRuns) {
  LogCapture log;
  Start();
  EXPECT_THAT(
      log.LinesContaining("listening on"),
      ElementsAre(AllOf(
          HasSubstr(absl::StrCat("msg=\"listening on ", server_->address(),
                                 "\" version=", ScopekeeperVersion(),
                                 " commit=", ScopekeeperCommit(),
                                 " tls=off data_plane=open decisions=served "
                                 "store=rocksdb data_dir=")),
          HasSubstr(" revision=1 policy=\"policy_file applied at revision "
                    "1\" apis=3\n"))));
}

// The walkthroughs' --data_dir=/tmp/maxcare/data works on a fresh machine.
TEST_F(OperatorTest, MissingParentsOfTheDataDirAreCreatedPrivate) {
  const std::string root = TestDir("fresh_machine");
  ServerOptions options;
  options.data_dir = root + "/tmp/maxcare/data";
  Start(options);
  for (const std::string& dir :
       {root, root + "/tmp", root + "/tmp/maxcare", options.data_dir}) {
    struct stat st;
    ASSERT_EQ(stat(dir.c_str(), &st), 0) << dir;
    EXPECT_TRUE(S_ISDIR(st.st_mode)) << dir;
    EXPECT_EQ(st.st_mode & 0777, 0700) << dir;
  }
  EXPECT_FALSE(token_.empty());
}

}  // namespace
}  // namespace scopekeeper
