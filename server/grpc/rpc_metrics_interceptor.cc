#include "server/grpc/rpc_metrics_interceptor.h"

#include <grpcpp/support/interceptor.h>

#include <chrono>

#include "google/protobuf/descriptor.h"

namespace scopekeeper {
namespace {

using grpc::experimental::InterceptionHookPoints;

// One per call: created as the call starts, deleted by gRPC when it ends.
class RpcMetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  RpcMetricsInterceptor(RpcMetrics* metrics, int method)
      : metrics_(metrics),
        method_(method),
        start_(std::chrono::steady_clock::now()) {
    metrics_->Started(method_);
  }

  // A call that ended without sending a status (the client went away
  // first) counts as CANCELLED, as go-grpc-prometheus counts it.
  ~RpcMetricsInterceptor() override {
    if (!handled_) Handle(grpc::StatusCode::CANCELLED);
  }

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            InterceptionHookPoints::PRE_SEND_STATUS)) {
      Handle(methods->GetSendStatus().error_code());
    }
    methods->Proceed();
  }

 private:
  void Handle(grpc::StatusCode code) {
    handled_ = true;
    metrics_->Handled(
        method_, static_cast<int>(code),
        absl::FromChrono(std::chrono::steady_clock::now() - start_));
  }

  RpcMetrics* const metrics_;
  const int method_;
  const std::chrono::steady_clock::time_point start_;
  bool handled_ = false;
};

}  // namespace

std::vector<RpcMetrics::Method> ServiceMethods(
    const std::vector<std::string>& services) {
  std::vector<RpcMetrics::Method> out;
  const google::protobuf::DescriptorPool* pool =
      google::protobuf::DescriptorPool::generated_pool();
  for (const std::string& name : services) {
    const google::protobuf::ServiceDescriptor* service =
        pool->FindServiceByName(name);
    if (service == nullptr) continue;
    for (int i = 0; i < service->method_count(); ++i) {
      const google::protobuf::MethodDescriptor* m = service->method(i);
      const char* type =
          m->client_streaming()
              ? (m->server_streaming() ? "bidi_stream" : "client_stream")
              : (m->server_streaming() ? "server_stream" : "unary");
      out.push_back({service->full_name(), m->name(), type});
    }
  }
  return out;
}

grpc::experimental::Interceptor*
RpcMetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  const absl::string_view path =
      info->method() != nullptr ? info->method() : "";
  if (counted_by_handlers_.contains(path)) return nullptr;
  return new RpcMetricsInterceptor(metrics_, metrics_->Find(path));
}

}  // namespace scopekeeper
