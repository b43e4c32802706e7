// The interceptor on a real in-process gRPC server (the default health
// service): calls are counted by method and final status code, and timed.
#include "server/grpc/rpc_metrics_interceptor.h"

#include <grpcpp/grpcpp.h>
#include <grpcpp/impl/codegen/client_unary_call.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

using ::testing::HasSubstr;

constexpr char kCheck[] =
    "grpc_type=\"unary\",grpc_service=\"grpc.health.v1.Health\","
    "grpc_method=\"Check\"";

TEST(RpcMetricsInterceptorTest, ServiceMethodsComeFromLinkedDescriptors) {
  const std::vector<RpcMetrics::Method> methods =
      ServiceMethods({"grpc.health.v1.Health", "no.such.Service"});
  ASSERT_EQ(methods.size(), 2u);
  EXPECT_EQ(methods[0].service, "grpc.health.v1.Health");
  EXPECT_EQ(methods[0].method, "Check");
  EXPECT_EQ(methods[0].type, "unary");
  EXPECT_EQ(methods[1].method, "Watch");
  EXPECT_EQ(methods[1].type, "server_stream");
}

// A health service knowing only "".
class Health final : public grpc::health::v1::Health::CallbackService {
  grpc::ServerUnaryReactor* Check(
      grpc::CallbackServerContext* context,
      const grpc::health::v1::HealthCheckRequest* request,
      grpc::health::v1::HealthCheckResponse* response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    if (request->service().empty()) {
      response->set_status(grpc::health::v1::HealthCheckResponse::SERVING);
      reactor->Finish(grpc::Status::OK);
    } else {
      reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND, "unknown"));
    }
    return reactor;
  }
};

TEST(RpcMetricsInterceptorTest, CountsEveryCallByMethodAndCode) {
  RpcMetrics metrics(ServiceMethods({"grpc.health.v1.Health"}));
  Health health_service;
  grpc::ServerBuilder builder;
  builder.RegisterService(&health_service);
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                           &port);
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      factories;
  factories.push_back(std::make_unique<RpcMetricsInterceptorFactory>(&metrics));
  builder.experimental().SetInterceptorCreators(std::move(factories));
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);

  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", port),
                                     grpc::InsecureChannelCredentials());
  auto health = grpc::health::v1::Health::NewStub(channel);
  grpc::health::v1::HealthCheckRequest request;
  grpc::health::v1::HealthCheckResponse response;
  for (const char* service : {"", "", "no.such.Service"}) {
    grpc::ClientContext context;
    request.set_service(service);
    health->Check(&context, request, &response);
  }
  // A method the server does not have.
  grpc::internal::RpcMethod unknown("/no.such.Service/Method",
                                    grpc::internal::RpcMethod::NORMAL_RPC);
  grpc::ClientContext context;
  const grpc::Status status = grpc::internal::BlockingUnaryCall(
      channel.get(), unknown, &context, request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNIMPLEMENTED);
  server->Shutdown();

  std::string out;
  metrics.Render(&out);
  EXPECT_THAT(out, HasSubstr(absl::StrCat("grpc_server_started_total{", kCheck,
                                          "} 3\n")));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("grpc_server_handled_total{", kCheck,
                                          ",grpc_code=\"OK\"} 2\n")));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("grpc_server_handled_total{", kCheck,
                                          ",grpc_code=\"NotFound\"} 1\n")));
  EXPECT_THAT(out, HasSubstr(absl::StrCat("grpc_server_handling_seconds_count{",
                                          kCheck, "} 3\n")));
  EXPECT_THAT(out, HasSubstr("grpc_server_handled_total{grpc_type=\"unary\","
                             "grpc_service=\"unknown\",grpc_method=\"unknown\","
                             "grpc_code=\"Unimplemented\"} 1\n"));
  EXPECT_THAT(out, testing::Not(HasSubstr("no.such")));
}

}  // namespace
}  // namespace scopekeeper
