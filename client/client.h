// scopekeeper::Client: the C++ client library for Scopekeeper.
//
//   auto client = scopekeeper::Client(scopekeeper::MakeGrpcConnection(
//       {.address = "127.0.0.1:50051"}));
//   scopekeeper::Decision d = client.CheckHttp(
//       api_key, "external-pharmacy", "GET",
//       "/v1/external-pharmacy-api-v1/pharmacy_orders/");
//   if (!d.allowed) return Respond(d.http_status(), d.message());
//
// Contracts:
// * Every call has a deadline (ClientOptions::timeout unless the call gives
//   one).
// * Decisions FAIL CLOSED: `Decision::allowed` is true only when the server
//   answered OK and said allowed. Any error (unreachable server, deadline,
//   bad request) is `allowed == false` with the error in `status`.
// * Retries with jittered exponential backoff only where repeating is safe:
//   decisions and reads, and only on UNAVAILABLE (the request did not reach
//   a server that could answer). Given several replicas (ConnectionOptions::
//   address), calls are spread over them and a retry goes to another one.
//   Writes are not retried — the caller decides — except CreateKey, which
//   carries a request_id the server deduplicates (see CreateKey()).
#ifndef SCOPEKEEPER_CLIENT_CLIENT_H_
#define SCOPEKEEPER_CLIENT_CLIENT_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/connection.h"
#include "proto/scopekeeper/v1/scopekeeper.pb.h"

namespace scopekeeper {

struct ClientOptions {
  // Deadline of each call (across its retries) when the call sets none.
  absl::Duration timeout = absl::Milliseconds(500);
  // Attempts of a retryable call, the first included. At least 1.
  int max_attempts = 3;
  // Backoff before retry n (n = 1, 2, ...): uniform in
  // [0, min(max_backoff, initial_backoff * 2^(n-1))] ("full jitter").
  absl::Duration initial_backoff = absl::Milliseconds(10);
  absl::Duration max_backoff = absl::Milliseconds(200);
  // Injected for tests: the time now, and how to wait. Defaults: the real
  // clock and absl::SleepFor.
  std::function<absl::Time()> now;
  std::function<void(absl::Duration)> sleep;
};

// The answer to "may this key do this?". `allowed` is the only field a
// caller needs to act on; the rest explains.
struct Decision {
  bool allowed = false;
  // OK when the server decided; otherwise why there is no decision (and
  // `allowed` is false).
  absl::Status status;
  v1::AuthorizeResponse response;  // meaningful when status.ok()

  // The HTTP status to answer the end client with: the server's (200, 401,
  // 403, 404) when it decided, 503 when it could not be asked.
  int http_status() const { return status.ok() ? response.http_status() : 503; }
  // The end-user message: the server's, or a generic one for errors (the
  // status message is for logs, not for end clients).
  std::string message() const {
    return status.ok() ? response.message()
                       : "Authorization service unavailable";
  }
};

// Thread-safe; cheap to copy (shares the connection).
class Client {
 public:
  explicit Client(std::shared_ptr<Connection> connection,
                  ClientOptions options = {});

  // Decides `request`. Fails closed (see above).
  Decision Authorize(const v1::AuthorizeRequest& request);
  Decision Authorize(const v1::AuthorizeRequest& request, absl::Time deadline);
  // CheckHttp() decides an HTTP request by the policy's route table.
  Decision CheckHttp(absl::string_view api_key, absl::string_view api,
                     absl::string_view method, absl::string_view path,
                     absl::string_view organization_id = "");
  // Up to 1000 decisions in one call, in request order. On an RPC error
  // every decision carries that error (and is not allowed).
  std::vector<Decision> BatchAuthorize(
      const v1::BatchAuthorizeRequest& request);
  absl::StatusOr<v1::DescribeKeyResponse> DescribeKey(
      const v1::DescribeKeyRequest& request);

  // Admin calls (need ConnectionOptions::admin_token or an admin
  // certificate). Reads retry on UNAVAILABLE; writes never do.
  absl::StatusOr<v1::PutPolicyResponse> PutPolicy(
      const v1::PutPolicyRequest& request);
  absl::StatusOr<v1::Policy> GetPolicy();
  // CreateKey() sends `request` with a random request_id when it has none,
  // and then retries on UNAVAILABLE like a read: the server creates at most
  // one key per request_id. If an attempt whose answer was lost had created
  // the key, the retry gets it back without its secret (`replayed`), and
  // CreateKey() issues a new secret with RotateKey (no grace period: the
  // lost one stops working) — so the caller gets exactly one key and a
  // working secret. With the caller's own request_id, a replay is returned
  // as is.
  absl::StatusOr<v1::CreateKeyResponse> CreateKey(
      const v1::CreateKeyRequest& request);
  absl::StatusOr<v1::Key> GetKey(const v1::GetKeyRequest& request);
  absl::StatusOr<v1::ListKeysResponse> ListKeys(
      const v1::ListKeysRequest& request);
  absl::StatusOr<v1::Key> GrantScopes(const v1::GrantScopesRequest& request);
  absl::StatusOr<v1::Key> RevokeScopes(const v1::RevokeScopesRequest& request);
  absl::StatusOr<v1::Key> RevokeKey(const v1::RevokeKeyRequest& request);
  absl::StatusOr<v1::CreateKeyResponse> RotateKey(
      const v1::RotateKeyRequest& request);
  absl::StatusOr<v1::App> PutApp(const v1::PutAppRequest& request);
  absl::StatusOr<v1::Installation> ApproveInstallation(
      const v1::ApproveInstallationRequest& request);
  absl::StatusOr<v1::Installation> GetInstallation(
      const v1::GetInstallationRequest& request);
  absl::StatusOr<v1::ListAuditEventsResponse> ListAuditEvents(
      const v1::ListAuditEventsRequest& request);
  // Watch() streams changes after `request.from_revision` to `on_event`
  // until it returns false, the stream ends or fails, or `deadline` passes
  // (DEADLINE_EXCEEDED); see Connection::Watch(). Not retried: to resume,
  // watch again from the last revision seen.
  absl::Status Watch(
      const v1::WatchRequest& request, absl::Time deadline,
      const std::function<bool(const v1::WatchEvent&)>& on_event);
  // CreateBackup() checkpoints the store to a directory on the server's
  // host. Not retried: a retry after a lost answer would find the
  // destination taken.
  absl::StatusOr<v1::CreateBackupResponse> CreateBackup(
      const v1::CreateBackupRequest& request);

 private:
  // Runs `attempt(deadline)` until it succeeds, fails with a code other
  // than UNAVAILABLE, runs out of attempts, or the deadline would pass
  // during the backoff.
  template <typename T>
  absl::StatusOr<T> Retry(
      absl::Time deadline,
      const std::function<absl::StatusOr<T>(absl::Time)>& attempt);
  absl::Time Deadline() const;
  // NewRequestId() is 32 random hex digits.
  static std::string NewRequestId();

  std::shared_ptr<Connection> connection_;
  ClientOptions options_;
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_CLIENT_CLIENT_H_
