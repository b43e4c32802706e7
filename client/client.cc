#include "client/client.h"

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace scopekeeper {

Client::Client(std::shared_ptr<Connection> connection, ClientOptions options)
    : connection_(std::move(connection)), options_(std::move(options)) {
  if (!options_.now) options_.now = [] { return absl::Now(); };
  if (!options_.sleep)
    options_.sleep = [](absl::Duration d) { absl::SleepFor(d); };
  options_.max_attempts = std::max(options_.max_attempts, 1);
}

absl::Time Client::Deadline() const {
  return options_.now() + options_.timeout;
}

template <typename T>
absl::StatusOr<T> Client::Retry(
    absl::Time deadline,
    const std::function<absl::StatusOr<T>(absl::Time)>& attempt) {
  thread_local absl::BitGen jitter;
  absl::Duration ceiling = options_.initial_backoff;
  for (int n = 1;; ++n) {
    absl::StatusOr<T> result = attempt(deadline);
    if (result.ok() || !absl::IsUnavailable(result.status()) ||
        n >= options_.max_attempts) {
      return result;
    }
    const absl::Duration backoff = absl::Nanoseconds(absl::Uniform<int64_t>(
        absl::IntervalClosed, jitter, 0,
        absl::ToInt64Nanoseconds(std::min(ceiling, options_.max_backoff))));
    if (options_.now() + backoff >= deadline) return result;
    options_.sleep(backoff);
    ceiling *= 2;
  }
}

Decision Client::Authorize(const v1::AuthorizeRequest& request) {
  return Authorize(request, Deadline());
}

Decision Client::Authorize(const v1::AuthorizeRequest& request,
                           absl::Time deadline) {
  absl::StatusOr<v1::AuthorizeResponse> response = Retry<v1::AuthorizeResponse>(
      deadline,
      [&](absl::Time d) { return connection_->Authorize(request, d); });
  Decision decision;
  if (!response.ok()) {
    decision.status = response.status();
    return decision;
  }
  decision.response = *std::move(response);
  decision.allowed = decision.response.allowed();
  return decision;
}

Decision Client::CheckHttp(absl::string_view api_key, absl::string_view api,
                           absl::string_view method, absl::string_view path,
                           absl::string_view organization_id) {
  v1::AuthorizeRequest request;
  request.set_api_key(std::string(api_key));
  request.set_organization_id(std::string(organization_id));
  v1::HttpRequestTarget* http = request.mutable_http();
  http->set_api(std::string(api));
  http->set_method(std::string(method));
  http->set_path(std::string(path));
  return Authorize(request);
}

std::vector<Decision> Client::BatchAuthorize(
    const v1::BatchAuthorizeRequest& request) {
  absl::StatusOr<v1::BatchAuthorizeResponse> response =
      Retry<v1::BatchAuthorizeResponse>(Deadline(), [&](absl::Time d) {
        return connection_->BatchAuthorize(request, d);
      });
  std::vector<Decision> decisions(request.requests_size());
  if (!response.ok()) {
    for (Decision& d : decisions) d.status = response.status();
    return decisions;
  }
  if (response->responses_size() != request.requests_size()) {
    // Never pair a decision with the wrong request.
    for (Decision& d : decisions) {
      d.status = absl::InternalError(
          "BatchAuthorize: the server answered a different number of "
          "requests");
    }
    return decisions;
  }
  for (int i = 0; i < request.requests_size(); ++i) {
    decisions[i].response = std::move(*response->mutable_responses(i));
    decisions[i].allowed = decisions[i].response.allowed();
  }
  return decisions;
}

// Reads: retried on UNAVAILABLE.
#define SK_CLIENT_READ(Method, Request, Response)                   \
  absl::StatusOr<Response> Client::Method(const Request& request) { \
    return Retry<Response>(Deadline(), [&](absl::Time d) {          \
      return connection_->Method(request, d);                       \
    });                                                             \
  }
// Writes: one attempt.
#define SK_CLIENT_WRITE(Method, Request, Response)                  \
  absl::StatusOr<Response> Client::Method(const Request& request) { \
    return connection_->Method(request, Deadline());                \
  }

SK_CLIENT_READ(DescribeKey, v1::DescribeKeyRequest, v1::DescribeKeyResponse)
SK_CLIENT_READ(GetKey, v1::GetKeyRequest, v1::Key)
SK_CLIENT_READ(ListKeys, v1::ListKeysRequest, v1::ListKeysResponse)
SK_CLIENT_READ(GetInstallation, v1::GetInstallationRequest, v1::Installation)
SK_CLIENT_READ(ListAuditEvents, v1::ListAuditEventsRequest,
               v1::ListAuditEventsResponse)
SK_CLIENT_WRITE(PutPolicy, v1::PutPolicyRequest, v1::PutPolicyResponse)
SK_CLIENT_WRITE(GrantScopes, v1::GrantScopesRequest, v1::Key)
SK_CLIENT_WRITE(RevokeScopes, v1::RevokeScopesRequest, v1::Key)
SK_CLIENT_WRITE(RevokeKey, v1::RevokeKeyRequest, v1::Key)
SK_CLIENT_WRITE(RotateKey, v1::RotateKeyRequest, v1::CreateKeyResponse)
SK_CLIENT_WRITE(PutApp, v1::PutAppRequest, v1::App)
SK_CLIENT_WRITE(ApproveInstallation, v1::ApproveInstallationRequest,
                v1::Installation)
SK_CLIENT_WRITE(CreateBackup, v1::CreateBackupRequest, v1::CreateBackupResponse)

#undef SK_CLIENT_READ
#undef SK_CLIENT_WRITE

absl::StatusOr<v1::CreateKeyResponse> Client::CreateKey(
    const v1::CreateKeyRequest& request) {
  // With a request_id the server creates at most one key per id, so the
  // call may be repeated (on another replica) when its answer was lost.
  v1::CreateKeyRequest idempotent = request;
  const bool own_id = request.request_id().empty();
  if (own_id) idempotent.set_request_id(NewRequestId());
  int attempts = 0;
  const absl::Time deadline = Deadline();
  absl::StatusOr<v1::CreateKeyResponse> created =
      Retry<v1::CreateKeyResponse>(deadline, [&](absl::Time d) {
        ++attempts;
        return connection_->CreateKey(idempotent, d);
      });
  if (!created.ok() || !created->replayed() || !own_id || attempts == 1) {
    return created;
  }
  // An earlier attempt of this call created the key, and its answer (the
  // secret, shown once) was lost. Issue a new secret; the lost one stops
  // working at once (no grace period), so repeating this is harmless too.
  v1::RotateKeyRequest rotate;
  rotate.set_key_id(created->key().key_id());
  return Retry<v1::CreateKeyResponse>(deadline, [&](absl::Time d) {
    return connection_->RotateKey(rotate, d);
  });
}

std::string Client::NewRequestId() {
  thread_local absl::BitGen gen;
  return absl::StrFormat("%016x%016x", absl::Uniform<uint64_t>(gen),
                         absl::Uniform<uint64_t>(gen));
}

absl::StatusOr<v1::Policy> Client::GetPolicy() {
  return Retry<v1::Policy>(Deadline(), [&](absl::Time d) {
    return connection_->GetPolicy(v1::GetPolicyRequest(), d);
  });
}

absl::Status Client::Watch(
    const v1::WatchRequest& request, absl::Time deadline,
    const std::function<bool(const v1::WatchEvent&)>& on_event) {
  return connection_->Watch(request, deadline, on_event);
}

}  // namespace scopekeeper
