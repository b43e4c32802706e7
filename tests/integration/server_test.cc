// Starts the real server in-process on port 0 with a temporary data dir and
// drives it through generated gRPC clients.
#include "server/server.h"

#include <grpcpp/grpcpp.h>
#include <httplib.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "proto/scopekeeper/v1/scopekeeper.grpc.pb.h"
#include "tests/integration/reflection_client.h"

namespace scopekeeper {
namespace {

using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPolicyFile[] = "examples/policies/rxscale.json";
constexpr char kPharmacyPrefix[] = "/v1/external-pharmacy-api-v1";

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    data_dir_ = absl::StrCat(
        getenv("TEST_TMPDIR"), "/",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    StartServer();
  }

  void StartServer() {
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.data_dir = data_dir_;
    options.policy_file = kPolicyFile;
    options.key_cache_capacity = key_cache_capacity_;
    auto server = ScopekeeperServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel(server_->address(),
                                   grpc::InsecureChannelCredentials());
    authorizer_ = v1::Authorizer::NewStub(channel_);
    admin_ = v1::Admin::NewStub(channel_);
    std::ifstream token_file(server_->admin_token_path());
    std::getline(token_file, token_);
    ASSERT_FALSE(token_.empty());
  }

  void RestartServer() {
    server_.reset();
    StartServer();
  }

  std::unique_ptr<grpc::ClientContext> AdminContext() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->AddMetadata("authorization", "Bearer " + token_);
    return context;
  }

  v1::CreateKeyResponse CreateKey(std::vector<std::string> scopes) {
    v1::CreateKeyRequest request;
    request.set_organization_id("org_pharmacy_1");
    request.set_name("orders sync");
    request.add_apis("external-pharmacy");
    for (auto& s : scopes) request.add_scopes(s);
    v1::CreateKeyResponse response;
    const grpc::Status status =
        admin_->CreateKey(AdminContext().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  v1::AuthorizeResponse Authorize(const std::string& secret,
                                  const std::string& method,
                                  const std::string& path,
                                  grpc::Status* status_out = nullptr) {
    v1::AuthorizeRequest request;
    request.set_api_key(secret);
    request.mutable_http()->set_api("external-pharmacy");
    request.mutable_http()->set_method(method);
    request.mutable_http()->set_path(absl::StrCat(kPharmacyPrefix, path));
    v1::AuthorizeResponse response;
    grpc::ClientContext context;
    const grpc::Status status =
        authorizer_->Authorize(&context, request, &response);
    if (status_out != nullptr) {
      *status_out = status;
    } else {
      EXPECT_TRUE(status.ok()) << status.error_message();
    }
    return response;
  }

  std::string data_dir_;
  int64_t key_cache_capacity_ = 0;
  std::string token_;
  std::unique_ptr<ScopekeeperServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Authorizer::Stub> authorizer_;
  std::unique_ptr<v1::Admin::Stub> admin_;
};

TEST_F(ServerTest, AdminCallsNeedTheBearerToken) {
  v1::GetPolicyRequest request;
  v1::Policy policy;
  grpc::ClientContext no_token;
  EXPECT_EQ(admin_->GetPolicy(&no_token, request, &policy).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  grpc::ClientContext wrong;
  wrong.AddMetadata("authorization", "Bearer wrong");
  EXPECT_EQ(admin_->GetPolicy(&wrong, request, &policy).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(admin_->GetPolicy(AdminContext().get(), request, &policy).ok());
  EXPECT_GT(policy.apis_size(), 0);
  // The generated token file is private.
  struct stat st;
  ASSERT_EQ(stat(server_->admin_token_path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
}

TEST_F(ServerTest, DecidesAndRevocationTakesEffectBeforeRevokeReturns) {
  const auto key = CreateKey({"orders_read"});
  ASSERT_FALSE(key.secret().empty());

  auto allowed = Authorize(key.secret(), "GET", "/pharmacy_orders/");
  EXPECT_TRUE(allowed.allowed());
  EXPECT_EQ(allowed.http_status(), 200);
  EXPECT_EQ(allowed.matched_route(), "GET /pharmacy_orders/");
  EXPECT_EQ(allowed.key_id(), key.key().key_id());
  EXPECT_EQ(allowed.revision(), key.revision());
  EXPECT_FALSE(allowed.trace_id().empty());

  auto denied = Authorize(key.secret(), "PATCH", "/pharmacy_orders/o_1/status");
  EXPECT_FALSE(denied.allowed());
  EXPECT_EQ(denied.reason(), v1::INSUFFICIENT_SCOPE);
  EXPECT_EQ(denied.http_status(), 403);
  EXPECT_EQ(denied.message(), "Insufficient scope. Required: orders_write");
  EXPECT_THAT(denied.missing_scopes(), ElementsAre("orders_write"));

  v1::RevokeKeyRequest revoke;
  revoke.set_key_id(key.key().key_id());
  v1::Key revoked;
  ASSERT_TRUE(admin_->RevokeKey(AdminContext().get(), revoke, &revoked).ok());
  EXPECT_EQ(revoked.status(), v1::REVOKED);
  auto after = Authorize(key.secret(), "GET", "/pharmacy_orders/");
  EXPECT_FALSE(after.allowed());
  EXPECT_EQ(after.reason(), v1::KEY_REVOKED);
  EXPECT_EQ(after.http_status(), 401);
  EXPECT_EQ(after.revision(), revoked.revision());

  v1::Key again;  // idempotent
  ASSERT_TRUE(admin_->RevokeKey(AdminContext().get(), revoke, &again).ok());
  EXPECT_EQ(again.revision(), revoked.revision());
}

TEST_F(ServerTest, StatePersistsAcrossRestart) {
  const auto kept = CreateKey({"orders_read"});
  const auto gone = CreateKey({"orders_read"});
  v1::GrantScopesRequest grant;
  grant.set_key_id(kept.key().key_id());
  grant.add_scopes("orders_write");
  v1::Key granted;
  ASSERT_TRUE(admin_->GrantScopes(AdminContext().get(), grant, &granted).ok());
  v1::RevokeKeyRequest revoke;
  revoke.set_key_id(gone.key().key_id());
  v1::Key revoked;
  ASSERT_TRUE(admin_->RevokeKey(AdminContext().get(), revoke, &revoked).ok());
  const std::string token_before = token_;

  RestartServer();

  EXPECT_EQ(token_, token_before);
  auto r = Authorize(kept.secret(), "PATCH", "/pharmacy_orders/o_1/status");
  EXPECT_TRUE(r.allowed());
  EXPECT_EQ(r.revision(), revoked.revision());  // the policy was not re-applied
  EXPECT_EQ(Authorize(gone.secret(), "GET", "/pharmacy_orders/").reason(),
            v1::KEY_REVOKED);
  v1::GetKeyRequest get;
  get.set_key_id(kept.key().key_id());
  v1::Key fetched;
  ASSERT_TRUE(admin_->GetKey(AdminContext().get(), get, &fetched).ok());
  EXPECT_THAT(fetched.effective_scopes(),
              ElementsAre("orders_read", "orders_write"));
  // Revisions continue from where they were.
  const auto next = CreateKey({});
  EXPECT_EQ(next.revision(), revoked.revision() + 1);
}

TEST_F(ServerTest, BackupRestoresTheStateAtItsRevision) {
  const auto key = CreateKey({"orders_read"});
  const std::string backup = data_dir_ + "-backup";
  v1::CreateBackupRequest request;
  request.set_destination(backup);
  v1::CreateBackupResponse response;
  ASSERT_TRUE(
      admin_->CreateBackup(AdminContext().get(), request, &response).ok());
  EXPECT_EQ(response.revision(), key.revision());
  EXPECT_EQ(response.path(), backup);
  // After the backup: the key is revoked and another one created.
  v1::RevokeKeyRequest revoke;
  revoke.set_key_id(key.key().key_id());
  v1::Key revoked;
  ASSERT_TRUE(admin_->RevokeKey(AdminContext().get(), revoke, &revoked).ok());
  const auto later = CreateKey({"orders_read"});

  // Bad destinations: relative, or already there.
  grpc::Status status;
  request.set_destination("relative/dir");
  status = admin_->CreateBackup(AdminContext().get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("destination"));
  request.set_destination(backup);
  status = admin_->CreateBackup(AdminContext().get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  grpc::ClientContext anonymous;
  EXPECT_EQ(admin_->CreateBackup(&anonymous, request, &response).error_code(),
            grpc::StatusCode::UNAUTHENTICATED);

  // Restore: a new data dir whose db is the backup.
  server_.reset();
  data_dir_ += "-restored";
  ASSERT_EQ(mkdir(data_dir_.c_str(), 0700), 0);
  ASSERT_EQ(rename(backup.c_str(), (data_dir_ + "/db").c_str()), 0);
  StartServer();
  EXPECT_TRUE(Authorize(key.secret(), "GET", "/pharmacy_orders/").allowed());
  EXPECT_EQ(Authorize(later.secret(), "GET", "/pharmacy_orders/").reason(),
            v1::KEY_INVALID);
  EXPECT_EQ(CreateKey({}).revision(), key.revision() + 1);
}

// An operator who pastes a key where a path or a route template belongs
// gets an error that names the field but never quotes the key's random part.
TEST_F(ServerTest, AdminErrorsNeverEchoAKeyPastedIntoAPathOrTemplate) {
  const std::string random = "SWRB317qT2xYzA9bC8dE7fG6hJ5kL4mN";
  const std::string secret = absl::StrCat("rxs_ph_", random);
  const auto expect_no_secret = [&](const grpc::Status& status) {
    for (size_t i = 0; i + 8 <= random.size(); ++i) {
      EXPECT_THAT(status.error_message(), Not(HasSubstr(random.substr(i, 8))))
          << status.error_message();
    }
  };

  // A backup into a parent that does not exist (the key as a directory).
  v1::CreateBackupRequest backup;
  backup.set_destination(absl::StrCat(data_dir_, "-", secret, "/backup"));
  v1::CreateBackupResponse backup_response;
  const grpc::Status backup_status =
      admin_->CreateBackup(AdminContext().get(), backup, &backup_response);
  EXPECT_EQ(backup_status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(backup_status.error_message(), HasSubstr("does not exist"));
  expect_no_secret(backup_status);

  // A policy whose route template holds the key in an unclosed parameter.
  v1::PutPolicyRequest put;
  ASSERT_TRUE(admin_
                  ->GetPolicy(AdminContext().get(), v1::GetPolicyRequest(),
                              put.mutable_policy())
                  .ok());
  ASSERT_GT(put.policy().apis_size(), 0);
  ASSERT_GT(put.policy().apis(0).routes_size(), 0);
  put.mutable_policy()->mutable_apis(0)->mutable_routes(0)->set_path(
      absl::StrCat("/v1/{", secret));
  v1::PutPolicyResponse put_response;
  const grpc::Status put_status =
      admin_->PutPolicy(AdminContext().get(), put, &put_response);
  EXPECT_EQ(put_status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(put_status.error_message(), HasSubstr("path"));
  expect_no_secret(put_status);
}

TEST_F(ServerTest, DamagedDatabaseRefusesToStartNamingIt) {
  CreateKey({"orders_read"});
  server_.reset();
  // Lose RocksDB's manifest: the server must stop, not start empty.
  const std::string db = data_dir_ + "/db";
  int removed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(db)) {
    if (absl::StartsWith(entry.path().filename().string(), "MANIFEST-")) {
      std::filesystem::remove(entry.path());
      ++removed;
    }
  }
  ASSERT_GT(removed, 0);
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.data_dir = data_dir_;
  options.policy_file = kPolicyFile;
  auto server = ScopekeeperServer::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.status().message(), HasSubstr(db));
}

TEST_F(ServerTest, ListKeysPages) {
  for (int i = 0; i < 3; ++i) CreateKey({"orders_read"});
  v1::ListKeysRequest request;
  request.set_organization_id("org_pharmacy_1");
  request.set_page_size(2);
  v1::ListKeysResponse page;
  ASSERT_TRUE(admin_->ListKeys(AdminContext().get(), request, &page).ok());
  EXPECT_EQ(page.keys_size(), 2);
  ASSERT_FALSE(page.next_page_token().empty());
  request.set_page_token(page.next_page_token());
  ASSERT_TRUE(admin_->ListKeys(AdminContext().get(), request, &page).ok());
  EXPECT_EQ(page.keys_size(), 1);
  EXPECT_TRUE(page.next_page_token().empty());
}

TEST_F(ServerTest, BadInputIsInvalidArgumentAndChangesNothing) {
  grpc::Status status;
  v1::AuthorizeRequest no_target;
  no_target.set_api_key("x");
  v1::AuthorizeResponse response;
  grpc::ClientContext c1;
  status = authorizer_->Authorize(&c1, no_target, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("target"));

  v1::CreateKeyRequest create;
  create.set_organization_id("org_1");
  create.add_apis("external-pharmacy");
  create.add_scopes("orders:delete_everything");
  v1::CreateKeyResponse created;
  status = admin_->CreateKey(AdminContext().get(), create, &created);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("scopes[0]"));

  v1::GetKeyRequest get;
  get.set_key_id("key_000000000000000000000000");
  v1::Key key;
  EXPECT_EQ(admin_->GetKey(AdminContext().get(), get, &key).error_code(),
            grpc::StatusCode::NOT_FOUND);

  v1::AuthorizeRequest huge;
  huge.set_trace_id(std::string(5 << 20, 'a'));
  grpc::ClientContext c2;
  EXPECT_EQ(authorizer_->Authorize(&c2, huge, &response).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);

  v1::ListKeysRequest list;
  list.set_include_revoked(true);
  v1::ListKeysResponse keys;
  ASSERT_TRUE(admin_->ListKeys(AdminContext().get(), list, &keys).ok());
  EXPECT_EQ(keys.keys_size(), 0);
}

TEST_F(ServerTest, HealthAndReflectionAreServed) {
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::health::v1::HealthCheckRequest check;
  grpc::health::v1::HealthCheckResponse serving;
  grpc::ClientContext c1;
  ASSERT_TRUE(health->Check(&c1, check, &serving).ok());
  EXPECT_EQ(serving.status(), grpc::health::v1::HealthCheckResponse::SERVING);

  testing::ReflectionClient reflection(channel_);
  const absl::StatusOr<std::vector<std::string>> services =
      reflection.ListServices();
  ASSERT_TRUE(services.ok()) << services.status();
  EXPECT_THAT(*services, Contains("scopekeeper.v1.Authorizer"));
  EXPECT_THAT(*services, Contains("scopekeeper.v1.Admin"));
  EXPECT_THAT(*services, Contains("grpc.health.v1.Health"));
  const auto files =
      reflection.FileContainingSymbol("scopekeeper.v1.Authorizer");
  ASSERT_TRUE(files.ok()) << files.status();
  ASSERT_FALSE(files->empty());
  EXPECT_EQ(files->front().name(), "proto/scopekeeper/v1/scopekeeper.proto");
}

TEST_F(ServerTest, WatchStreamsHistoryThenLiveChangesAndResumes) {
  const auto key = CreateKey({"orders_read"});  // revision 2 (policy is 1)
  auto context = AdminContext();
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(30));
  v1::WatchRequest request;
  request.set_from_revision(0);
  auto reader = admin_->Watch(context.get(), request);
  v1::WatchEvent event;
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.revision(), 1u);
  EXPECT_TRUE(event.policy_changed());
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.event().action(), "CreateKey");
  EXPECT_EQ(event.key().key_id(), key.key().key_id());

  // A change made while the stream is open arrives on it, key state included.
  v1::RevokeKeyRequest revoke;
  revoke.set_key_id(key.key().key_id());
  v1::Key revoked;
  ASSERT_TRUE(admin_->RevokeKey(AdminContext().get(), revoke, &revoked).ok());
  ASSERT_TRUE(reader->Read(&event));
  EXPECT_EQ(event.revision(), revoked.revision());
  EXPECT_EQ(event.event().action(), "RevokeKey");
  EXPECT_EQ(event.key().status(), v1::REVOKED);
  EXPECT_FALSE(event.policy_changed());
  context->TryCancel();
  while (reader->Read(&event)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);

  // Resuming after the last revision seen starts with the next change.
  auto resume_context = AdminContext();
  request.set_from_revision(1);
  auto resumed = admin_->Watch(resume_context.get(), request);
  ASSERT_TRUE(resumed->Read(&event));
  EXPECT_EQ(event.revision(), 2u);
  resume_context->TryCancel();
  while (resumed->Read(&event)) {
  }
  resumed->Finish();

  // Without the token the stream is refused.
  grpc::ClientContext anonymous;
  auto refused = admin_->Watch(&anonymous, request);
  EXPECT_FALSE(refused->Read(&event));
  EXPECT_EQ(refused->Finish().error_code(), grpc::StatusCode::UNAUTHENTICATED);
}

// end_when_caught_up: the history after from_revision, then OK -- also when
// it spans more than one of the server's read batches (100 changes).
TEST_F(ServerTest, WatchEndsOnceCaughtUpWhenAsked) {
  constexpr int kKeys = 120;  // revisions 2..121 (the policy is 1)
  for (int i = 0; i < kKeys; ++i) CreateKey({"orders_read"});
  v1::WatchRequest request;
  request.set_from_revision(0);
  request.set_end_when_caught_up(true);
  auto context = AdminContext();
  context->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(30));
  auto reader = admin_->Watch(context.get(), request);
  std::vector<uint64_t> revisions;
  v1::WatchEvent event;
  while (reader->Read(&event)) revisions.push_back(event.revision());
  const grpc::Status status = reader->Finish();
  EXPECT_TRUE(status.ok()) << status.error_message();
  ASSERT_EQ(revisions.size(), kKeys + 1u);
  EXPECT_EQ(revisions.front(), 1u);
  EXPECT_EQ(revisions.back(), kKeys + 1u);

  // Already caught up: no event, OK at once.
  request.set_from_revision(kKeys + 1);
  auto at_head = AdminContext();
  at_head->set_deadline(std::chrono::system_clock::now() +
                        std::chrono::seconds(30));
  auto empty = admin_->Watch(at_head.get(), request);
  EXPECT_FALSE(empty->Read(&event));
  EXPECT_TRUE(empty->Finish().ok());
}

TEST_F(ServerTest, ShutdownEndsOpenWatchStreamsPromptly) {
  auto context = AdminContext();
  v1::WatchRequest request;
  request.set_from_revision(0);
  auto reader = admin_->Watch(context.get(), request);
  v1::WatchEvent event;
  ASSERT_TRUE(reader->Read(&event));  // the policy; then the stream idles
  // Had the stream been left to the 1 h grace, Shutdown() would cancel it
  // then (CANCELLED); the server ends it itself, at once, as UNAVAILABLE.
  server_->Shutdown(absl::Hours(1));
  EXPECT_FALSE(reader->Read(&event));
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::UNAVAILABLE);
}

// --key_cache_capacity smaller than the key set: every key still decides
// correctly (misses read RocksDB), before and after a restart, and changes
// to keys that are not cached take effect.
TEST_F(ServerTest, BoundedKeyCacheServesKeysBeyondIt) {
  key_cache_capacity_ = 2;
  RestartServer();
  std::vector<v1::CreateKeyResponse> keys;
  for (int i = 0; i < 6; ++i) {
    keys.push_back(CreateKey({i % 2 == 0 ? "orders_read" : "stock_read"}));
  }
  const auto check_all = [&] {
    for (int i = 0; i < 6; ++i) {
      const auto r = Authorize(keys[i].secret(), "GET", "/pharmacy_orders/");
      EXPECT_EQ(r.reason(), i % 2 == 0 ? v1::ALLOWED : v1::INSUFFICIENT_SCOPE)
          << i;
      EXPECT_EQ(r.key_id(), keys[i].key().key_id());
    }
  };
  check_all();
  RestartServer();  // loads only what fits
  check_all();
  v1::RevokeKeyRequest revoke;
  revoke.set_key_id(keys[0].key().key_id());
  v1::Key revoked;
  ASSERT_TRUE(admin_->RevokeKey(AdminContext().get(), revoke, &revoked).ok());
  for (int i = 1; i < 6; ++i)
    Authorize(keys[i].secret(), "GET", "/pharmacy_orders/");
  EXPECT_EQ(Authorize(keys[0].secret(), "GET", "/pharmacy_orders/").reason(),
            v1::KEY_REVOKED);
}

TEST(ServerStartTest, NegativeKeyCacheCapacityRefusesToStart) {
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.data_dir = absl::StrCat(getenv("TEST_TMPDIR"), "/negcache");
  options.key_cache_capacity = -1;
  auto server = ScopekeeperServer::Start(options);
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(server.status().message(), HasSubstr("key_cache_capacity"));
}

TEST(ServerStartTest, AuthorizerTokenGuardsTheDataPlane) {
  const std::string dir = absl::StrCat(getenv("TEST_TMPDIR"), "/caller_auth");
  const std::string token_file = dir + "-authorizer_token";
  std::ofstream(token_file) << "gateway-token-5e0b9c27d14f3a86c2e7b1d04f9a\n";
  ASSERT_EQ(chmod(token_file.c_str(), 0600), 0);
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.data_dir = dir;
  options.policy_file = kPolicyFile;
  options.authorizer_token_file = token_file + ".missing";
  auto server = ScopekeeperServer::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.status().message(), HasSubstr("--authorizer_token_file"));

  options.authorizer_token_file = token_file;
  server = ScopekeeperServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  auto authorizer = v1::Authorizer::NewStub(grpc::CreateChannel(
      (*server)->address(), grpc::InsecureChannelCredentials()));
  v1::AuthorizeRequest request;
  request.set_api_key("rxs_ph_unknown");
  request.mutable_requirement()->add_all_of("orders_read");
  std::ifstream admin_file((*server)->admin_token_path());
  std::string admin_token;
  std::getline(admin_file, admin_token);
  const std::vector<std::pair<std::string, grpc::StatusCode>> cases = {
      {"", grpc::StatusCode::UNAUTHENTICATED},
      {"Bearer " + admin_token, grpc::StatusCode::UNAUTHENTICATED},
      {"Bearer gateway-token-5e0b9c27d14f3a86c2e7b1d04f9a",
       grpc::StatusCode::OK},
  };
  for (const auto& [authorization, code] : cases) {
    grpc::ClientContext context;
    if (!authorization.empty()) {
      context.AddMetadata("authorization", authorization);
    }
    v1::AuthorizeResponse response;
    const grpc::Status status =
        authorizer->Authorize(&context, request, &response);
    EXPECT_EQ(status.error_code(), code) << status.error_message();
    EXPECT_THAT(status.error_message(), Not(HasSubstr("gateway-token")));
    EXPECT_FALSE(response.allowed());
  }
  grpc::ClientContext describe_context;
  v1::DescribeKeyRequest describe;
  describe.set_api_key("rxs_ph_unknown");
  v1::DescribeKeyResponse described;
  EXPECT_EQ(authorizer->DescribeKey(&describe_context, describe, &described)
                .error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST(ServerStartTest, MetricsEndpointCountsWhatHappens) {
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.metrics_listen = "127.0.0.1:0";
  options.data_dir = absl::StrCat(getenv("TEST_TMPDIR"), "/metrics");
  options.policy_file = kPolicyFile;
  auto server = ScopekeeperServer::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->metrics_port(), 0);
  httplib::Client http("127.0.0.1", (*server)->metrics_port());
  const auto scrape = [&http]() -> std::string {
    auto result = http.Get("/metrics");
    if (!result || result->status != 200) return "scrape failed";
    return result->body;
  };

  auto channel = grpc::CreateChannel((*server)->address(),
                                     grpc::InsecureChannelCredentials());
  auto admin = v1::Admin::NewStub(channel);
  auto authorizer = v1::Authorizer::NewStub(channel);
  std::ifstream token_file((*server)->admin_token_path());
  std::string token;
  std::getline(token_file, token);
  grpc::ClientContext create_context;
  create_context.AddMetadata("authorization", "Bearer " + token);
  v1::CreateKeyRequest create;
  create.set_organization_id("org_1");
  create.add_apis("external-pharmacy");
  create.add_scopes("orders_read");
  v1::CreateKeyResponse created;
  ASSERT_TRUE(admin->CreateKey(&create_context, create, &created).ok());

  const std::string before = scrape();
  EXPECT_THAT(before, HasSubstr("scopekeeper_keys{status=\"active\"} 1\n"));
  EXPECT_THAT(before, HasSubstr("scopekeeper_revision 2\n"));  // policy, key
  EXPECT_THAT(before,
              HasSubstr("scopekeeper_store_commit_latency_seconds_count 2\n"));

  for (const std::string& path : {"/pharmacy_orders/", "/pharmacy_skus/"}) {
    grpc::ClientContext context;
    v1::AuthorizeRequest request;
    request.set_api_key(created.secret());
    request.mutable_http()->set_api("external-pharmacy");
    request.mutable_http()->set_method("GET");
    request.mutable_http()->set_path(absl::StrCat(kPharmacyPrefix, path));
    v1::AuthorizeResponse response;
    ASSERT_TRUE(authorizer->Authorize(&context, request, &response).ok());
  }
  const std::string after = scrape();
  EXPECT_THAT(after, HasSubstr("scopekeeper_decisions_total{api=\"external-"
                               "pharmacy\",reason=\"ALLOWED\"} 1\n"));
  EXPECT_THAT(after,
              HasSubstr("scopekeeper_decisions_total{api=\"external-"
                        "pharmacy\",reason=\"INSUFFICIENT_SCOPE\"} 1\n"));
  EXPECT_THAT(after, HasSubstr("scopekeeper_key_cache_lookups_total{result="
                               "\"hit\"} 2\n"));
  EXPECT_THAT(after,
              HasSubstr("scopekeeper_decision_latency_seconds_count 2\n"));
  EXPECT_THAT(after, Not(HasSubstr(created.secret())));
  EXPECT_THAT(after, Not(HasSubstr(created.key().key_id())));
  EXPECT_THAT(after, Not(HasSubstr(token)));
}

TEST(ServerStartTest, InvalidPolicyFileRefusesToStartNamingTheEntry) {
  const std::string dir = absl::StrCat(getenv("TEST_TMPDIR"), "/badpolicy");
  const std::string policy = dir + ".json";
  std::ofstream(policy) << R"({"scopes":[{"name":"a"}],"apis":[{"name":"shop",
      "routes":[{"method":"GET","path":"/x","requirement":{"allOf":["b"]}}]}]})";
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.data_dir = dir;
  options.policy_file = policy;
  auto server = ScopekeeperServer::Start(options);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.status().message(), HasSubstr("apis[\"shop\"].routes[0]"));
  EXPECT_THAT(server.status().message(), HasSubstr(policy));
}

}  // namespace
}  // namespace scopekeeper
