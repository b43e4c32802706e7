// ExtAuthzService over gRPC (in-process server, port 0) in front of the
// decision core with a fault-injecting store: every field of Check's
// answers, as Envoy's ext_authz filter reads them.
#include "server/grpc/ext_authz_service.h"

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/testing/core_test_env.h"
#include "server/testing/held_sync.h"

namespace scopekeeper {
namespace {

using ::envoy::service::auth::v3::Authorization;
using ::envoy::service::auth::v3::CheckRequest;
using ::envoy::service::auth::v3::CheckResponse;
using ::testing::Contains;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

class ExtAuthzServiceTest : public ::testing::Test {
 protected:
  explicit ExtAuthzServiceTest(size_t key_cache_capacity = KeyCache::kUnbounded)
      : env_(key_cache_capacity) {}

  void SetUp() override {
    env_.PutPolicyJson(kTestPolicyJson);
    settings_.hide_credentials = true;
    service_ = std::make_unique<ExtAuthzService>(&env_.engine, &env_.state,
                                                 &calls_, &settings_);
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = Authorization::NewStub(grpc::CreateChannel(
        absl::StrCat("127.0.0.1:", port), grpc::InsecureChannelCredentials()));
  }

  void TearDown() override { server_->Shutdown(); }

  // A CheckRequest as Envoy's ext_authz filter fills it for an HTTP request.
  static CheckRequest EnvoyRequest(
      absl::string_view method, absl::string_view path,
      std::vector<std::pair<std::string, std::string>> headers,
      absl::string_view api = "") {
    CheckRequest request;
    auto* attributes = request.mutable_attributes();
    auto* http = attributes->mutable_request()->mutable_http();
    http->set_id("14725993211186733543");
    http->set_method(std::string(method));
    http->set_path(std::string(path));
    http->set_host("api.rxscale.com");
    http->set_scheme("https");
    http->set_protocol("HTTP/1.1");
    (*http->mutable_headers())[":authority"] = "api.rxscale.com";
    (*http->mutable_headers())[":method"] = std::string(method);
    (*http->mutable_headers())[":path"] = std::string(path);
    (*http->mutable_headers())["user-agent"] = "curl/7.88.1";
    (*http->mutable_headers())["x-request-id"] =
        "5f2c1a9e-8f7e-4a43-9a0e-1d7c2f0e6b11";
    for (auto& [name, value] : headers) {
      (*http->mutable_headers())[name] = value;
    }
    if (!api.empty()) {
      (*attributes->mutable_context_extensions())["api"] = std::string(api);
    }
    return request;
  }

  grpc::Status Check(const CheckRequest& request, CheckResponse* response) {
    grpc::ClientContext context;
    return stub_->Check(&context, request, response);
  }

  CoreTestEnv env_;
  CallTracker calls_;
  GatewaySettings settings_;
  std::unique_ptr<ExtAuthzService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Authorization::Stub> stub_;
};

TEST_F(ExtAuthzServiceTest, AllowedSetsIdentityHeadersAndRemovesTheRest) {
  const auto key = env_.CreateKey({"management"}, {"order:read"});
  CheckResponse response;
  const grpc::Status status =
      Check(EnvoyRequest("GET", "/orders/o_1?expand=items",
                         {{"authorization", "Bearer " + key.secret()},
                          {"x-organization-id", "org_a"},
                          {"x-scopekeeper-key-id", "forged"}},
                         "management"),
            &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(response.status().code(), 0);
  ASSERT_TRUE(response.has_ok_response());
  EXPECT_FALSE(response.has_denied_response());
  const auto& ok = response.ok_response();
  std::vector<std::pair<std::string, std::string>> set;
  for (const auto& option : ok.headers()) {
    EXPECT_EQ(
        option.append_action(),
        envoy::config::core::v3::HeaderValueOption::OVERWRITE_IF_EXISTS_OR_ADD);
    EXPECT_FALSE(option.has_append());
    set.emplace_back(option.header().key(), option.header().value());
  }
  EXPECT_THAT(
      set,
      ElementsAre(std::make_pair("x-scopekeeper-key-id", key.key().key_id()),
                  std::make_pair("x-scopekeeper-organization-id", "org_a"),
                  std::make_pair("x-scopekeeper-redact", "prescription"),
                  std::make_pair("x-scopekeeper-trace-id",
                                 "5f2c1a9e-8f7e-4a43-9a0e-1d7c2f0e6b11")));
  // No app: its header is removed, as is the credential (hide_credentials).
  EXPECT_THAT(ok.headers_to_remove(),
              ElementsAre("x-scopekeeper-app-id", "authorization"));
  EXPECT_THAT(ok.response_headers_to_add(), IsEmpty());
}

TEST_F(ExtAuthzServiceTest, DenialsCarryStatusAndBody) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  struct Case {
    CheckRequest request;
    int rpc_code;
    envoy::type::v3::StatusCode http;
    std::string body_prefix;
  };
  const Case cases[] = {
      // Missing scope; the API selected by its path prefix.
      {EnvoyRequest("PATCH", "/v1/pharmacy/orders/o_1/status",
                    {{"x-api-key", key.secret()}}),
       grpc::StatusCode::PERMISSION_DENIED, envoy::type::v3::Forbidden,
       R"({"code":"forbidden","message":"Insufficient scope. Required: )"
       R"(orders_write","trace_id":")"},
      {EnvoyRequest("GET", "/v1/pharmacy/orders/",
                    {{"authorization", "Bearer rx_ph_unknown"}}),
       grpc::StatusCode::UNAUTHENTICATED, envoy::type::v3::Unauthorized,
       R"({"code":"unauthorized","message":"Invalid or expired API key",)"},
      {EnvoyRequest("GET", "/v1/pharmacy/orders/", {}),
       grpc::StatusCode::UNAUTHENTICATED, envoy::type::v3::Unauthorized,
       R"({"code":"unauthorized",)"},
      {EnvoyRequest("GET", "/v1/pharmacy/nothing",
                    {{"authorization", "Bearer " + key.secret()}}),
       grpc::StatusCode::NOT_FOUND, envoy::type::v3::NotFound,
       R"({"code":"not_found","message":"Not found",)"},
      {EnvoyRequest("GET", "/v1/pharmacy/orders/",
                    {{"authorization", "Bearer " + key.secret()},
                     {"x-organization-id", "org_other"}}),
       grpc::StatusCode::PERMISSION_DENIED, envoy::type::v3::Forbidden,
       R"({"code":"forbidden","message":"API key is not valid for this )"
       R"(organization",)"},
      // Bad input: 400, never an allow.
      {EnvoyRequest("GET", "/v1/pharmacy/orders/\x01",
                    {{"authorization", "Bearer " + key.secret()}}),
       grpc::StatusCode::INVALID_ARGUMENT, envoy::type::v3::BadRequest,
       R"({"code":"bad_request","message":"Bad request: http.path)"},
      {EnvoyRequest("GET", "/v1/pharmacy/orders/%2e%2e/x",
                    {{"authorization", "Bearer " + key.secret()}}),
       grpc::StatusCode::INVALID_ARGUMENT, envoy::type::v3::BadRequest,
       R"({"code":"bad_request","message":"Bad request: Invalid request )"},
      {EnvoyRequest("OPTIONS", "/v1/pharmacy/orders/",
                    {{"authorization", "Bearer " + key.secret()}}),
       grpc::StatusCode::INVALID_ARGUMENT, envoy::type::v3::BadRequest,
       R"({"code":"bad_request","message":"Bad request: http.method)"},
      {EnvoyRequest("GET", "/v1/pharmacy/orders/",
                    {{"authorization", "Bearer " + key.secret()}}, "nope"),
       grpc::StatusCode::INVALID_ARGUMENT, envoy::type::v3::BadRequest,
       R"({"code":"bad_request","message":"Bad request: http.api)"},
      {EnvoyRequest("GET", "", {{"authorization", "Bearer " + key.secret()}}),
       grpc::StatusCode::INVALID_ARGUMENT, envoy::type::v3::BadRequest,
       R"({"code":"bad_request",)"},
  };
  for (const Case& c : cases) {
    const std::string& path = c.request.attributes().request().http().path();
    CheckResponse response;
    const grpc::Status status = Check(c.request, &response);
    ASSERT_TRUE(status.ok()) << path << ": " << status.error_message();
    EXPECT_EQ(response.status().code(), c.rpc_code) << path;
    ASSERT_TRUE(response.has_denied_response()) << path;
    EXPECT_FALSE(response.has_ok_response()) << path;
    const auto& denied = response.denied_response();
    EXPECT_EQ(denied.status().code(), c.http) << path;
    EXPECT_THAT(denied.body(), ::testing::StartsWith(c.body_prefix)) << path;
    ASSERT_EQ(denied.headers_size(), 2) << path;
    EXPECT_EQ(denied.headers(0).header().key(), "content-type");
    EXPECT_EQ(denied.headers(0).header().value(), "application/json");
    EXPECT_EQ(denied.headers(1).header().key(), "x-scopekeeper-trace-id");
    EXPECT_THAT(denied.body(), HasSubstr(absl::StrCat(
                                   "\"trace_id\":\"",
                                   denied.headers(1).header().value(), "\"}")))
        << path;
  }
}

TEST_F(ExtAuthzServiceTest, RawHeaderMapIsReadAndRepeatedKeysAreRefused) {
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  // encode_raw_headers: true sends header_map instead of headers.
  CheckRequest request = EnvoyRequest("GET", "/v1/pharmacy/orders/", {});
  auto* http = request.mutable_attributes()->mutable_request()->mutable_http();
  http->clear_headers();
  auto* header = http->mutable_header_map()->add_headers();
  header->set_key("authorization");
  header->set_raw_value("Bearer " + key.secret());
  CheckResponse response;
  ASSERT_TRUE(Check(request, &response).ok());
  EXPECT_TRUE(response.has_ok_response());
  EXPECT_EQ(response.status().code(), 0);

  *http->mutable_header_map()->add_headers() = *header;
  response.Clear();
  ASSERT_TRUE(Check(request, &response).ok());
  EXPECT_EQ(response.status().code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(response.denied_response().status().code(),
            envoy::type::v3::BadRequest);
}

TEST_F(ExtAuthzServiceTest, NonUtf8IsNeverAnAllow) {
  // Envoy replaces such bytes with '!'; a request that still carries them
  // does not even parse (proto3 strings are UTF-8): an RPC error.
  const auto key = env_.CreateKey({"pharmacy"}, {"orders_read"});
  CheckResponse response;
  const grpc::Status status =
      Check(EnvoyRequest("GET", "/v1/pharmacy/orders/\xc3\x28",
                         {{"authorization", "Bearer " + key.secret()}}),
            &response);
  EXPECT_FALSE(status.ok());
  EXPECT_FALSE(response.has_ok_response());
}

TEST_F(ExtAuthzServiceTest, NoDecisionIsAnRpcError) {
  env_.store.SetFailing(storage::FaultInjectingStore::Op::kRead, true);
  CheckResponse response;
  const grpc::Status status =
      Check(EnvoyRequest("GET", "/v1/pharmacy/orders/",
                         {{"authorization", "Bearer rx_ph_not_cached"}}),
            &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("unavailable"));
}

// A key written but not yet applied is decided once it is: with a cache of
// two keys, a Check that misses it reads the store ahead of the serving
// state (TryAuthorize's await).
class ExtAuthzWaitTest : public ExtAuthzServiceTest {
 protected:
  ExtAuthzWaitTest() : ExtAuthzServiceTest(/*key_cache_capacity=*/2) {}

  static int ThreadsOfThisProcess() {
    std::ifstream status("/proc/self/status");
    std::string line;
    while (std::getline(status, line)) {
      if (absl::StartsWith(line, "Threads:")) {
        return std::stoi(line.substr(8));
      }
    }
    return -1;
  }
};

TEST_F(ExtAuthzWaitTest, WaitingChecksHoldNoThreadAndAreDecidedWhenApplied) {
  const auto key = env_.CreateKey({"pharmacy"}, {"stock_write"});
  const auto other = env_.CreateKey({"pharmacy"}, {"orders_read"});
  env_.PushOut(key.secret());
  // A grant for `key`, written to the store and held before it is synced
  // (so not yet applied).
  HeldSync held(&env_.store);
  held.Arm();
  std::thread writer([&] { env_.Grant(key.key().key_id(), {"orders_read"}); });
  held.AwaitHeld();

  // Connected, and the client's threads started, before threads are counted.
  CheckResponse answer;
  ASSERT_TRUE(
      Check(EnvoyRequest("GET", "/v1/pharmacy/orders/o_2",
                         {{"authorization", "Bearer " + other.secret()}}),
            &answer)
          .ok());
  const int threads_before = ThreadsOfThisProcess();
  constexpr int kWaiting = 64;  // many more than gRPC's callback threads
  const CheckRequest request =
      EnvoyRequest("GET", "/v1/pharmacy/orders/o_1",
                   {{"authorization", "Bearer " + key.secret()}});
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<CheckResponse> responses(kWaiting);
  std::vector<grpc::Status> statuses(kWaiting);
  std::atomic<int> finished{0};
  for (int i = 0; i < kWaiting; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    contexts.back()->set_deadline(std::chrono::system_clock::now() +
                                  std::chrono::seconds(60));
    stub_->async()->Check(contexts.back().get(), &request, &responses[i],
                          [&, i](grpc::Status status) {
                            statuses[i] = status;
                            finished.fetch_add(1);
                          });
  }
  // Each Check waits on the serving state, not on a thread: all of them at
  // once (a handler blocking its thread for each would stall gRPC's few
  // callback threads, or need a thread per waiting call).
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (env_.state.parked_waits() < kWaiting && absl::Now() < give_up) {
    std::this_thread::yield();
  }
  ASSERT_EQ(env_.state.parked_waits(), kWaiting);
  EXPECT_EQ(finished.load(), 0);
  EXPECT_LT(ThreadsOfThisProcess() - threads_before, 8);
  EXPECT_EQ(calls_.in_flight(), kWaiting);
  // Other Checks are answered meanwhile.
  answer.Clear();
  ASSERT_TRUE(
      Check(EnvoyRequest("GET", "/v1/pharmacy/orders/o_2",
                         {{"authorization", "Bearer " + other.secret()}}),
            &answer)
          .ok());
  EXPECT_EQ(answer.status().code(), grpc::StatusCode::OK);
  // A gateway giving up releases its wait at once.
  for (int i = 0; i < kWaiting / 2; ++i) contexts[i]->TryCancel();
  while (env_.state.parked_waits() > kWaiting / 2) std::this_thread::yield();
  // The grant is applied: the others are decided with it.
  held.Release();
  writer.join();
  while (finished.load() < kWaiting) std::this_thread::yield();
  for (int i = 0; i < kWaiting; ++i) {
    if (i < kWaiting / 2) {
      EXPECT_EQ(statuses[i].error_code(), grpc::StatusCode::CANCELLED);
      continue;
    }
    ASSERT_TRUE(statuses[i].ok()) << statuses[i].error_message();
    EXPECT_EQ(responses[i].status().code(), grpc::StatusCode::OK);
    ASSERT_TRUE(responses[i].has_ok_response());
    EXPECT_EQ(responses[i].ok_response().headers(0).header().value(),
              key.key().key_id());
    EXPECT_THAT(responses[i].ok_response().headers_to_remove(),
                Contains("authorization"));
  }
  while (calls_.in_flight() > 0) std::this_thread::yield();
}

}  // namespace
}  // namespace scopekeeper
