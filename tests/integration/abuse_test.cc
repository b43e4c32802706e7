// What an unauthenticated or careless caller cannot do to the real server:
// park its threads with unreachable min_revisions, flood its log with
// unparsable requests, or open Watch streams without bound. Each case was
// found by an adversarial run; each test fails on the code before its fix.
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"
#include "proto/scopekeeper/v1/scopekeeper.grpc.pb.h"
#include "server/server.h"

namespace scopekeeper {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPolicyFile[] = "examples/policies/rxscale.json";
constexpr char kOrdersPath[] = "/v1/external-pharmacy-api-v1/pharmacy_orders/";

class AbuseTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.data_dir = absl::StrCat(
        getenv("TEST_TMPDIR"), "/",
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    options.policy_file = kPolicyFile;
    options.max_watch_streams = 3;
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
  }

  std::unique_ptr<grpc::ClientContext> Context(absl::Duration timeout) {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    return context;
  }
  std::unique_ptr<grpc::ClientContext> AdminContext() {
    auto context = Context(absl::Seconds(10));
    context->AddMetadata("authorization", "Bearer " + token_);
    return context;
  }

  v1::CreateKeyResponse CreateKey() {
    v1::CreateKeyRequest request;
    request.set_organization_id("org_1");
    request.add_apis("external-pharmacy");
    request.add_scopes("orders_read");
    v1::CreateKeyResponse response;
    const grpc::Status status =
        admin_->CreateKey(AdminContext().get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return response;
  }

  v1::AuthorizeRequest Request(const std::string& key, uint64_t min_revision) {
    v1::AuthorizeRequest request;
    request.set_api_key(key);
    request.set_min_revision(min_revision);
    request.mutable_http()->set_api("external-pharmacy");
    request.mutable_http()->set_method("GET");
    request.mutable_http()->set_path(kOrdersPath);
    return request;
  }

  // Healthy() is whether the health check and a plain decision both answer
  // within two seconds.
  bool Healthy(const std::string& key) {
    grpc::health::v1::HealthCheckResponse health;
    if (!health_
             ->Check(Context(absl::Seconds(2)).get(),
                     grpc::health::v1::HealthCheckRequest(), &health)
             .ok()) {
      return false;
    }
    v1::AuthorizeResponse decision;
    return authorizer_
               ->Authorize(Context(absl::Seconds(2)).get(), Request(key, 0),
                           &decision)
               .ok() &&
           decision.allowed();
  }

  std::unique_ptr<ScopekeeperServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Authorizer::Stub> authorizer_;
  std::unique_ptr<v1::Admin::Stub> admin_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
  std::string token_;
};

TEST_F(AbuseTest, UnreachableMinRevisionsAreOutOfRangeAtOnce) {
  // Eight such calls with a 30 s deadline used to hold every callback
  // thread: other Authorize calls and the health check timed out.
  const auto key = CreateKey();
  std::vector<std::thread> callers;
  std::vector<grpc::Status> statuses(8);
  for (int i = 0; i < 8; ++i) {
    callers.emplace_back([&, i] {
      v1::AuthorizeRequest request = Request("x", uint64_t{1} << 63);
      request.mutable_requirement()->set_authenticated_only(true);
      v1::AuthorizeResponse response;
      statuses[i] = authorizer_->Authorize(Context(absl::Seconds(30)).get(),
                                           request, &response);
    });
  }
  EXPECT_TRUE(Healthy(key.secret()));
  for (std::thread& caller : callers) caller.join();
  for (const grpc::Status& status : statuses) {
    EXPECT_EQ(status.error_code(), grpc::StatusCode::OUT_OF_RANGE);
    EXPECT_THAT(status.error_message(),
                HasSubstr("is beyond the latest revision of this server"));
  }
}

TEST_F(AbuseTest, ParkedDecisionsHoldNoThreadAndEndWithTheirCall) {
  const auto key = CreateKey();
  ServingState& state = server_->serving_state();
  const uint64_t next = state.revision() + 1;
  // As a replica that knows its cluster is ahead: `next` will come.
  state.RaiseHorizon(next);
  constexpr int kParked = 64;  // many more than gRPC's callback threads
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  // The async API does not own the requests: they outlive the calls here.
  std::vector<v1::AuthorizeRequest> requests(kParked,
                                             Request(key.secret(), next));
  std::vector<v1::AuthorizeResponse> responses(kParked);
  std::vector<grpc::Status> statuses(kParked);
  std::atomic<int> finished{0};
  for (int i = 0; i < kParked; ++i) {
    contexts.push_back(Context(absl::Seconds(60)));
    authorizer_->async()->Authorize(contexts.back().get(), &requests[i],
                                    &responses[i], [&, i](grpc::Status s) {
                                      statuses[i] = s;
                                      finished.fetch_add(1);
                                    });
  }
  while (state.parked_waits() < kParked) std::this_thread::yield();
  // Nothing else waits for them.
  EXPECT_TRUE(Healthy(key.secret()));
  // A client giving up releases its wait at once.
  for (int i = 0; i < kParked / 2; ++i) contexts[i]->TryCancel();
  while (state.parked_waits() > kParked / 2) std::this_thread::yield();
  // The revision they wait for arrives: the others are decided.
  CreateKey();
  while (finished.load() < kParked) std::this_thread::yield();
  for (int i = 0; i < kParked; ++i) {
    if (i < kParked / 2) {
      EXPECT_EQ(statuses[i].error_code(), grpc::StatusCode::CANCELLED);
    } else {
      ASSERT_TRUE(statuses[i].ok()) << statuses[i].error_message();
      EXPECT_TRUE(responses[i].allowed());
      EXPECT_GE(responses[i].revision(), next);
    }
  }
}

TEST_F(AbuseTest, InvalidUtf8IsInvalidArgumentNamingTheFieldAndLogsNothing) {
  // gRPC answered UNIMPLEMENTED with an empty message, and libprotobuf wrote
  // an unstructured line to stderr per request.
  const auto key = CreateKey();
  v1::AuthorizeRequest request = Request(key.secret(), 0);
  request.mutable_http()->set_method("GE\xff");
  ::testing::internal::CaptureStderr();
  v1::AuthorizeResponse response;
  const grpc::Status status = authorizer_->Authorize(
      Context(absl::Seconds(5)).get(), request, &response);
  v1::CreateKeyRequest create;
  create.set_organization_id("org_1");
  create.set_name("bad \xc3\x28 name");
  v1::CreateKeyResponse created;
  const grpc::Status admin_status =
      admin_->CreateKey(AdminContext().get(), create, &created);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "request: string field scopekeeper.v1.HttpRequestTarget.method is "
            "not valid UTF-8 (send binary data as base64 or hex)");
  EXPECT_EQ(admin_status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(admin_status.error_message(),
              HasSubstr("scopekeeper.v1.CreateKeyRequest.name"));
  // The server's own parse logged nothing (the client's serializer may
  // have complained about what it was asked to send).
  EXPECT_THAT(log, Not(HasSubstr("parsing a protocol buffer")));
}

TEST_F(AbuseTest, UnparsableBytesAreInvalidArgument) {
  grpc::GenericStub generic(channel_);
  const std::string garbage =
      "\x0a\xff\xff\xff\xff\x0f";  // length past the end
  grpc::Slice slice(garbage);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
  std::atomic<bool> done{false};
  grpc::Status status;
  generic.UnaryCall(&context, "/scopekeeper.v1.Authorizer/Authorize",
                    grpc::StubOptions(), &request, &response,
                    [&](grpc::Status s) {
                      status = s;
                      done = true;
                    });
  while (!done) std::this_thread::yield();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "request: not a valid scopekeeper.v1.AuthorizeRequest (malformed "
            "protobuf encoding)");
}

TEST_F(AbuseTest, WatchStreamsAreCapped) {
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::WatchEvent>>> readers;
  v1::WatchRequest watch;
  for (int i = 0; i < 3; ++i) {
    contexts.push_back(AdminContext());
    readers.push_back(admin_->Watch(contexts.back().get(), watch));
    v1::WatchEvent event;
    ASSERT_TRUE(readers.back()->Read(&event));  // open and streaming
  }
  auto context = AdminContext();
  auto refused = admin_->Watch(context.get(), watch);
  v1::WatchEvent event;
  EXPECT_FALSE(refused->Read(&event));
  const grpc::Status status = refused->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("too many watch streams"));
  for (auto& c : contexts) c->TryCancel();
  for (auto& r : readers) r->Finish();
}

}  // namespace
}  // namespace scopekeeper
