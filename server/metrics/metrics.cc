#include "server/metrics/metrics.h"

#include <algorithm>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/version.h"

namespace scopekeeper {
namespace {

std::atomic<uint64_t> next_metrics_id{1};

// The build label of scopekeeper_build_info.
#ifdef NDEBUG
constexpr absl::string_view kBuildMode = "opt";
#else
constexpr absl::string_view kBuildMode = "dbg";
#endif

void Header(absl::string_view name, absl::string_view type,
            absl::string_view help, std::string* out) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type,
                  "\n");
}

// Scalar() renders an unlabelled metric: its header and its one sample.
template <typename T>
void Scalar(absl::string_view name, absl::string_view type,
            absl::string_view help, T value, std::string* out) {
  Header(name, type, help, out);
  absl::StrAppend(out, name, " ", value, "\n");
}

// Label values here are API names (grammar [a-z][a-z0-9_.-]*) and enum
// names; escaping is still applied so the format can never break.
std::string Escape(absl::string_view value) {
  std::string out;
  for (char c : value) {
    if (c == '\\' || c == '"') out.push_back('\\');
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out.push_back(c);
  }
  return out;
}

}  // namespace

LatencyHistogram::LatencyHistogram(absl::Span<const double> bounds)
    : bounds_(bounds), buckets_(new std::atomic<uint64_t>[bounds.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) buckets_[i].store(0);
}

void LatencyHistogram::Observe(absl::Duration latency) {
  const double seconds = absl::ToDoubleSeconds(latency);
  const size_t bucket =
      std::lower_bound(bounds_.begin(), bounds_.end(), seconds) -
      bounds_.begin();
  buckets_[bucket].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_nanos_.fetch_add(absl::ToInt64Nanoseconds(latency),
                       std::memory_order_relaxed);
}

void LatencyHistogram::Render(absl::string_view name, absl::string_view labels,
                              std::string* out) const {
  const std::string sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    const std::string le =
        i < bounds_.size() ? absl::StrFormat("%g", bounds_[i]) : "+Inf";
    absl::StrAppend(out, name, "_bucket{", labels, sep, "le=\"", le, "\"} ",
                    cumulative, "\n");
  }
  const std::string braces =
      labels.empty() ? "" : absl::StrCat("{", labels, "}");
  absl::StrAppend(
      out, name, "_sum", braces, " ",
      absl::StrFormat("%.9f", sum_nanos_.load(std::memory_order_relaxed) / 1e9),
      "\n");
  absl::StrAppend(out, name, "_count", braces, " ",
                  count_.load(std::memory_order_relaxed), "\n");
}

Metrics::Metrics() : id_(next_metrics_id.fetch_add(1)) {}

Metrics::ApiCounters* Metrics::CountersFor(absl::string_view api) {
  // Per thread, the last answer: a thread's decisions mostly name the API
  // of the one before (one short compare instead of two hash lookups).
  struct Last {
    uint64_t id = 0;
    std::string api;
    ApiCounters* counters = nullptr;
  };
  thread_local Last last;
  if (last.counters != nullptr && last.id == id_ && last.api == api) {
    return last.counters;
  }
  ApiCounters* const counters = CountersForSlow(api);
  last.id = id_;
  last.api.assign(api.data(), api.size());
  last.counters = counters;
  return counters;
}

Metrics::ApiCounters* Metrics::CountersForSlow(absl::string_view api) {
  // Per thread: metrics instance -> api -> counters. Instances are few (one
  // per server; a few in tests). Lookup by string_view: no allocation.
  thread_local absl::flat_hash_map<
      uint64_t, absl::flat_hash_map<std::string, ApiCounters*>>
      cache;
  absl::flat_hash_map<std::string, ApiCounters*>& mine = cache[id_];
  auto it = mine.find(api);
  if (it != mine.end()) return it->second;
  ApiCounters* counters = nullptr;
  {
    MutexLock lock(&mu_);
    auto found = apis_.find(std::string(api));
    if (found != apis_.end()) {
      counters = found->second.get();
    } else if (apis_.size() < kMaxApis) {
      counters =
          (apis_[std::string(api)] = std::make_unique<ApiCounters>()).get();
    } else {
      counters = &other_;
    }
  }
  mine.emplace(std::string(api), counters);
  return counters;
}

void Metrics::RecordDecision(absl::string_view api, v1::Reason reason,
                             absl::Duration latency) {
  const int r = static_cast<int>(reason);
  if (r >= 0 && r < kReasons) {
    CountersFor(api)->by_reason[r].fetch_add(1, std::memory_order_relaxed);
  }
  decision_latency_.Observe(latency);
}

void Metrics::OnWritable(const absl::Status& cause) {
  std::string failure;
  if (!cause.ok()) {
    // A fixed label set: the message itself goes to the log.
    failure = absl::StrContains(cause.message(), "No space left") ||
                      absl::StrContains(cause.message(), "no space left")
                  ? "no_space"
                  : "io_error";
  }
  MutexLock lock(&writable_mu_);
  write_failure_ = std::move(failure);
}

void Metrics::RecordCacheLookup(bool hit) {
  (hit ? cache_hits_ : cache_misses_).fetch_add(1, std::memory_order_relaxed);
}

void Metrics::RecordStoreCommit(absl::Duration latency, bool ok,
                                int mutations) {
  commit_latency_.Observe(latency);
  if (ok) {
    committed_mutations_.fetch_add(mutations, std::memory_order_relaxed);
  } else {
    commit_failures_.fetch_add(1, std::memory_order_relaxed);
  }
}

std::string Metrics::Render(const Gauges& gauges) const {
  std::string out;
  Header("scopekeeper_build_info", "gauge",
         "Always 1; labels describe the build.", &out);
  absl::StrAppend(&out, "scopekeeper_build_info{version=\"",
                  Escape(ScopekeeperVersion()), "\",commit=\"",
                  Escape(ScopekeeperCommit()), "\",mode=\"", kBuildMode,
                  "\"} 1\n");

  Header("scopekeeper_decisions_total", "counter",
         "Decisions by API (\"(requirement)\" for explicit requirements) and "
         "reason; every API of the policy from start.",
         &out);
  const auto render_api = [&](const std::string& api,
                              const ApiCounters& counters) {
    for (int r = 1; r < kReasons; ++r) {
      if (!v1::Reason_IsValid(r)) continue;
      absl::StrAppend(&out, "scopekeeper_decisions_total{api=\"", Escape(api),
                      "\",reason=\"", v1::Reason_Name(r), "\"} ",
                      counters.by_reason[r].load(std::memory_order_relaxed),
                      "\n");
    }
  };
  {
    // Every API that decided something, every API of the policy (zero
    // until its first decision) and explicit requirements, in name order.
    static const ApiCounters kNone;
    std::map<absl::string_view, const ApiCounters*> shown;
    MutexLock lock(&mu_);
    for (const std::string& api : gauges.policy_apis) shown[api] = &kNone;
    shown[kRequirementApi] = &kNone;
    for (const auto& [api, counters] : apis_) shown[api] = counters.get();
    for (const auto& [api, counters] : shown) {
      render_api(std::string(api), *counters);
    }
  }
  render_api("(other)", other_);

  Header("scopekeeper_decision_latency_seconds", "histogram",
         "Time to decide one request inside the server.", &out);
  decision_latency_.Render("scopekeeper_decision_latency_seconds", "", &out);

  Header("scopekeeper_key_cache_lookups_total", "counter",
         "Key-cache lookups by result (a miss reads the store).", &out);
  absl::StrAppend(&out, "scopekeeper_key_cache_lookups_total{result=\"hit\"} ",
                  cache_hits_.load(std::memory_order_relaxed), "\n",
                  "scopekeeper_key_cache_lookups_total{result=\"miss\"} ",
                  cache_misses_.load(std::memory_order_relaxed), "\n");
  Scalar("scopekeeper_key_cache_entries", "gauge",
         "Secret digests held in the key cache.", gauges.cache_entries, &out);
  Scalar("scopekeeper_key_cache_evictions_total", "counter",
         "Entries a bounded key cache (--key_cache_capacity) evicted to make "
         "room.",
         gauges.cache_evictions, &out);

  Header("scopekeeper_store_commit_latency_seconds", "histogram",
         "Store syncs, each making a group of concurrent mutations durable.",
         &out);
  commit_latency_.Render("scopekeeper_store_commit_latency_seconds", "", &out);
  Scalar("scopekeeper_store_commit_failures_total", "counter",
         "Store writes or syncs that failed (their mutations were not "
         "applied).",
         commit_failures_.load(std::memory_order_relaxed), &out);
  Scalar("scopekeeper_store_committed_mutations_total", "counter",
         "Mutations made durable; divided by the commit count, the mean "
         "group-commit size.",
         committed_mutations_.load(std::memory_order_relaxed), &out);

  {
    MutexLock lock(&writable_mu_);
    Scalar("scopekeeper_store_writable", "gauge",
           "1 while the store takes writes; 0 after a write or sync failed "
           "(decisions continue; see the log and the failure series).",
           write_failure_.empty() ? 1 : 0, &out);
    Header("scopekeeper_store_write_failure", "gauge",
           "1 for the class of the current store failure (no_space, "
           "io_error); absent while writable.",
           &out);
    if (!write_failure_.empty()) {
      absl::StrAppend(&out, "scopekeeper_store_write_failure{cause=\"",
                      write_failure_, "\"} 1\n");
    }
  }
  Header("scopekeeper_auth_refused_total", "counter",
         "Calls refused for their credentials, by service and reason "
         "(missing_credential, malformed_authorization, wrong_token, "
         "subject_not_listed).",
         &out);
  for (const Gauges::Refused& r : gauges.auth_refused) {
    absl::StrAppend(&out, "scopekeeper_auth_refused_total{service=\"",
                    Escape(r.service), "\",reason=\"", Escape(r.reason), "\"} ",
                    r.count, "\n");
  }
  Scalar("scopekeeper_revision", "gauge",
         "Revision of the last applied mutation.", gauges.revision, &out);
  Header("scopekeeper_keys", "gauge", "Stored keys by status.", &out);
  absl::StrAppend(
      &out, "scopekeeper_keys{status=\"active\"} ", gauges.keys_active, "\n",
      "scopekeeper_keys{status=\"revoked\"} ", gauges.keys_revoked, "\n");
  return out;
}

}  // namespace scopekeeper
