#include "server/cluster/replica.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/regular_file.h"
#include "base/status_macros.h"

namespace scopekeeper {
namespace {

absl::StatusOr<std::string> ReadFile(absl::string_view flag,
                                     const std::string& path) {
  SK_ASSIGN_OR_RETURN(RegularFile file, ReadRegularFile(flag, path));
  return std::move(file.content);
}

void Gauge(std::string* out, absl::string_view name, absl::string_view help,
           absl::string_view value, absl::string_view type = "gauge") {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type,
                  "\n", name, " ", value, "\n");
}

}  // namespace

absl::StatusOr<std::unique_ptr<Replica>> Replica::Open(
    const ReplicaOptions& options, ServingState* state, const Clock* clock,
    CommitObserver* observer) {
  if (options.etcd_endpoints.empty()) {
    return absl::InvalidArgumentError("--etcd_endpoints: empty");
  }
  if (options.max_staleness < absl::Milliseconds(100)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--max_staleness: at least 100ms, is ",
                     absl::FormatDuration(options.max_staleness)));
  }
  if (options.etcd_call_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("--etcd_call_timeout: must be positive");
  }
  if (options.etcd_cert_file.empty() != options.etcd_key_file.empty()) {
    return absl::InvalidArgumentError(
        "--etcd_cert and --etcd_key must be given together");
  }
  if (!options.etcd_cert_file.empty() && options.etcd_ca_file.empty()) {
    return absl::InvalidArgumentError("--etcd_cert needs --etcd_ca");
  }
  if (options.etcd_user.empty() != options.etcd_password_file.empty()) {
    return absl::InvalidArgumentError(
        "--etcd_user and --etcd_password_file must be given together");
  }
  std::unique_ptr<Replica> r(new Replica());
  r->options_ = options;
  r->clock_ = clock;

  storage::etcd::EtcdClient::Options client;
  client.endpoints = options.etcd_endpoints;
  client.call_timeout = options.etcd_call_timeout;
  client.connect_timeout =
      std::min(absl::Seconds(1), options.etcd_call_timeout / 2);
  client.watch_create_timeout = options.etcd_call_timeout;
  client.require_leader = true;
  if (!options.etcd_ca_file.empty()) {
    SK_ASSIGN_OR_RETURN(client.ca_pem,
                        ReadFile("--etcd_ca", options.etcd_ca_file));
  }
  if (!options.etcd_cert_file.empty()) {
    SK_ASSIGN_OR_RETURN(client.cert_pem,
                        ReadFile("--etcd_cert", options.etcd_cert_file));
    SK_ASSIGN_OR_RETURN(client.key_pem,
                        ReadFile("--etcd_key", options.etcd_key_file));
  }
  if (!options.etcd_user.empty()) {
    client.user = options.etcd_user;
    SK_ASSIGN_OR_RETURN(
        client.password,
        ReadSecretLine("--etcd_password_file", options.etcd_password_file));
  }
  SK_ASSIGN_OR_RETURN(std::unique_ptr<storage::etcd::EtcdClient> created,
                      storage::etcd::EtcdClient::Create(client));
  r->client_ = std::move(created);

  storage::EtcdStore::Options store;
  store.prefix = options.etcd_prefix;
  store.max_txn_ops = options.etcd_max_txn_ops;
  store.max_request_bytes = options.etcd_max_request_bytes;
  SK_ASSIGN_OR_RETURN(r->store_, storage::EtcdStore::Open(r->client_, store));
  if (!options.restore_from.empty()) {
    absl::StatusOr<uint64_t> restored =
        storage::ImportCheckpoint(options.restore_from, *r->store_);
    if (!restored.ok()) {
      return absl::Status(restored.status().code(),
                          absl::StrCat("--restore_from ", options.restore_from,
                                       ": ", restored.status().message()));
    }
    LogInfo(absl::StrCat("restored ", options.restore_from,
                         " into etcd prefix ", options.etcd_prefix,
                         " (now at revision ", *restored, ")"));
  }

  r->applier_ = std::make_unique<Applier>(r->store_.get(), state);
  r->freshness_ = std::make_unique<Freshness>(clock, options.max_staleness);
  Follower::Options follow;
  follow.confirm_interval = std::clamp(
      options.max_staleness / 5, absl::Milliseconds(20), absl::Seconds(1));
  follow.stall_timeout = std::max(options.max_staleness / 2, absl::Seconds(1));
  r->follower_ =
      std::make_unique<Follower>(r->store_.get(), r->applier_.get(), state,
                                 r->freshness_.get(), clock, follow);
  EtcdCommitter::Options commit;
  commit.visible_timeout = std::max(options.max_staleness, absl::Seconds(1));
  r->committer_ = std::make_unique<EtcdCommitter>(
      r->store_.get(), r->follower_.get(), observer, commit);
  LogInfo(absl::StrCat(
      "store: etcd at ", options.etcd_endpoints.size(), " endpoint(s), prefix ",
      options.etcd_prefix,
      ", --max_staleness=", absl::FormatDuration(options.max_staleness)));
  return r;
}

Replica::~Replica() { Stop(); }

void Replica::StartBackgroundWork() {
  if (options_.audit_retention > absl::ZeroDuration()) {
    pruner_ = std::thread([this] { PruneAuditUntilStopped(); });
  }
}

void Replica::Stop() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  cv_.SignalAll();
  if (pruner_.joinable()) pruner_.join();
  if (follower_ != nullptr) follower_->Stop();
}

void Replica::PruneAuditUntilStopped() {
  constexpr int kBatch = 1000;
  bool stopping;
  {
    MutexLock lock(&mu_);
    stopping = stopping_;
  }
  while (!stopping) {
    const absl::Time before = clock_->Now() - options_.audit_retention;
    int total = 0;
    while (true) {
      absl::StatusOr<int> pruned = store_->PruneAuditEvents(before, kBatch);
      if (!pruned.ok()) {
        LogWarning(
            absl::StrCat("audit retention: ", pruned.status().message()));
        break;
      }
      total += *pruned;
      if (*pruned < kBatch) break;
    }
    if (total > 0) {
      LogInfo(absl::StrCat("audit retention: deleted ", total,
                           " events older than ",
                           absl::FormatDuration(options_.audit_retention)));
    }
    MutexLock lock(&mu_);
    stopping = cv_.WaitWithTimeout(
        &mu_, options_.audit_prune_interval,
        [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; });
  }
}

std::string Replica::RenderMetrics() const {
  const Follower::Status status = follower_->status();
  const EtcdCommitter& committer = *committer_;
  std::string out;
  Gauge(&out, "scopekeeper_replica_revision",
        "etcd revision this replica's serving state is current as of.",
        absl::StrCat(status.revision));
  Gauge(&out, "scopekeeper_replica_lag_seconds",
        "Seconds since this replica was last confirmed current with the etcd "
        "cluster (how stale its decisions may be); above "
        "scopekeeper_replica_max_staleness_seconds it fails closed.",
        status.lag == absl::InfiniteDuration()
            ? std::string("+Inf")
            : absl::StrCat(absl::ToDoubleSeconds(status.lag)));
  Gauge(&out, "scopekeeper_replica_max_staleness_seconds",
        "--max_staleness of this replica.",
        absl::StrCat(absl::ToDoubleSeconds(freshness_->max_staleness())));
  Gauge(&out, "scopekeeper_replica_serving",
        "1 while the replica decides, 0 while it fails closed (stale).",
        status.serving ? "1" : "0");
  Gauge(&out, "scopekeeper_replica_snapshot_reloads_total",
        "Snapshots loaded after falling behind etcd's compaction.",
        absl::StrCat(status.reloads), "counter");
  Gauge(&out, "scopekeeper_replica_feed_restarts_total",
        "Times the etcd change feed was followed again (member lost, stream "
        "broken or stalled).",
        absl::StrCat(status.feed_restarts), "counter");
  Gauge(&out, "scopekeeper_replica_write_conflicts_total",
        "Admin writes rebuilt because another replica changed what they "
        "were built from.",
        absl::StrCat(committer.conflicts()), "counter");
  return out;
}

}  // namespace scopekeeper
