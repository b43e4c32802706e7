#include "server/grpc/services.h"

#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "server/grpc/call_context.h"
#include "server/grpc/grpc_status.h"
#include "base/status_macros.h"

namespace scopekeeper {
namespace {

// Moves a StatusOr's value into *out.
template <typename T>
absl::Status Assign(absl::StatusOr<T> result, T* out) {
  if (!result.ok()) return result.status();
  *out = *std::move(result);
  return absl::OkStatus();
}

grpc::ServerUnaryReactor* Finish(grpc::CallbackServerContext* context,
                                 const absl::Status& status) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

// WatchReactor streams changes from a thread of its own: waiting for the
// next revision blocks, which a callback (library) thread must never do.
// Watchers are few (replicas, external caches), so a thread each is cheap.
// The thread touches the reactor only until it calls Finish(); OnDone()
// (after Finish) joins it and deletes the reactor.
class WatchReactor final : public grpc::ServerWriteReactor<v1::WatchEvent> {
 public:
  WatchReactor(Registry* registry, const v1::WatchRequest& request)
      : registry_(registry),
        next_after_(request.from_revision()),
        end_when_caught_up_(request.end_when_caught_up()) {
    StartSendInitialMetadata();  // the client sees the stream is open
    thread_ = std::thread([this] { Run(); });
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::mutex> lock(mu_);
    write_pending_ = false;
    write_ok_ = ok;
    cv_.notify_all();
  }

  void OnCancel() override {
    std::lock_guard<std::mutex> lock(mu_);
    cancelled_ = true;
    cv_.notify_all();
  }

  void OnDone() override {
    if (thread_.get_id() == std::this_thread::get_id()) {
      thread_.detach();
    } else {
      thread_.join();
    }
    delete this;
  }

 private:
  static constexpr int kBatch = 100;
  // How often an idle stream re-checks cancellation.
  static constexpr absl::Duration kPoll = absl::Milliseconds(250);

  void Run() { Finish(ToGrpcStatus(Stream())); }

  absl::Status Stream() {
    while (true) {
      SK_ASSIGN_OR_RETURN(std::vector<v1::WatchEvent> changes,
                          registry_->Changes(next_after_, kBatch));
      for (v1::WatchEvent& change : changes) {
        if (!Write(std::move(change))) {
          return absl::CancelledError("watch cancelled by the client");
        }
      }
      if (static_cast<int>(changes.size()) == kBatch) continue;
      // A short batch: every change applied so far has been sent.
      if (end_when_caught_up_) return absl::OkStatus();
      if (Cancelled()) return absl::CancelledError("watch cancelled");
      const absl::Status waited =
          registry_->WaitForChange(next_after_, absl::Now() + kPoll);
      if (!waited.ok() && !absl::IsDeadlineExceeded(waited)) return waited;
    }
  }

  // Write() sends one change and waits for it to be taken; false when the
  // stream is cancelled or broken.
  bool Write(v1::WatchEvent change) {
    std::unique_lock<std::mutex> lock(mu_);
    if (cancelled_) return false;
    current_ = std::move(change);
    write_pending_ = true;
    lock.unlock();
    StartWrite(&current_);
    lock.lock();
    cv_.wait(lock, [this] { return !write_pending_ || cancelled_; });
    if (write_pending_ || !write_ok_) return false;
    next_after_ = current_.revision();
    return true;
  }

  bool Cancelled() {
    std::lock_guard<std::mutex> lock(mu_);
    return cancelled_;
  }

  Registry* const registry_;
  uint64_t next_after_;  // only the thread touches it
  const bool end_when_caught_up_;
  std::mutex mu_;
  std::condition_variable cv_;
  v1::WatchEvent current_;
  bool write_pending_ = false;
  bool write_ok_ = true;
  bool cancelled_ = false;
  std::thread thread_;
};

}  // namespace

absl::Status AuthorizerService::AuthenticateCaller(
    const grpc::CallbackServerContext* context) const {
  if (auth_ == nullptr) return absl::OkStatus();
  return AuthenticateCall(*auth_, context).status();
}

grpc::ServerUnaryReactor* AuthorizerService::Authorize(
    grpc::CallbackServerContext* context, const v1::AuthorizeRequest* request,
    v1::AuthorizeResponse* response) {
  absl::Status status = AuthenticateCaller(context);
  if (status.ok()) {
    status = engine_->Authorize(*request, DeadlineOf(context), response);
  }
  return Finish(context, status);
}

grpc::ServerUnaryReactor* AuthorizerService::BatchAuthorize(
    grpc::CallbackServerContext* context,
    const v1::BatchAuthorizeRequest* request,
    v1::BatchAuthorizeResponse* response) {
  absl::Status status = AuthenticateCaller(context);
  if (status.ok()) {
    status = engine_->BatchAuthorize(*request, DeadlineOf(context), response);
  }
  return Finish(context, status);
}

grpc::ServerUnaryReactor* AuthorizerService::DescribeKey(
    grpc::CallbackServerContext* context, const v1::DescribeKeyRequest* request,
    v1::DescribeKeyResponse* response) {
  absl::Status status = AuthenticateCaller(context);
  if (status.ok()) status = engine_->DescribeKey(*request, response);
  return Finish(context, status);
}

template <typename Fn>
grpc::ServerUnaryReactor* AdminService::Run(
    grpc::CallbackServerContext* context, Fn fn) {
  absl::StatusOr<std::string> actor =
      AuthenticateCall(*auth_, context);
  if (!actor.ok()) return Finish(context, actor.status());
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  executor_.Schedule([reactor, fn = std::move(fn), actor = *std::move(actor)] {
    reactor->Finish(ToGrpcStatus(fn(actor)));
  });
  return reactor;
}

grpc::ServerUnaryReactor* AdminService::PutPolicy(
    grpc::CallbackServerContext* context, const v1::PutPolicyRequest* request,
    v1::PutPolicyResponse* response) {
  return Run(context, [=](absl::string_view actor) {
    absl::StatusOr<uint64_t> revision =
        registry_->PutPolicy(request->policy(), actor);
    if (revision.ok()) response->set_revision(*revision);
    return revision.status();
  });
}

grpc::ServerUnaryReactor* AdminService::GetPolicy(
    grpc::CallbackServerContext* context, const v1::GetPolicyRequest* request,
    v1::Policy* response) {
  return Run(context, [=](absl::string_view) {
    *response = registry_->GetPolicy();
    return absl::OkStatus();
  });
}

grpc::ServerUnaryReactor* AdminService::CreateKey(
    grpc::CallbackServerContext* context, const v1::CreateKeyRequest* request,
    v1::CreateKeyResponse* response) {
  return Run(context, [=](absl::string_view actor) {
    return Assign(registry_->CreateKey(*request, actor), response);
  });
}

grpc::ServerUnaryReactor* AdminService::GetKey(
    grpc::CallbackServerContext* context, const v1::GetKeyRequest* request,
    v1::Key* response) {
  return Run(context, [=](absl::string_view) {
    return Assign(registry_->GetKey(*request), response);
  });
}

grpc::ServerUnaryReactor* AdminService::ListKeys(
    grpc::CallbackServerContext* context, const v1::ListKeysRequest* request,
    v1::ListKeysResponse* response) {
  return Run(context, [=](absl::string_view) {
    return Assign(registry_->ListKeys(*request), response);
  });
}

grpc::ServerUnaryReactor* AdminService::GrantScopes(
    grpc::CallbackServerContext* context, const v1::GrantScopesRequest* request,
    v1::Key* response) {
  return Run(context, [=](absl::string_view actor) {
    return Assign(registry_->GrantScopes(*request, actor), response);
  });
}

grpc::ServerUnaryReactor* AdminService::RevokeScopes(
    grpc::CallbackServerContext* context,
    const v1::RevokeScopesRequest* request, v1::Key* response) {
  return Run(context, [=](absl::string_view actor) {
    return Assign(registry_->RevokeScopes(*request, actor), response);
  });
}

grpc::ServerUnaryReactor* AdminService::RevokeKey(
    grpc::CallbackServerContext* context, const v1::RevokeKeyRequest* request,
    v1::Key* response) {
  return Run(context, [=](absl::string_view actor) {
    return Assign(registry_->RevokeKey(*request, actor), response);
  });
}

grpc::ServerUnaryReactor* AdminService::RotateKey(
    grpc::CallbackServerContext* context, const v1::RotateKeyRequest* request,
    v1::CreateKeyResponse* response) {
  return Run(context, [=](absl::string_view actor) {
    return Assign(registry_->RotateKey(*request, actor), response);
  });
}

grpc::ServerUnaryReactor* AdminService::PutApp(
    grpc::CallbackServerContext* context, const v1::PutAppRequest* request,
    v1::App* response) {
  return Run(context, [=](absl::string_view actor) {
    return Assign(registry_->PutApp(*request, actor), response);
  });
}

grpc::ServerUnaryReactor* AdminService::ApproveInstallation(
    grpc::CallbackServerContext* context,
    const v1::ApproveInstallationRequest* request, v1::Installation* response) {
  return Run(context, [=](absl::string_view actor) {
    return Assign(registry_->ApproveInstallation(*request, actor), response);
  });
}

grpc::ServerUnaryReactor* AdminService::GetInstallation(
    grpc::CallbackServerContext* context,
    const v1::GetInstallationRequest* request, v1::Installation* response) {
  return Run(context, [=](absl::string_view) {
    return Assign(registry_->GetInstallation(*request), response);
  });
}

grpc::ServerUnaryReactor* AdminService::ListAuditEvents(
    grpc::CallbackServerContext* context,
    const v1::ListAuditEventsRequest* request,
    v1::ListAuditEventsResponse* response) {
  return Run(context, [=](absl::string_view) {
    return Assign(registry_->ListAuditEvents(*request), response);
  });
}

grpc::ServerUnaryReactor* AdminService::CreateBackup(
    grpc::CallbackServerContext* context,
    const v1::CreateBackupRequest* request,
    v1::CreateBackupResponse* response) {
  return Run(context, [=](absl::string_view actor) {
    return Assign(registry_->CreateBackup(*request, actor), response);
  });
}

grpc::ServerWriteReactor<v1::WatchEvent>* AdminService::Watch(
    grpc::CallbackServerContext* context, const v1::WatchRequest* request) {
  absl::StatusOr<std::string> actor =
      AuthenticateCall(*auth_, context);
  if (!actor.ok()) {
    // A reactor that finishes at once with the authentication error.
    class Rejected final : public grpc::ServerWriteReactor<v1::WatchEvent> {
     public:
      explicit Rejected(const absl::Status& status) {
        Finish(ToGrpcStatus(status));
      }
      void OnDone() override { delete this; }
    };
    return new Rejected(actor.status());
  }
  return new WatchReactor(registry_, *request);
}

}  // namespace scopekeeper
