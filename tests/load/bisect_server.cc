// bisect_server: the floor (tests/load/floor_server.cc) with Scopekeeper's
// pieces added one at a time, to find which of them make an Authorize call
// cost more server CPU than a bare gRPC call (issue #18, "bisect from the
// floor up"). --step names the last piece added; every step includes the
// ones before it:
//
//   floor         Floor.Check(key, scope) from a hash map: floor_server
//   authorize     Authorizer.Authorize instead (the product's request: key
//                 and http target), typed callback handler, the same hash
//                 map; answers allowed, http_status and key_id
//   response      every field the product sets on an allowed answer
//                 (reason, organization_id, revision, matched_route, a
//                 36-character trace_id copied from a constant)
//   trace_id      the trace id generated per call (base/trace_id)
//   services      Admin and Envoy ext_authz registered too (callback API)
//   health        gRPC's default health service
//   reflection    server reflection
//   builder       the product's ServerBuilder options (no SO_REUSEPORT,
//                 max receive size, NUM_CQS)
//   raw_arena     raw ByteBuffer method, parsed and serialized by the
//                 product's server/grpc/raw_messages on the thread's arena
//   interceptor   the product's RPC metrics interceptor
//                 (server/grpc/rpc_metrics_interceptor), on every call as
//                 the product had it before its Authorizer calls counted
//                 themselves (RpcMetrics::Call; the bisection found it the
//                 costliest step)
//   call_tracker  every call counted in a CallTracker (server/grpc)
//   caller_auth   the caller's bearer token checked (CallerAuthenticator;
//                 off in the product unless --authorizer_token_file is set;
//                 the client must send "authorization: Bearer bisect")
//
//   bisect_server --step=interceptor --keys_file=keys.tsv --listen=...
//
// Keys: --keys_file ("key_id<TAB>secret" lines, as load_client writes
// them); the floor step serves FloorKey(0..--keys-1) as floor_server does.
// Logs `listening on HOST:PORT`. SIGTERM/SIGINT: stop, exit 0.
#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "base/trace_id.h"
#include "envoy/service/auth/v3/external_auth.grpc.pb.h"
#include "proto/scopekeeper/v1/scopekeeper.grpc.pb.h"
#include "server/auth/caller_auth.h"
#include "server/grpc/call_context.h"
#include "server/grpc/call_tracker.h"
#include "server/grpc/raw_messages.h"
#include "server/grpc/rpc_metrics_interceptor.h"
#include "server/metrics/rpc_metrics.h"
#include "tests/load/floor.grpc.pb.h"
#include "tests/load/floor_keys.h"
#include "tests/load/floor_service.h"
#include "tests/load/serve_until_stopped.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:0",
          "host:port to serve on; port 0 picks a free port and logs it");
ABSL_FLAG(std::string, step, "floor",
          "last piece added (see the file comment for the list)");
ABSL_FLAG(int, keys, 100000, "floor step: keys in the map (FloorKey(i))");
ABSL_FLAG(std::string, keys_file, "",
          "other steps: \"key_id<TAB>secret\" lines (load_client --rpc=seed)");

namespace scopekeeper::load {
namespace {

namespace sk = ::scopekeeper::v1;

constexpr const char* kSteps[] = {"floor",       "authorize",    "response",
                                  "trace_id",    "services",     "health",
                                  "reflection",  "builder",      "raw_arena",
                                  "interceptor", "call_tracker", "caller_auth"};
constexpr absl::string_view kScope = "orders_read";  // the route's requirement
constexpr absl::string_view kApi = "external-pharmacy";
constexpr absl::string_view kOrganization = "org_load_0";
// The route of issue #18's request (run_load.py BISECT_PATH).
constexpr absl::string_view kMatchedRoute = "GET /pharmacy_orders/";
constexpr absl::string_view kFixedTraceId =
    "5f2c1a9e-8f7e-4a43-9a0e-1d7c2f0e6b11";
constexpr absl::string_view kToken = "bisect";

using ScopeSet = absl::flat_hash_set<std::string>;

// The step's index in kSteps, or -1.
int StepIndex(absl::string_view name) {
  for (int i = 0; i < static_cast<int>(std::size(kSteps)); ++i) {
    if (name == kSteps[i]) return i;
  }
  return -1;
}

// What every Authorize step decides with: secret -> key, as in the floor.
struct Key {
  std::string key_id;
  ScopeSet scopes;
};

class Decider {
 public:
  Decider(const std::string& keys_file, int step) : step_(step) {
    std::ifstream in(keys_file);
    if (!in) {
      std::fprintf(stderr, "cannot read --keys_file %s\n", keys_file.c_str());
      std::exit(EXIT_FAILURE);
    }
    std::string line;
    while (std::getline(in, line)) {
      std::vector<std::string> parts = absl::StrSplit(line, '\t');
      if (parts.size() < 2) continue;
      keys_[parts[1]] = {
          parts[0], ScopeSet(std::begin(kFloorScopes), std::end(kFloorScopes))};
    }
  }

  // Decide() fills `response` as the step's server would.
  void Decide(const sk::AuthorizeRequest& request,
              sk::AuthorizeResponse* response) const {
    const auto it = keys_.find(request.api_key());
    const bool allowed = it != keys_.end() && request.http().api() == kApi &&
                         it->second.scopes.contains(kScope);
    response->set_allowed(allowed);
    response->set_http_status(allowed ? 200 : 403);
    if (it != keys_.end()) response->set_key_id(it->second.key_id);
    if (step_ < StepIndex("response")) return;
    response->set_reason(allowed ? sk::ALLOWED : sk::INSUFFICIENT_SCOPE);
    response->set_organization_id(std::string(kOrganization));
    response->set_revision(100042);
    response->set_matched_route(std::string(kMatchedRoute));
    if (step_ < StepIndex("trace_id")) {
      response->set_trace_id(std::string(kFixedTraceId));
    } else {
      response->set_trace_id(NewTraceId());
    }
  }

 private:
  const int step_;
  absl::flat_hash_map<std::string, Key> keys_;  // read-only once built
};

// Steps authorize .. builder: gRPC's typed callback handler.
class TypedAuthorizer final : public sk::Authorizer::CallbackService {
 public:
  explicit TypedAuthorizer(const Decider* decider) : decider_(decider) {}

  grpc::ServerUnaryReactor* Authorize(
      grpc::CallbackServerContext* context, const sk::AuthorizeRequest* request,
      sk::AuthorizeResponse* response) override {
    decider_->Decide(*request, response);
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  const Decider* const decider_;
};

// Steps raw_arena and later: the product's handler shape
// (server/grpc/services.cc, AuthorizerService::Decide).
class RawAuthorizer final
    : public sk::Authorizer::WithRawCallbackMethod_Authorize<
          sk::Authorizer::WithRawCallbackMethod_BatchAuthorize<
              sk::Authorizer::WithRawCallbackMethod_DescribeKey<
                  sk::Authorizer::Service>>> {
 public:
  RawAuthorizer(const Decider* decider, CallTracker* calls,
                const CallerAuthenticator* auth)
      : decider_(decider), calls_(calls), auth_(auth) {}

  grpc::ServerUnaryReactor* Authorize(grpc::CallbackServerContext* context,
                                      const grpc::ByteBuffer* raw_request,
                                      grpc::ByteBuffer* raw_response) override {
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    absl::StatusOr<CallTracker::Call> call;
    if (calls_ != nullptr) {
      call = calls_->Enter();
      if (!call.ok()) return Fail(reactor, call.status());
    }
    if (auth_ != nullptr) {
      const absl::Status caller = AuthenticateCall(*auth_, context).status();
      if (!caller.ok()) return Fail(reactor, caller);
    }
    CallArena arena;
    auto* request = arena.Create<sk::AuthorizeRequest>();
    const absl::Status parsed = ParseRequest(*raw_request, request);
    if (!parsed.ok()) return Fail(reactor, parsed);
    auto* response = arena.Create<sk::AuthorizeResponse>();
    decider_->Decide(*request, response);
    SerializeResponse(*response, raw_response);
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  grpc::ServerUnaryReactor* BatchAuthorize(grpc::CallbackServerContext* context,
                                           const grpc::ByteBuffer*,
                                           grpc::ByteBuffer*) override {
    return Fail(context->DefaultReactor(), absl::UnimplementedError(""));
  }
  grpc::ServerUnaryReactor* DescribeKey(grpc::CallbackServerContext* context,
                                        const grpc::ByteBuffer*,
                                        grpc::ByteBuffer*) override {
    return Fail(context->DefaultReactor(), absl::UnimplementedError(""));
  }

 private:
  static grpc::ServerUnaryReactor* Fail(grpc::ServerUnaryReactor* reactor,
                                        const absl::Status& status) {
    reactor->Finish(grpc::Status(static_cast<grpc::StatusCode>(status.code()),
                                 std::string(status.message())));
    return reactor;
  }

  const Decider* const decider_;
  CallTracker* const calls_;
  const CallerAuthenticator* const auth_;
};

int Main() {
  const sigset_t stop_signals = BlockStopSignals();

  const int step = StepIndex(absl::GetFlag(FLAGS_step));
  if (step < 0) {
    std::fprintf(stderr, "unknown --step; one of: %s\n",
                 absl::StrJoin(kSteps, ", ").c_str());
    return EXIT_FAILURE;
  }
  const auto at = [step](absl::string_view name) {
    return step >= StepIndex(name);
  };

  std::unique_ptr<FloorService> floor;
  std::unique_ptr<Decider> decider;
  std::unique_ptr<grpc::Service> authorizer;
  CallTracker calls;
  std::unique_ptr<CallerAuthenticator> auth;
  if (!at("authorize")) {
    floor = std::make_unique<FloorService>(absl::GetFlag(FLAGS_keys));
  } else {
    decider = std::make_unique<Decider>(absl::GetFlag(FLAGS_keys_file), step);
    if (at("caller_auth")) {
      auth = std::make_unique<CallerAuthenticator>("authorizer", kToken);
    }
    if (at("raw_arena")) {
      authorizer = std::make_unique<RawAuthorizer>(
          decider.get(), at("call_tracker") ? &calls : nullptr, auth.get());
    } else {
      authorizer = std::make_unique<TypedAuthorizer>(decider.get());
    }
  }
  sk::Admin::CallbackService admin;
  envoy::service::auth::v3::Authorization::CallbackService ext_authz;

  if (at("health")) grpc::EnableDefaultHealthCheckService(true);
  if (at("reflection"))
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  std::unique_ptr<RpcMetrics> rpc_metrics;
  if (at("interceptor")) {
    rpc_metrics = std::make_unique<RpcMetrics>(ServiceMethods(
        {"scopekeeper.v1.Authorizer", "scopekeeper.v1.Admin",
         "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}));
    std::vector<
        std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
        interceptors;
    interceptors.push_back(
        std::make_unique<RpcMetricsInterceptorFactory>(rpc_metrics.get()));
    builder.experimental().SetInterceptorCreators(std::move(interceptors));
  }
  const std::string listen = absl::GetFlag(FLAGS_listen);
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  if (at("builder")) {  // as server/server.cc sets them
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    builder.SetMaxReceiveMessageSize(4 << 20);
    builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::NUM_CQS,
                                2);
  }
  if (floor != nullptr) builder.RegisterService(floor.get());
  if (authorizer != nullptr) builder.RegisterService(authorizer.get());
  if (at("services")) {
    builder.RegisterService(&admin);
    builder.RegisterService(&ext_authz);
  }
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server != nullptr && at("health")) {
    server->GetHealthCheckService()->SetServingStatus(
        "scopekeeper.v1.Authorizer", true);
  }
  return ServeUntilStopped(std::move(server), listen, port, stop_signals,
                           absl::StrCat(" (step ", kSteps[step], ")"));
}

}  // namespace
}  // namespace scopekeeper::load

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  // As the real server and floor_server do.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return scopekeeper::load::Main();
}
