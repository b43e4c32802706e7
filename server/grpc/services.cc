#include "server/grpc/services.h"

#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "base/mutex.h"
#include "base/status_macros.h"
#include "server/grpc/call_context.h"
#include "server/grpc/grpc_status.h"
#include "server/grpc/parked_decision.h"
#include "server/grpc/raw_messages.h"

namespace scopekeeper {
namespace {

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context,
                                 const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// Finish() for a call counted by its handler.
grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context,
                                 const absl::Status& status,
                                 RpcMetrics::Call* counted) {
  const grpc::Status grpc_status = ToGrpcStatus(status);
  counted->Done(grpc_status.error_code());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc_status);
  return reactor;
}

// A Watch stream: the ChangeFeed's sink on one side, the call's writes on
// the other. Deletes itself when the call is done.
class WatchReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer>,
                           public ChangeFeed::Sink {
 public:
  explicit WatchReactor(CallTracker::Call call) : call_(std::move(call)) {
    StartSendInitialMetadata();
  }

  void Start(ChangeFeed* feed, const v1::WatchRequest& request) {
    absl::StatusOr<std::shared_ptr<ChangeFeed::Stream>> stream =
        feed->Open(request.from_revision(), request.end_when_caught_up(), this);
    if (!stream.ok()) return Finish(ToGrpcStatus(stream.status()));
    bool cancelled;
    {
      MutexLock lock(&mu_);
      stream_ = *stream;
      cancelled = cancelled_;
    }
    if (cancelled) return (*stream)->Cancel();
    (*stream)->Start();
  }

  // ChangeFeed::Sink (called under the stream's lock).
  void Send(const v1::WatchEvent& event) override {
    SerializeResponse(event, &current_);
    StartWrite(&current_);
  }
  void End(const absl::Status& status) override {
    Finish(ToGrpcStatus(status));
  }

  void OnWriteDone(bool ok) override { StreamOrNull()->Sent(ok); }
  void OnCancel() override {
    std::shared_ptr<ChangeFeed::Stream> stream;
    {
      MutexLock lock(&mu_);
      cancelled_ = true;
      stream = stream_;
    }
    if (stream != nullptr) stream->Cancel();
  }
  void OnDone() override { delete this; }

 private:
  std::shared_ptr<ChangeFeed::Stream> StreamOrNull() ABSL_LOCKS_EXCLUDED(mu_) {
    MutexLock lock(&mu_);
    return stream_;
  }

  const CallTracker::Call call_;  // in flight until the stream is done
  grpc::ByteBuffer current_;      // the event being written
  Mutex mu_;
  std::shared_ptr<ChangeFeed::Stream> stream_ ABSL_GUARDED_BY(mu_);
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

AuthorizerService::AuthorizerService(DecisionEngine* engine,
                                     ServingState* state, CallTracker* calls,
                                     const CallerAuthenticator* auth,
                                     RpcMetrics* rpc_metrics)
    : engine_(engine),
      state_(state),
      calls_(calls),
      auth_(auth),
      rpc_metrics_(rpc_metrics) {
  if (rpc_metrics_ == nullptr) return;
  for (int m = 0; m < kMethods; ++m) {
    metric_index_[m] = rpc_metrics_->Find(CountedMethods()[m]);
  }
}

const std::vector<std::string>& AuthorizerService::CountedMethods() {
  static const auto* const methods =
      new std::vector<std::string>{"/scopekeeper.v1.Authorizer/Authorize",
                                   "/scopekeeper.v1.Authorizer/BatchAuthorize",
                                   "/scopekeeper.v1.Authorizer/DescribeKey"};
  return *methods;
}

template <typename Request, typename Response, typename Attempt>
grpc::ServerUnaryReactor* AuthorizerService::Decide(
    grpc::CallbackServerContext* context, int method,
    const grpc::ByteBuffer* raw_request, grpc::ByteBuffer* raw_response,
    Attempt attempt) {
  RpcMetrics::Call counted;
  if (rpc_metrics_ != nullptr) {
    counted = rpc_metrics_->Start(metric_index_[method]);
  }
  absl::StatusOr<CallTracker::Call> call = calls_->Enter();
  if (!call.ok()) return Finish(context, call.status(), &counted);
  if (auth_ != nullptr) {
    const absl::Status caller = AuthenticateCall(*auth_, context).status();
    if (!caller.ok()) return Finish(context, caller, &counted);
  }
  CallArena arena;
  Request* request = arena.Create<Request>();
  absl::Status status = ParseRequest(*raw_request, request);
  if (!status.ok()) return Finish(context, status, &counted);
  Response* response = arena.Create<Response>();
  const DecisionEngine::Outcome outcome = attempt(*request, response);
  if (outcome.ready()) {
    if (outcome.status.ok()) SerializeResponse(*response, raw_response);
    return Finish(context, outcome.status, &counted);
  }
  // Not decidable yet: park the call (no thread waits) with its own copy.
  auto* parked = new ParkedDecision<Request, Response>(
      state_, *std::move(call), std::move(counted), *request, raw_response,
      [attempt](const Request& r, Response* out) { return attempt(r, out); },
      [](const absl::Status& decided, const Request&, const Response& answer,
         grpc::ByteBuffer* raw) {
        if (decided.ok()) SerializeResponse(answer, raw);
        return decided;
      });
  parked->Park(outcome.await_revision);
  return parked;
}

grpc::ServerUnaryReactor* AuthorizerService::Authorize(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Decide<v1::AuthorizeRequest, v1::AuthorizeResponse>(
      context, kAuthorize, request, response,
      [engine = engine_](const v1::AuthorizeRequest& r,
                         v1::AuthorizeResponse* out) {
        return engine->TryAuthorize(r, out);
      });
}

grpc::ServerUnaryReactor* AuthorizerService::BatchAuthorize(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Decide<v1::BatchAuthorizeRequest, v1::BatchAuthorizeResponse>(
      context, kBatchAuthorize, request, response,
      [engine = engine_](const v1::BatchAuthorizeRequest& r,
                         v1::BatchAuthorizeResponse* out) {
        return engine->TryBatchAuthorize(r, out);
      });
}

grpc::ServerUnaryReactor* AuthorizerService::DescribeKey(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Decide<v1::DescribeKeyRequest, v1::DescribeKeyResponse>(
      context, kDescribeKey, request, response,
      [engine = engine_](const v1::DescribeKeyRequest& r,
                         v1::DescribeKeyResponse* out) {
        return engine->TryDescribeKey(r, out);
      });
}

template <typename Request, typename Fn>
grpc::ServerUnaryReactor* AdminService::Run(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request,
    grpc::ByteBuffer* raw_response, Fn fn) {
  absl::StatusOr<CallTracker::Call> entered = calls_->Enter();
  if (!entered.ok()) return Finish(context, entered.status());
  absl::StatusOr<std::string> actor = AuthenticateCall(*auth_, context);
  if (!actor.ok()) return Finish(context, actor.status());
  auto request = std::make_shared<Request>();
  const absl::Status parsed = ParseRequest(*raw_request, request.get());
  if (!parsed.ok()) return Finish(context, parsed);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  auto call = std::make_shared<CallTracker::Call>(*std::move(entered));
  executor_.Schedule([reactor, raw_response, request, fn = std::move(fn),
                      actor = *std::move(actor), call] {
    auto response = fn(actor, *request);
    if (response.ok()) SerializeResponse(*response, raw_response);
    reactor->Finish(ToGrpcStatus(response.status()));
  });
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::PutPolicy(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Run<v1::PutPolicyRequest>(
      context, request, response,
      [this](absl::string_view actor, const v1::PutPolicyRequest& r)
          -> absl::StatusOr<v1::PutPolicyResponse> {
        SK_ASSIGN_OR_RETURN(const uint64_t revision,
                            registry_->PutPolicy(r.policy(), actor));
        v1::PutPolicyResponse out;
        out.set_revision(revision);
        return out;
      });
}

grpc::ServerUnaryReactor* AdminService::GetPolicy(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* request,
    grpc::ByteBuffer* response) {
  return Run<v1::GetPolicyRequest>(
      context, request, response,
      [this](absl::string_view, const v1::GetPolicyRequest&)
          -> absl::StatusOr<v1::Policy> { return registry_->GetPolicy(); });
}

// The admin methods that are one registry call: (actor,) request -> answer.
#define SK_ADMIN_CALL(Name, Request, call)                                   \
  grpc::ServerUnaryReactor* AdminService::Name(                              \
      grpc::CallbackServerContext* context, const grpc::ByteBuffer* request, \
      grpc::ByteBuffer* response) {                                          \
    return Run<v1::Request>(                                                 \
        context, request, response,                                          \
        [this](absl::string_view actor, const v1::Request& r) {              \
          (void)actor;                                                       \
          return registry_->call;                                            \
        });                                                                  \
  }
SK_ADMIN_CALL(CreateKey, CreateKeyRequest, CreateKey(r, actor))
SK_ADMIN_CALL(GetKey, GetKeyRequest, GetKey(r))
SK_ADMIN_CALL(ListKeys, ListKeysRequest, ListKeys(r))
SK_ADMIN_CALL(GrantScopes, GrantScopesRequest, GrantScopes(r, actor))
SK_ADMIN_CALL(RevokeScopes, RevokeScopesRequest, RevokeScopes(r, actor))
SK_ADMIN_CALL(RevokeKey, RevokeKeyRequest, RevokeKey(r, actor))
SK_ADMIN_CALL(RotateKey, RotateKeyRequest, RotateKey(r, actor))
SK_ADMIN_CALL(PutApp, PutAppRequest, PutApp(r, actor))
SK_ADMIN_CALL(ApproveInstallation, ApproveInstallationRequest,
              ApproveInstallation(r, actor))
SK_ADMIN_CALL(GetInstallation, GetInstallationRequest, GetInstallation(r))
SK_ADMIN_CALL(ListAuditEvents, ListAuditEventsRequest, ListAuditEvents(r))
SK_ADMIN_CALL(CreateBackup, CreateBackupRequest, CreateBackup(r, actor))
#undef SK_ADMIN_CALL

grpc::ServerWriteReactor<grpc::ByteBuffer>* AdminService::Watch(
    grpc::CallbackServerContext* context, const grpc::ByteBuffer* raw_request) {
  absl::StatusOr<CallTracker::Call> call = calls_->Enter();
  absl::Status status = call.status();
  if (status.ok()) status = AuthenticateCall(*auth_, context).status();
  v1::WatchRequest request;
  if (status.ok()) status = ParseRequest(*raw_request, &request);
  if (!status.ok()) {
    // A reactor that finishes at once with the error.
    class Rejected final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
     public:
      explicit Rejected(const absl::Status& status) {
        Finish(ToGrpcStatus(status));
      }
      void OnDone() override { delete this; }
    };
    return new Rejected(status);
  }
  auto* reactor = new WatchReactor(*std::move(call));
  reactor->Start(feed_, request);
  return reactor;
}

}  // namespace scopekeeper
