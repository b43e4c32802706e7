// Metrics: the server's counters and histograms, rendered in the Prometheus
// text exposition format (version 0.0.4). Plain C++: the HTTP side is
// server/metrics_http.h.
//
// Recording is lock-free on the decision path (relaxed atomics; a per-thread
// map from API name to its counters, filled from a mutex-guarded registry
// the first time a thread sees a name). Labels are API names and reason
// codes only: never a key, key id, organization or path.
#ifndef SCOPEKEEPER_SERVER_METRICS_METRICS_H_
#define SCOPEKEEPER_SERVER_METRICS_METRICS_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "base/mutex.h"
#include "proto/scopekeeper/v1/scopekeeper.pb.h"
#include "server/decision/decision_observer.h"
#include "server/registry/commit_observer.h"

namespace scopekeeper {

// A fixed-bucket latency histogram (seconds), thread-safe.
class LatencyHistogram {
 public:
  // Upper bounds in seconds: 1 µs .. 1 s, then +Inf (one decision).
  static constexpr std::array<double, 19> kBounds = {
      1e-6,   2.5e-6, 5e-6, 1e-5,   2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3,
      2.5e-3, 5e-3,   1e-2, 2.5e-2, 5e-2,   0.1,  0.25, 0.5,    1.0};

  // `bounds`: ascending upper bounds in seconds (must outlive the
  // histogram); +Inf is implied.
  explicit LatencyHistogram(absl::Span<const double> bounds = kBounds);

  void Observe(absl::Duration latency);
  // Appends the _bucket/_sum/_count lines of `name` with `labels` (e.g.
  // `op="commit"`, may be empty).
  void Render(absl::string_view name, absl::string_view labels,
              std::string* out) const;

 private:
  const absl::Span<const double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // bounds_.size() + 1
  std::atomic<uint64_t> count_{0};
  std::atomic<int64_t> sum_nanos_{0};
};

// Records what the decision path and the write path report (it is their
// DecisionObserver and CommitObserver) and renders it with the gauges read
// at scrape time. Thread-safe.
class Metrics final : public DecisionObserver, public CommitObserver {
 public:
  // Values read at scrape time from the serving state and registry.
  struct Gauges {
    uint64_t revision = 0;
    size_t cache_entries = 0;
    uint64_t cache_evictions = 0;  // a bounded cache's, since start
    int64_t keys_active = 0;
    int64_t keys_revoked = 0;
    // APIs of the policy in force: their decision series are rendered
    // (zero-valued) before their first decision.
    std::vector<std::string> policy_apis;
    // Refused caller credentials (scopekeeper_auth_refused_total).
    struct Refused {
      std::string service;  // "scopekeeper.v1.Admin"
      std::string reason;   // "wrong_token"
      uint64_t count = 0;
    };
    std::vector<Refused> auth_refused;
  };

  // The `api` label of decisions on an explicit requirement (no route, so
  // no API): not a valid API name, so it never collides with one.
  static constexpr absl::string_view kRequirementApi = "(requirement)";

  Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // One decision: the API it was for (kRequirementApi for an explicit
  // requirement), its reason, and how long deciding took.
  void RecordDecision(absl::string_view api, v1::Reason reason,
                      absl::Duration latency);
  // A key-cache lookup: found in the cache, or not (then the store is read).
  void RecordCacheLookup(bool hit);
  // A store commit: one sync making `mutations` writes durable (a group
  // commit), how long the sync took and whether it succeeded. A write that
  // failed before any sync counts as a failed commit of 1 mutation.
  void RecordStoreCommit(absl::Duration latency, bool ok, int mutations = 1);

  // DecisionObserver and CommitObserver.
  void OnCacheLookup(bool hit) override { RecordCacheLookup(hit); }
  void OnDecision(absl::string_view api, const v1::AuthorizeRequest& request,
                  const v1::AuthorizeResponse& response,
                  absl::Duration latency) override {
    RecordDecision(api.empty() ? kRequirementApi : api, response.reason(),
                   latency);
  }
  void OnCommit(absl::Duration latency, bool ok, int mutations) override {
    RecordStoreCommit(latency, ok, mutations);
  }
  // OnWritable() sets scopekeeper_store_writable (and the cause's class).
  void OnWritable(const absl::Status& cause) override
      ABSL_LOCKS_EXCLUDED(writable_mu_);

  // Render() returns the whole exposition.
  std::string Render(const Gauges& gauges) const
      ABSL_LOCKS_EXCLUDED(mu_, writable_mu_);

 private:
  static constexpr int kReasons = v1::Reason_ARRAYSIZE;
  // At most this many distinct API names get their own counters; decisions
  // for further names count under api="(other)". Bounds memory and label
  // cardinality if policies churn through names.
  static constexpr size_t kMaxApis = 256;

  struct ApiCounters {
    std::array<std::atomic<uint64_t>, kReasons> by_reason{};
  };
  ApiCounters* CountersFor(absl::string_view api) ABSL_LOCKS_EXCLUDED(mu_);
  // CountersFor's miss.
  ApiCounters* CountersForSlow(absl::string_view api) ABSL_LOCKS_EXCLUDED(mu_);

  // Never shrinks; entries are never freed while the Metrics lives, so the
  // per-thread caches may hold raw pointers.
  mutable Mutex mu_;
  std::map<std::string, std::unique_ptr<ApiCounters>> apis_
      ABSL_GUARDED_BY(mu_);
  ApiCounters other_;
  const uint64_t id_;  // tells per-thread caches of different instances apart

  LatencyHistogram decision_latency_;
  LatencyHistogram commit_latency_;
  std::atomic<uint64_t> cache_hits_{0};
  std::atomic<uint64_t> cache_misses_{0};
  std::atomic<uint64_t> commit_failures_{0};
  std::atomic<uint64_t> committed_mutations_{0};
  // "" while the store takes writes, else the class of the failure.
  mutable Mutex writable_mu_;
  std::string write_failure_ ABSL_GUARDED_BY(writable_mu_);
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_METRICS_METRICS_H_
