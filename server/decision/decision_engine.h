// DecisionEngine: answers Authorize, BatchAuthorize and DescribeKey from the
// ServingState, falling back to the Store only when a key is not cached
// (see KeyCache for the complete and bounded modes).
//
// Order of checks: request well-formed (else INVALID_ARGUMENT), key (invalid,
// revoked, expired: 401), organization, API (403), route (404), scopes (403).
// A well-formed request always gets a decision; RPC errors mean the call
// failed (INVALID_ARGUMENT, OUT_OF_RANGE for an unreachable min_revision,
// UNAVAILABLE when the store cannot be read): callers fail closed on them.
#ifndef SCOPEKEEPER_SERVER_DECISION_DECISION_ENGINE_H_
#define SCOPEKEEPER_SERVER_DECISION_DECISION_ENGINE_H_

#include <memory>
#include <optional>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "base/clock.h"
#include "proto/scopekeeper/v1/scopekeeper.pb.h"
#include "server/decision/decision_observer.h"
#include "server/decision/freshness.h"
#include "server/decision/serving_state.h"
#include "server/decision/usage_tracker.h"
#include "server/policy/key_secret.h"
#include "storage/store.h"

namespace scopekeeper {

inline constexpr int kMaxBatchSize = 1000;

// Thread-safe. Does not own its arguments, which must outlive it. Each
// decision is reported to `observer` (metrics, sampled logs).
//
// Never blocks. A decision that needs a revision not yet applied -- the
// request's min_revision, or a key whose latest change is written but not
// yet durable -- is not made: Try*() returns that revision instead, and the
// caller asks again once it is applied (ServingState::WhenApplied() parks
// the call without holding a thread). A min_revision beyond every revision
// this server knows of (ServingState::horizon()) is OUT_OF_RANGE at once.
// Authorize()/BatchAuthorize()/DescribeKey() do the waiting on the calling
// thread, for in-process callers that may block.
//
// Every Try*() call -- a parked call's retry included -- fails closed with
// UNAVAILABLE while decisions are held (ServingState::holds()) or, with a
// `freshness` (cluster replicas), while the state may be stale.
class DecisionEngine {
 public:
  // What a Try*() call produced: the call's status (the answer is filled in
  // when OK), or -- await_revision > 0 -- nothing yet: ask again once that
  // revision is applied.
  struct Outcome {
    absl::Status status;
    uint64_t await_revision = 0;
    bool ready() const { return await_revision == 0; }
  };
  // How often one call may have to await a revision before it fails
  // UNAVAILABLE (a key changing faster than it can be read).
  static constexpr int kMaxAwaits = 3;
  // TooManyAwaits() is that UNAVAILABLE.
  static absl::Status TooManyAwaits() {
    return absl::UnavailableError("key is being changed; retry");
  }

  DecisionEngine(ServingState* state, storage::Store* store, const Clock* clock,
                 UsageTracker* usage,
                 DecisionObserver* observer = NoDecisionObserver(),
                 const Freshness* freshness = nullptr)
      : state_(state),
        store_(store),
        clock_(clock),
        usage_(usage),
        observer_(observer),
        freshness_(freshness) {}

  // TryAuthorize() decides `request` into `*response` (see Outcome).
  Outcome TryAuthorize(const v1::AuthorizeRequest& request,
                       v1::AuthorizeResponse* response);

  // TryBatchAuthorize() decides each request as TryAuthorize() would, in
  // order, at one revision (the highest min_revision of the batch) and one
  // instant (the clock is read once per batch: a key expiring while the
  // batch is decided is decided as at the batch's start for every entry).
  // INVALID_ARGUMENT for more than kMaxBatchSize requests or when any request
  // is malformed (naming "requests[i]..."). With `compact` set, each answer
  // keeps only the decision's fields (see BatchAuthorizeRequest.compact):
  // entries are decided into one scratch response, whose strings keep their
  // capacity from entry to entry, and the decision's fields copied out.
  Outcome TryBatchAuthorize(const v1::BatchAuthorizeRequest& request,
                            v1::BatchAuthorizeResponse* response);

  // TryDescribeKey() returns the key's metadata and effective scopes
  // (sorted). An invalid, revoked or expired key is UNAUTHENTICATED (one
  // message for all three); a key of another organization is
  // PERMISSION_DENIED.
  Outcome TryDescribeKey(const v1::DescribeKeyRequest& request,
                         v1::DescribeKeyResponse* response);

  // The same, waiting on this thread (each wait at most `timeout`) for the
  // revisions they need. Never on a gRPC callback thread.
  absl::Status Authorize(const v1::AuthorizeRequest& request,
                         v1::AuthorizeResponse* response,
                         absl::Duration timeout = absl::InfiniteDuration());
  absl::Status BatchAuthorize(
      const v1::BatchAuthorizeRequest& request,
      v1::BatchAuthorizeResponse* response,
      absl::Duration timeout = absl::InfiniteDuration());
  absl::Status DescribeKey(const v1::DescribeKeyRequest& request,
                           v1::DescribeKeyResponse* response,
                           absl::Duration timeout = absl::InfiniteDuration());

 private:
  struct Lookup;
  // The internal functions below fill `*await_revision` and return an
  // ABORTED status when the decision needs a revision not yet applied.

  // CheckServing() is OK unless decisions are held or the state may be
  // stale (see the class comment): then UNAVAILABLE.
  absl::Status CheckServing() const;

  // RevisionToAwait() is 0 when `min_revision` is applied (or unset), else
  // the revision to await, or OUT_OF_RANGE naming `field` beyond horizon().
  absl::StatusOr<uint64_t> RevisionToAwait(uint64_t min_revision,
                                           absl::string_view field) const;
  // LookupKey() finds the key of `api_key`: from the cache, else from the
  // store (then offered to a bounded cache). A record written but not yet
  // durable is never decided on. `digest`: HashSecret(api_key) if already
  // computed, else null.
  absl::Status LookupKey(absl::string_view api_key, const SecretDigest* digest,
                         uint64_t* await_revision, Lookup* out);
  // AuthorizeOne() decides one request with the key's digest (or null) at
  // the instant `now`: every expiry and grace deadline of the decision is
  // compared with it (one clock read per decision, one per batch). The
  // latency reported to the observer runs from `*since` to the end of the
  // decision, whose instant is left in `*since` (a batch chains its entries:
  // one clock read per entry measures each). Without `trace_id`, an answer
  // to a request with none gets none (a compact batch entry); with it, a
  // generated one.
  absl::Status AuthorizeOne(const v1::AuthorizeRequest& request,
                            const SecretDigest* digest, absl::Time now,
                            absl::Time* since, uint64_t* await_revision,
                            v1::AuthorizeResponse* response,
                            bool trace_id = true);
  absl::Status DescribeOne(const v1::DescribeKeyRequest& request,
                           uint64_t* await_revision,
                           v1::DescribeKeyResponse* response);
  // ReadDurableKey() returns what `read` returns unless the record in it is
  // newer than the applied revision; UNAVAILABLE if the store fails.
  absl::StatusOr<std::optional<storage::KeyRecord>> ReadDurableKey(
      absl::FunctionRef<absl::StatusOr<std::optional<storage::KeyRecord>>()>
          read,
      uint64_t* await_revision);
  // RecompileFromStore() compiles the stored record of `key` against
  // `policy` (the cache is being recompiled for it).
  absl::StatusOr<std::shared_ptr<const CompiledKey>> RecompileFromStore(
      const CompiledKey& key, const PolicySnapshot& policy,
      uint64_t* await_revision);
  // Decide() decides at `now`; it also sets *api_name to the API decided
  // against, when one was named or selected and the decision got that far.
  absl::Status Decide(const v1::AuthorizeRequest& request,
                      const SecretDigest* digest, const PolicySnapshot& policy,
                      absl::Time now, uint64_t* await_revision,
                      v1::AuthorizeResponse* response,
                      absl::string_view* api_name);
  // Blocking() runs `attempt` (a Try*() call) until it is ready, waiting for
  // the revisions it needs.
  template <typename Try>
  absl::Status Blocking(Try attempt, absl::Duration timeout);
  // AwaitRevision() blocks until `revision` is applied (see
  // ServingState::WhenApplied()) or `timeout` passes (DEADLINE_EXCEEDED).
  absl::Status AwaitRevision(uint64_t revision, absl::Duration timeout);

  ServingState* const state_;
  storage::Store* const store_;
  const Clock* const clock_;
  UsageTracker* const usage_;
  DecisionObserver* const observer_;
  const Freshness* const freshness_;  // null: always fresh (single node)
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_DECISION_DECISION_ENGINE_H_
