#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <optional>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/status_macros.h"
#include "base/version.h"
#include "server/grpc/rpc_metrics_interceptor.h"
#include "server/metrics/process_metrics.h"
#include "server/policy/policy.h"
#include "server/startup_checks.h"
#include "server/tls_files.h"
#include "storage/rocksdb_store.h"

namespace scopekeeper {
namespace {

// EnsureDirectory() creates `path` and any missing parents (mode 0700, like
// `mkdir -p -m 0700`), so a documented --data_dir works on a fresh machine.
absl::Status EnsureDirectory(const std::string& path) {
  if (path.empty()) {
    return absl::InvalidArgumentError("--data_dir is required");
  }
  for (size_t end = path.find('/', 1);; end = path.find('/', end + 1)) {
    const std::string prefix = path.substr(0, end);
    if (mkdir(prefix.c_str(), 0700) != 0 && errno != EEXIST) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot create data dir ", path, ": ", prefix, ": ",
                       std::strerror(errno)));
    }
    if (end == std::string::npos) break;
  }
  struct stat st;
  if (stat(path.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("data dir ", path, " is not a directory"));
  }
  return absl::OkStatus();
}

// "host:port" -> "host" (brackets of IPv6 literals kept).
std::string HostOf(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  return colon == std::string::npos ? listen : listen.substr(0, colon);
}

// Credentials(): plaintext, TLS, or mTLS (client certificate required and
// verified against the client CA).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(
    const ServerOptions& options) {
  if (options.tls_cert_file.empty() != options.tls_key_file.empty()) {
    return absl::InvalidArgumentError(
        "--tls_cert and --tls_key must be given together");
  }
  if (options.tls_client_ca_file.empty() &&
      !(options.admin_subjects.empty() &&
        options.authorizer_subjects.empty())) {
    return absl::InvalidArgumentError(
        "--admin_subjects and --authorizer_subjects need --tls_client_ca");
  }
  if (options.tls_cert_file.empty()) {
    if (!options.tls_client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "--tls_client_ca needs --tls_cert and --tls_key");
    }
    return grpc::InsecureServerCredentials();
  }
  // Checked with OpenSSL first: gRPC would only fail to listen.
  SK_ASSIGN_OR_RETURN(TlsFiles files,
                      LoadTlsFiles(options.tls_cert_file, options.tls_key_file,
                                   options.tls_client_ca_file));
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  pair.cert_chain = std::move(files.cert_chain_pem);
  pair.private_key = std::move(files.private_key_pem);
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!options.tls_client_ca_file.empty()) {
    ssl.pem_root_certs = std::move(files.client_ca_pem);
    ssl.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

// CheckTokensDiffer(): a gateway holding the data-plane token must not be
// an admin.
absl::Status CheckTokensDiffer(const ServerOptions& options,
                               const AdminToken& admin,
                               const std::string& authorizer_token) {
  if (authorizer_token.empty() || authorizer_token != admin.token) {
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--authorizer_token_file ", options.authorizer_token_file,
      " holds the admin token (", admin.path,
      "): the data-plane token must differ, or every gateway holding it is "
      "an admin"));
}

// LogStarted() is the one start-up line an operator checks the server
// against: address, build, transport security, whether the data plane is
// open, the store, the revision and where the policy came from.
void LogStarted(const ServerOptions& options, const PolicySnapshot& policy,
                uint64_t revision, uint64_t applied_policy,
                const std::string& address, bool decisions_serving) {
  const bool closed = !options.authorizer_token_file.empty() ||
                      !options.authorizer_subjects.empty();
  std::string policy_source = "none";
  if (applied_policy != 0) {
    policy_source =
        absl::StrCat("policy_file applied at revision ", applied_policy);
  } else if (policy.policy().apis_size() > 0 ||
             policy.policy().scopes_size() > 0) {
    policy_source =
        options.policy_file.empty() ? "stored" : "stored, same as policy_file";
  }
  const std::string revision_text = absl::StrCat(revision);
  const std::string apis = absl::StrCat(policy.policy().apis_size());
  const std::string data_dir = Redact(options.data_dir, kMaxQuotedPath);
  Log(LogLevel::kInfo, absl::StrCat("listening on ", address),
      {{"version", ScopekeeperVersion()},
       {"commit", ScopekeeperCommit()},
       {"tls", options.tls_cert_file.empty()        ? "off"
               : options.tls_client_ca_file.empty() ? "on"
                                                    : "mtls"},
       {"data_plane", closed ? "closed" : "open"},
       {"decisions", decisions_serving ? "served" : "held"},
       {"store", options.cluster.etcd_endpoints.empty() ? "rocksdb" : "etcd"},
       {"data_dir", data_dir},
       {"revision", revision_text},
       {"policy", policy_source},
       {"apis", apis}});
}

}  // namespace

absl::StatusOr<std::unique_ptr<ScopekeeperServer>> ScopekeeperServer::Start(
    const ServerOptions& options) {
  // What can refuse the start is checked before anything is changed (the
  // stored policy, its audit event, a generated token).
  SK_RETURN_IF_ERROR(ValidateOptions(options));
  std::unique_ptr<ScopekeeperServer> s(
      new ScopekeeperServer(options.key_cache_capacity));
  s->shutdown_grace_ = options.shutdown_grace;
  SK_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                      Credentials(options));
  std::string authorizer_token;
  if (!options.authorizer_token_file.empty()) {
    SK_ASSIGN_OR_RETURN(authorizer_token,
                        ReadTokenFile("--authorizer_token_file",
                                      options.authorizer_token_file));
  }
  // A given admin token is checked now; the default one in the data dir
  // once the store exists (below).
  std::optional<AdminToken> admin_token;
  if (!options.admin_token_file.empty()) {
    SK_ASSIGN_OR_RETURN(admin_token,
                        LoadOrCreateAdminToken(options.admin_token_file, ""));
    SK_RETURN_IF_ERROR(
        CheckTokensDiffer(options, *admin_token, authorizer_token));
  }
  std::optional<v1::Policy> policy;
  if (!options.policy_file.empty()) {
    SK_ASSIGN_OR_RETURN(policy, ReadPolicyFile(options.policy_file));
    const absl::Status valid =
        PolicySnapshot::Compile(*policy, /*generation=*/0).status();
    if (!valid.ok()) {
      return absl::Status(valid.code(),
                          absl::StrCat("--policy_file ", options.policy_file,
                                       ": ", valid.message()));
    }
  }
  SK_RETURN_IF_ERROR(CheckCanListen("--listen", options.listen));
  if (!options.metrics_listen.empty()) {
    SK_RETURN_IF_ERROR(
        CheckCanListen("--metrics_listen", options.metrics_listen));
  }
  SK_RETURN_IF_ERROR(EnsureDirectory(options.data_dir));
  SecureDataDirectory(options.data_dir);

  const bool cluster = !options.cluster.etcd_endpoints.empty();
  if (cluster) {
    // The state is etcd's; the data dir holds only local files (the
    // generated admin token).
    SK_ASSIGN_OR_RETURN(
        s->replica_, Replica::Open(options.cluster, &s->state_, options.clock,
                                   &s->metrics_));
    s->store_in_use_ = s->replica_->store();
  } else {
    // The embedded store: refused if the data dir lost it.
    SK_RETURN_IF_ERROR(
        CheckStoreNotLost(options.data_dir, options.accept_data_loss));
    storage::RocksDbStore::Options store_options;
    store_options.path = absl::StrCat(options.data_dir, "/db");
    store_options.accept_data_loss = options.accept_data_loss;
    SK_ASSIGN_OR_RETURN(s->store_, storage::RocksDbStore::Open(store_options));
    s->store_in_use_ = s->store_.get();
    MarkDataDirectory(options.data_dir);
  }

  // Generated (on a first start) only once the store exists: a data dir
  // with a token and no database is one whose database was lost.
  if (!admin_token.has_value()) {
    SK_ASSIGN_OR_RETURN(admin_token,
                        LoadOrCreateAdminToken("", options.data_dir));
    SK_RETURN_IF_ERROR(
        CheckTokensDiffer(options, *admin_token, authorizer_token));
  }
  s->admin_token_path_ = admin_token->path;
  if (admin_token->created) {
    LogInfo(absl::StrCat("generated admin token in ", admin_token->path));
  }

  s->usage_ = std::make_unique<UsageTracker>(s->store_in_use_);
  if (cluster) {
    s->registry_ = std::make_unique<Registry>(
        s->store_in_use_, &s->state_, options.clock, s->usage_.get(),
        s->replica_->applier(), s->replica_->committer());
  } else {
    s->registry_ = std::make_unique<Registry>(
        s->store_in_use_, &s->state_, options.clock, s->usage_.get(),
        &s->metrics_, options.store_retry_interval);
  }
  SK_RETURN_IF_ERROR(s->registry_->Load());
  if (cluster) s->replica_->StartBackgroundWork();
  uint64_t applied_policy = 0;  // the revision of --policy_file, if applied
  if (policy.has_value() && !s->registry_->PolicyEquals(*policy)) {
    absl::StatusOr<uint64_t> revision =
        s->registry_->PutPolicy(*policy, "policy_file");
    if (!revision.ok()) {
      return absl::Status(revision.status().code(),
                          absl::StrCat("--policy_file ", options.policy_file,
                                       ": ", revision.status().message()));
    }
    LogInfo(absl::StrCat("applied policy ", options.policy_file,
                         " at revision ", *revision));
    applied_policy = *revision;
  }
  std::vector<DecisionObserver*> observers = {&s->metrics_};
  if (options.decision_log_sample_rate > 0) {
    s->decision_log_ =
        std::make_unique<DecisionLog>(options.decision_log_sample_rate);
    observers.push_back(s->decision_log_.get());
  }
  s->decision_observers_ =
      std::make_unique<DecisionObservers>(std::move(observers));
  s->engine_ = std::make_unique<DecisionEngine>(
      &s->state_, s->store_in_use_, options.clock, s->usage_.get(),
      s->decision_observers_.get(),
      cluster ? s->replica_->freshness() : nullptr);

  s->admin_refusals_ =
      std::make_unique<RefusalReporter>(kAdminService, options.clock);
  s->authorizer_refusals_ =
      std::make_unique<RefusalReporter>(kAuthorizerService, options.clock);
  s->auth_ = std::make_unique<CallerAuthenticator>("admin", admin_token->token,
                                                   options.admin_subjects,
                                                   s->admin_refusals_.get());
  if (!options.authorizer_token_file.empty() ||
      !options.authorizer_subjects.empty()) {
    s->authorizer_auth_ = std::make_unique<CallerAuthenticator>(
        "authorizer", authorizer_token, options.authorizer_subjects,
        s->authorizer_refusals_.get());
  }
  // Every call counted and timed by method and status (go-grpc-prometheus
  // names); the services listed are those registered below and the two
  // gRPC adds (health, reflection). The Authorizer's and ext_authz's
  // handlers count their own calls; an interceptor counts the others.
  s->rpc_metrics_ = std::make_unique<RpcMetrics>(ServiceMethods(
      {kAuthorizerService, kAdminService, "envoy.service.auth.v3.Authorization",
       "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}));
  s->authorizer_service_ = std::make_unique<AuthorizerService>(
      s->engine_.get(), &s->state_, &s->calls_, s->authorizer_auth_.get(),
      s->rpc_metrics_.get());
  ChangeFeed::Options feed_options;
  feed_options.max_streams = options.max_watch_streams;
  feed_options.stall_timeout = options.watch_stall_timeout;
  s->change_feed_ = std::make_unique<ChangeFeed>(s->registry_.get(), &s->state_,
                                                 options.clock, feed_options);
  s->admin_service_ = std::make_unique<AdminService>(
      s->registry_.get(), s->change_feed_.get(), &s->calls_, s->auth_.get());
  s->gateway_settings_ = options.gateway;
  s->ext_authz_service_ = std::make_unique<ExtAuthzService>(
      s->engine_.get(), &s->state_, &s->calls_, &s->gateway_settings_,
      s->authorizer_auth_.get(), s->rpc_metrics_.get());

  if (options.hold_decisions) {
    s->state_.holds().Hold(kStartHold,
                           "started with --hold_decisions; release with "
                           "SIGUSR1 once the data is reviewed");
  }

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  std::vector<
      std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
      interceptors;
  std::vector<std::string> counted_by_handlers =
      AuthorizerService::CountedMethods();
  counted_by_handlers.insert(counted_by_handlers.end(),
                             ExtAuthzService::CountedMethods().begin(),
                             ExtAuthzService::CountedMethods().end());
  interceptors.push_back(std::make_unique<RpcMetricsInterceptorFactory>(
      s->rpc_metrics_.get(), counted_by_handlers));
  builder.experimental().SetInterceptorCreators(std::move(interceptors));
  builder.AddListeningPort(options.listen, credentials, &s->port_);
  // gRPC sets SO_REUSEPORT by default: a second server on the same port
  // would start and the kernel would split connections between two
  // independent databases. Refuse to share the port instead.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  builder.SetSyncServerOption(grpc::ServerBuilder::SyncServerOption::NUM_CQS,
                              options.server_threads);
  builder.RegisterService(s->authorizer_service_.get());
  builder.RegisterService(s->admin_service_.get());
  builder.RegisterService(s->ext_authz_service_.get());
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->port_ == 0) {
    const std::string problem = ListenProblem(options.listen);
    return absl::UnavailableError(
        absl::StrCat("--listen: cannot listen on ", options.listen, ": ",
                     problem.empty() ? "address in use or invalid" : problem));
  }
  s->address_ = absl::StrCat(HostOf(options.listen), ":", s->port_);
  {
    grpc::HealthCheckServiceInterface* health =
        s->server_->GetHealthCheckService();
    health->SetServingStatus(kAdminService, true);
    MutexLock lock(&s->serving_mu_);
    s->SetAuthorizerHealth();
  }
  if (cluster) {
    // A replica that cannot confirm it is current holds decisions (the
    // engine's Freshness check refuses them anyway) and reports it.
    ScopekeeperServer* self = s.get();
    s->replica_->OnServingChange([self](bool serving) {
      self->SetDecisionsServing(
          kClusterHold, serving,
          "not confirmed current with the etcd cluster within "
          "--max_staleness");
    });
  }
  if (!options.metrics_listen.empty()) {
    ScopekeeperServer* self = s.get();
    SK_ASSIGN_OR_RETURN(s->metrics_http_, MetricsHttpServer::Start(
                                              options.metrics_listen, [self] {
                                                return self->RenderMetrics();
                                              }));
    LogInfo(absl::StrCat("metrics on http://", HostOf(options.metrics_listen),
                         ":", s->metrics_http_->port(), "/metrics"));
  }
  if (!options.http_authz_listen.empty()) {
    if (s->authorizer_auth_ != nullptr &&
        options.authorizer_token_file.empty()) {
      return absl::InvalidArgumentError(
          "--http_authz_listen: the data plane is closed by "
          "--authorizer_subjects, which plain HTTP cannot check; set "
          "--authorizer_token_file too");
    }
    HttpAuthzOptions http_options = options.http_authz;
    http_options.listen = options.http_authz_listen;
    SK_ASSIGN_OR_RETURN(s->http_authz_,
                        HttpAuthzServer::Start(
                            http_options, s->engine_.get(), &s->state_,
                            &s->gateway_settings_, s->authorizer_auth_.get()));
    LogInfo(absl::StrCat("http authz on http://",
                         HostOf(options.http_authz_listen), ":",
                         s->http_authz_->port(), "/authz"));
  }
  s->housekeeping_ = std::thread(&ScopekeeperServer::HousekeepingUntilShutdown,
                                 s.get(), options.usage_flush_interval);
  LogStarted(options, *s->state_.policy(), s->state_.revision(), applied_policy,
             s->address_, s->decisions_serving());
  return s;
}

std::string ScopekeeperServer::RenderMetrics() const {
  const Applier::KeyCounts keys = registry_->CountKeys();
  Metrics::Gauges gauges;
  gauges.revision = state_.revision();
  gauges.cache_entries = state_.cache().size();
  gauges.cache_evictions = state_.cache().evictions();
  gauges.keys_active = keys.active;
  gauges.keys_revoked = keys.revoked;
  for (const v1::Api& api : state_.policy()->policy().apis()) {
    gauges.policy_apis.push_back(api.name());
  }
  for (const RefusalReporter* reporter :
       {authorizer_refusals_.get(), admin_refusals_.get()}) {
    for (int r = 0; r < kAuthRefusals; ++r) {
      const auto reason = static_cast<AuthRefusal>(r);
      gauges.auth_refused.push_back({reporter->service(),
                                     std::string(AuthRefusalName(reason)),
                                     reporter->count(reason)});
    }
  }
  std::string out = metrics_.Render(gauges);
  rpc_metrics_->Render(&out);
  if (replica_ != nullptr) out += replica_->RenderMetrics();
  // Linux only; without /proc the process series are left out.
  absl::StatusOr<ProcessStats> process = ReadProcessStats();
  if (process.ok()) RenderProcessStats(*process, &out);
  return out;
}

void ScopekeeperServer::SetDecisionsServing(absl::string_view holder,
                                            bool serving,
                                            absl::string_view reason) {
  MutexLock lock(&serving_mu_);
  bool stale_changed = false;
  if (holder == kClusterHold && cluster_stale_ == serving) {
    cluster_stale_ = !serving;
    stale_changed = true;
  }
  const bool changed = serving ? state_.holds().Release(holder)
                               : state_.holds().Hold(holder, reason);
  if (stale_changed && !changed) SetAuthorizerHealth();  // "" only
  if (!changed) return;
  if (serving) {
    Log(LogLevel::kInfo, "decisions are served again",
        {{"released_by", holder}});
  } else {
    Log(LogLevel::kWarning,
        "decisions are held: Authorizer calls fail UNAVAILABLE",
        {{"holder", holder}, {"reason", reason}});
  }
  SetAuthorizerHealth();
}

void ScopekeeperServer::SetAuthorizerHealth() {
  // shutting_down_ first: Shutdown() resets server_ after setting it,
  // without serving_mu_.
  if (shutting_down_ || server_ == nullptr) return;
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  health->SetServingStatus(kAuthorizerService, state_.holds().serving());
  health->SetServingStatus("", !cluster_stale_);
}

void ScopekeeperServer::HousekeepingUntilShutdown(
    absl::Duration usage_flush_interval) {
  constexpr absl::Duration kTick = absl::Seconds(1);
  absl::Duration since_flush;
  bool stopping = false;
  while (!stopping) {
    stopping = stop_housekeeping_.WaitForNotificationWithTimeout(kTick);
    change_feed_->Sweep();  // ends Watch streams whose client stopped reading
    since_flush += kTick;
    if (!stopping && since_flush < usage_flush_interval) continue;
    since_flush = absl::ZeroDuration();
    const absl::Status status = usage_->Flush();
    if (!status.ok()) {
      LogWarning(absl::StrCat("could not record key uses: ", status.message()));
    }
  }
}

void ScopekeeperServer::Shutdown(absl::Duration grace) {
  // The HTTP endpoints close their listeners and every connection at once.
  metrics_http_.reset();  // its handler reads the registry and state
  http_authz_.reset();    // its handler uses the engine
  // Health goes with the gRPC server: no more reports from the replica.
  if (replica_ != nullptr) replica_->OnServingChange(nullptr);
  if (server_ != nullptr) {
    {
      // Every service NOT_SERVING (health watchers hear it) and no later
      // hold or release changes that.
      MutexLock lock(&serving_mu_);
      shutting_down_ = true;
      server_->GetHealthCheckService()->Shutdown();
    }
    // Calls waiting for a revision and Watch streams end now; new calls are
    // refused (UNAVAILABLE) while the calls in flight get up to `grace` to
    // finish. Only then is gRPC stopped, at once: its own
    // Shutdown(deadline) would also wait for every idle connection until
    // the deadline.
    state_.Close();
    if (!calls_.Drain(grace)) {
      LogWarning(absl::StrCat(calls_.in_flight(),
                              " calls still in flight after the shutdown "
                              "grace period; cancelling them"));
    }
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
    server_.reset();
  }
  if (housekeeping_.joinable()) {
    stop_housekeeping_.Notify();  // flushes last-use times once more, exits
    housekeeping_.join();
  }
  if (replica_ != nullptr) replica_->Stop();  // stops following etcd
  store_.reset();  // closes RocksDB; every acknowledged write was synced
}

ScopekeeperServer::~ScopekeeperServer() { Shutdown(shutdown_grace_); }

}  // namespace scopekeeper
