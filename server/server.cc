#include "server/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/server_builder.h>
#include <netdb.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "base/redact.h"
#include "base/status_macros.h"
#include "server/policy/policy.h"
#include "storage/rocksdb_store.h"

namespace scopekeeper {
namespace {

absl::Status EnsureDirectory(const std::string& path) {
  if (path.empty()) {
    return absl::InvalidArgumentError("--data_dir is required");
  }
  if (mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
    return absl::FailedPreconditionError(absl::StrCat(
        "cannot create data dir ", path, ": ", std::strerror(errno)));
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

absl::StatusOr<std::string> ReadFile(absl::string_view flag,
                                     const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::FailedPreconditionError(
        absl::StrCat(flag, ": cannot read ", path, ": ", std::strerror(errno)));
  }
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

// ListenFailure() says why gRPC could not listen on `listen`: it logs the
// cause but reports only failure. Binds a socket to find out.
std::string ListenFailure(const std::string& listen) {
  const size_t colon = listen.rfind(':');
  int port = -1;
  std::string host = HostOf(listen);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return "expected HOST:PORT";
  }
  struct addrinfo hints = {};
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_NUMERICSERV;
  struct addrinfo* found = nullptr;
  const std::string service = absl::StrCat(port);
  if (getaddrinfo(host.c_str(), service.c_str(), &hints, &found) != 0 ||
      found == nullptr) {
    return absl::StrCat("cannot resolve host ", Quote(host));
  }
  std::string why = "address in use or invalid";
  const int fd = socket(found->ai_family, SOCK_STREAM, 0);
  if (fd >= 0) {
    const int yes = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    if (bind(fd, found->ai_addr, found->ai_addrlen) != 0) {
      why = errno == EADDRINUSE
                ? "address already in use (is another server running?)"
                : std::strerror(errno);
    }
    close(fd);
  }
  freeaddrinfo(found);
  return why;
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
  grpc::SslServerCredentialsOptions ssl;
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  SK_ASSIGN_OR_RETURN(pair.cert_chain,
                      ReadFile("--tls_cert", options.tls_cert_file));
  SK_ASSIGN_OR_RETURN(pair.private_key,
                      ReadFile("--tls_key", options.tls_key_file));
  ssl.pem_key_cert_pairs.push_back(std::move(pair));
  if (!options.tls_client_ca_file.empty()) {
    SK_ASSIGN_OR_RETURN(
        ssl.pem_root_certs,
        ReadFile("--tls_client_ca", options.tls_client_ca_file));
    ssl.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::unique_ptr<ScopekeeperServer>> ScopekeeperServer::Start(
    const ServerOptions& options) {
  if (options.key_cache_capacity < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("key_cache_capacity: must be 0 (unlimited) or positive, "
                     "is ",
                     options.key_cache_capacity));
  }
  std::unique_ptr<ScopekeeperServer> s(
      new ScopekeeperServer(options.key_cache_capacity));
  SK_ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> credentials,
                      Credentials(options));
  SK_RETURN_IF_ERROR(EnsureDirectory(options.data_dir));

  const bool cluster = !options.cluster.etcd_endpoints.empty();
  if (cluster) {
    SK_ASSIGN_OR_RETURN(
        s->replica_, Replica::Open(options.cluster, &s->state_, options.clock,
                                   &s->metrics_));
    s->store_in_use_ = s->replica_->store();
  } else {
    storage::RocksDbStore::Options store_options;
    store_options.path = absl::StrCat(options.data_dir, "/db");
    SK_ASSIGN_OR_RETURN(s->store_, storage::RocksDbStore::Open(store_options));
    s->store_in_use_ = s->store_.get();
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
  if (!options.policy_file.empty()) {
    SK_ASSIGN_OR_RETURN(v1::Policy policy, ReadPolicyFile(options.policy_file));
    if (!s->registry_->PolicyEquals(policy)) {
      absl::StatusOr<uint64_t> revision =
          s->registry_->PutPolicy(policy, "policy_file");
      if (!revision.ok()) {
        return absl::Status(revision.status().code(),
                            absl::StrCat("--policy_file ", options.policy_file,
                                         ": ", revision.status().message()));
      }
      LogInfo(absl::StrCat("applied policy ", options.policy_file,
                           " at revision ", *revision));
    }
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

  SK_ASSIGN_OR_RETURN(
      AdminToken token,
      LoadOrCreateAdminToken(options.admin_token_file, options.data_dir));
  s->admin_token_path_ = token.path;
  if (token.created) {
    LogInfo(absl::StrCat("generated admin token in ", token.path));
  }
  s->auth_ = std::make_unique<CallerAuthenticator>("admin", token.token,
                                                   options.admin_subjects);

  if (!options.authorizer_token_file.empty() ||
      !options.authorizer_subjects.empty()) {
    std::string caller_token;
    if (!options.authorizer_token_file.empty()) {
      SK_ASSIGN_OR_RETURN(caller_token,
                          ReadTokenFile("--authorizer_token_file",
                                        options.authorizer_token_file));
    }
    s->authorizer_auth_ = std::make_unique<CallerAuthenticator>(
        "authorizer", caller_token, options.authorizer_subjects);
  }
  s->authorizer_service_ = std::make_unique<AuthorizerService>(
      s->engine_.get(), s->authorizer_auth_.get());
  s->admin_service_ =
      std::make_unique<AdminService>(s->registry_.get(), s->auth_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
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
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->port_ == 0) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ",
                                               options.listen, ": ",
                                               ListenFailure(options.listen)));
  }
  s->address_ = absl::StrCat(HostOf(options.listen), ":", s->port_);
  if (cluster) {
    // A replica that cannot confirm it is current is NOT_SERVING.
    grpc::HealthCheckServiceInterface* health =
        s->server_->GetHealthCheckService();
    s->replica_->OnServingChange([health](bool serving) {
      health->SetServingStatus(serving);
      health->SetServingStatus(v1::Authorizer::service_full_name(), serving);
    });
  }
  if (!options.metrics_listen.empty()) {
    ScopekeeperServer* self = s.get();
    SK_ASSIGN_OR_RETURN(
        s->metrics_http_,
        MetricsHttpServer::Start(options.metrics_listen, [self] {
          const Applier::KeyCounts keys = self->registry_->CountKeys();
          Metrics::Gauges gauges;
          gauges.revision = self->state_.revision();
          gauges.cache_entries = self->state_.cache().size();
          gauges.cache_evictions = self->state_.cache().evictions();
          gauges.keys_active = keys.active;
          gauges.keys_revoked = keys.revoked;
          std::string text = self->metrics_.Render(gauges);
          if (self->replica_ != nullptr) {
            text += self->replica_->RenderMetrics();
          }
          return text;
        }));
    LogInfo(absl::StrCat("metrics on http://", HostOf(options.metrics_listen),
                         ":", s->metrics_http_->port(), "/metrics"));
  }
  s->usage_flusher_ = std::thread(&ScopekeeperServer::FlushUsageUntilShutdown,
                                  s.get(), options.usage_flush_interval);
  LogInfo(absl::StrCat("listening on ", s->address_));
  return s;
}

void ScopekeeperServer::FlushUsageUntilShutdown(absl::Duration interval) {
  bool stopping = false;
  while (!stopping) {
    stopping = stop_usage_flusher_.WaitForNotificationWithTimeout(interval);
    const absl::Status status = usage_->Flush();
    if (!status.ok()) {
      LogWarning(absl::StrCat("could not record key uses: ", status.message()));
    }
  }
}

void ScopekeeperServer::Shutdown(absl::Duration grace) {
  metrics_http_.reset();  // its handler reads the registry and state
  // The health service goes with the gRPC server.
  if (replica_ != nullptr) replica_->OnServingChange(nullptr);
  if (server_ != nullptr) {
    state_.Close();  // ends Watch streams now rather than at the deadline
    server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
    server_->Wait();
    server_.reset();
  }
  if (usage_flusher_.joinable()) {
    stop_usage_flusher_.Notify();  // flushes once more, then exits
    usage_flusher_.join();
  }
  if (replica_ != nullptr) replica_->Stop();  // stops following etcd
  store_.reset();  // closes RocksDB; every acknowledged write was synced
}

ScopekeeperServer::~ScopekeeperServer() { Shutdown(); }

}  // namespace scopekeeper
