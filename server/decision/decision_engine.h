// DecisionEngine: answers Authorize, BatchAuthorize and DescribeKey from the
// ServingState, falling back to the Store only when a key is not cached
// (see KeyCache for the complete and bounded modes).
//
// Order of checks: request well-formed (else INVALID_ARGUMENT), key (invalid,
// revoked, expired: 401), organization, API (403), route (404), scopes (403).
// A well-formed request always gets a decision; RPC errors mean the call
// failed (INVALID_ARGUMENT, DEADLINE_EXCEEDED for min_revision, UNAVAILABLE
// when the store cannot be read): callers fail closed on them.
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
// Longest min_revision wait, whatever the call's deadline.
inline constexpr absl::Duration kMaxRevisionWait = absl::Seconds(30);

// Thread-safe. Does not own its arguments, which must outlive it. Each
// decision is reported to `observer` (metrics, sampled logs). With a
// `freshness` (cluster replicas), Authorize, BatchAuthorize and DescribeKey
// fail closed with UNAVAILABLE while it says the state may be stale.
class DecisionEngine {
 public:
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

  // Authorize() decides `request` into `*response`. `deadline` bounds the
  // min_revision wait.
  absl::Status Authorize(const v1::AuthorizeRequest& request,
                         absl::Time deadline, v1::AuthorizeResponse* response);

  // BatchAuthorize() decides each request as Authorize() would, in order.
  // INVALID_ARGUMENT for more than kMaxBatchSize requests or when any request
  // is malformed (naming "requests[i]...").
  absl::Status BatchAuthorize(const v1::BatchAuthorizeRequest& request,
                              absl::Time deadline,
                              v1::BatchAuthorizeResponse* response);

  // DescribeKey() returns the key's metadata and effective scopes (sorted).
  // An invalid, revoked or expired key is UNAUTHENTICATED (one message for
  // all three); a key of another organization is PERMISSION_DENIED.
  absl::Status DescribeKey(const v1::DescribeKeyRequest& request,
                           v1::DescribeKeyResponse* response);

 private:
  struct Lookup;
  // LookupKey() finds the key of `api_key`: from the cache, else from the
  // store (then offered to a bounded cache). A record written but not yet
  // durable is waited for, up to `deadline`, never decided on.
  // `digest`: HashSecret(api_key) if already computed, else null.
  absl::Status LookupKey(absl::string_view api_key, const SecretDigest* digest,
                         absl::Time deadline, Lookup* out);
  // AuthorizeOne() is Authorize() with the key's digest (or null).
  absl::Status AuthorizeOne(const v1::AuthorizeRequest& request,
                            const SecretDigest* digest, absl::Time deadline,
                            v1::AuthorizeResponse* response);
  // ReadDurableKey() returns what `read` returns once the record in it is
  // durable and applied (re-reading after waiting, up to `deadline`, while
  // it is newer than the applied revision); UNAVAILABLE if the store fails.
  absl::StatusOr<std::optional<storage::KeyRecord>> ReadDurableKey(
      absl::FunctionRef<absl::StatusOr<std::optional<storage::KeyRecord>>()>
          read,
      absl::Time deadline);
  // RecompileFromStore() compiles the stored record of `key` against
  // `policy` (the cache is being recompiled for it).
  absl::StatusOr<std::shared_ptr<const CompiledKey>> RecompileFromStore(
      const CompiledKey& key, const PolicySnapshot& policy,
      absl::Time deadline);
  absl::Status Decide(const v1::AuthorizeRequest& request,
                      const SecretDigest* digest, const PolicySnapshot& policy,
                      absl::Time deadline, v1::AuthorizeResponse* response);

  ServingState* const state_;
  storage::Store* const store_;
  const Clock* const clock_;
  UsageTracker* const usage_;
  DecisionObserver* const observer_;
  const Freshness* const freshness_;  // null: always fresh (single node)
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_DECISION_DECISION_ENGINE_H_
