// A gRPC server interceptor that feeds RpcMetrics (server/metrics): every
// call of every service, counted when it starts and when it ends with its
// status code, and timed from start to the status being sent. It sees only
// the method path and the final status, never a request or its metadata.
//
//   RpcMetrics metrics(ServiceMethods({"scopekeeper.v1.Authorizer", ...}));
//   std::vector<std::unique_ptr<ServerInterceptorFactoryInterface>> f;
//   f.push_back(std::make_unique<RpcMetricsInterceptorFactory>(&metrics));
//   builder.experimental().SetInterceptorCreators(std::move(f));
#ifndef SCOPEKEEPER_SERVER_GRPC_RPC_METRICS_INTERCEPTOR_H_
#define SCOPEKEEPER_SERVER_GRPC_RPC_METRICS_INTERCEPTOR_H_

#include <grpcpp/support/server_interceptor.h>

#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "server/metrics/rpc_metrics.h"

namespace scopekeeper {

// ServiceMethods() lists the methods of the named services (full names,
// e.g. "grpc.health.v1.Health") from the descriptors linked into the binary;
// a service without linked descriptors is skipped.
std::vector<RpcMetrics::Method> ServiceMethods(
    const std::vector<std::string>& services);

// Thread-safe. `metrics` is not owned and must outlive the server.
// `counted_by_handlers`: method paths ("/scopekeeper.v1.Authorizer/
// Authorize") whose handlers count their calls themselves (RpcMetrics::Call)
// and get no interceptor: an intercepted call costs gRPC an interceptor
// object and a pass through the interception hooks for each of its batches
// of operations, which the hot path does not need to pay.
class RpcMetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit RpcMetricsInterceptorFactory(
      RpcMetrics* metrics,
      const std::vector<std::string>& counted_by_handlers = {})
      : metrics_(metrics),
        counted_by_handlers_(counted_by_handlers.begin(),
                             counted_by_handlers.end()) {}

  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  RpcMetrics* const metrics_;
  const absl::flat_hash_set<std::string> counted_by_handlers_;
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_GRPC_RPC_METRICS_INTERCEPTOR_H_
