// scopekeeper: the server binary. Flags are read here and only here.
//
//   scopekeeper --listen=127.0.0.1:50051 --data_dir=/var/lib/scopekeeper
//       [--admin_token_file=PATH]
//       [--policy_file=examples/policies/rxscale.json]
//       [--tls_cert=… --tls_key=… [--tls_client_ca=… --admin_subjects=…]]
//       [--authorizer_token_file=PATH] [--authorizer_subjects=…]
//       [--metrics_listen=127.0.0.1:9464]
//       [--http_authz_listen=127.0.0.1:8181] [--gateway_*=…]
//       [--log_level=info|warning|error] [--log_format=logfmt|json]
//       [--hold_decisions]
//       [--etcd_endpoints=h1:2379,h2:2379,h3:2379 [--etcd_prefix=…]
//        [--max_staleness=5s] [--etcd_ca=… --etcd_cert=… --etcd_key=…]]
//
// SIGTERM/SIGINT: stop accepting, finish in-flight calls, close the store,
// exit 0. SIGUSR1: release --hold_decisions (serve decisions).
#include <signal.h>
#include <sys/stat.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "base/log.h"
#include "server/auth/caller_auth.h"
#include "server/grpc/library_logs.h"
#include "server/server.h"

ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "host:port to serve gRPC on; port 0 picks a free port and logs it");
ABSL_FLAG(std::string, data_dir, "",
          "directory of the embedded RocksDB store and the generated admin "
          "token (required)");
ABSL_FLAG(std::string, admin_token_file, "",
          "file whose first line is the admin bearer token; default: "
          "<data_dir>/admin_token, generated (mode 0600) on first start");
ABSL_FLAG(std::string, policy_file, "",
          "JSON Policy applied at start when it differs from the stored one");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM certificate chain of the server; with --tls_key enables TLS");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of the server");
ABSL_FLAG(std::string, tls_client_ca, "",
          "PEM CA bundle: require and verify client certificates (mTLS)");
ABSL_FLAG(std::string, admin_subjects, "",
          "With --tls_client_ca: client-certificate subjects, as RFC 2253 "
          "strings separated by ';', that are admins without a token (e.g. "
          "\"CN=ops-admin,O=Example;CN=backup-job,O=Example\")");
ABSL_FLAG(std::string, authorizer_token_file, "",
          "File whose first line is a token every Authorizer caller must "
          "send as `authorization: Bearer <token>`; empty (default): the "
          "data plane is open to anyone who can connect");
ABSL_FLAG(std::string, authorizer_subjects, "",
          "With --tls_client_ca: client-certificate subjects (separated by "
          "';', as for --admin_subjects) that may call "
          "Authorizer without the token; setting it closes the data plane "
          "to everyone else");
ABSL_FLAG(std::string, metrics_listen, "",
          "HOST:PORT to serve Prometheus metrics on (GET /metrics); empty: "
          "off");
ABSL_FLAG(std::string, http_authz_listen, "",
          "HOST:PORT (an IP address) to serve HTTP forward-auth on (GET "
          "/authz, for nginx auth_request, Traefik ForwardAuth, Caddy "
          "forward_auth); port 0 picks one and logs it; empty: off");
ABSL_FLAG(int, http_authz_threads, 4, "threads answering --http_authz_listen");
ABSL_FLAG(int, http_authz_max_connections, 1024,
          "open connections to --http_authz_listen at most (more wait)");
ABSL_FLAG(absl::Duration, http_authz_idle_timeout, absl::Seconds(30),
          "an idle or stalled --http_authz_listen connection is closed "
          "after this");
ABSL_FLAG(std::string, gateway_key_header, "x-api-key",
          "gateway doors (ext_authz Check, --http_authz_listen): header "
          "with the API key when `Authorization: Bearer` has none; empty: "
          "Authorization only");
ABSL_FLAG(std::string, gateway_organization_header, "x-organization-id",
          "gateway doors: header naming the organization; empty: none");
ABSL_FLAG(std::string, gateway_api_header, "x-scopekeeper-api",
          "forward-auth: header with the API chosen by the gateway's "
          "configuration (the gateway must set or clear it); empty: the "
          "policy always selects the API by host and path prefix");
ABSL_FLAG(std::string, gateway_trace_header, "x-request-id",
          "gateway doors: request id adopted as the trace id when it is a "
          "valid id; empty: always generate one");
ABSL_FLAG(bool, gateway_hide_credentials, false,
          "ext_authz Check: remove the header the key came from before the "
          "upstream sees the request");
ABSL_FLAG(double, decision_log_sample_rate, 0,
          "Fraction of decisions to log (0..1), one logfmt line each with "
          "trace_id, route, reason and latency; never the key or the path");
ABSL_FLAG(int, max_receive_message_bytes, 4 << 20,
          "largest request accepted (RESOURCE_EXHAUSTED beyond)");
ABSL_FLAG(absl::Duration, store_retry_interval, absl::Seconds(1),
          "after a store write failed (e.g. the disk is full), writes are "
          "refused with UNAVAILABLE and at most this often one tries to "
          "recover the store (decisions continue meanwhile)");
ABSL_FLAG(int, max_watch_streams, 1000,
          "most Admin.Watch streams open at once; more are refused with "
          "RESOURCE_EXHAUSTED");
ABSL_FLAG(absl::Duration, watch_stall_timeout, absl::Seconds(30),
          "a Watch stream whose client takes no event for this long is ended "
          "with RESOURCE_EXHAUSTED (bounds what a client that does not read "
          "holds)");
ABSL_FLAG(absl::Duration, shutdown_grace, absl::Seconds(5),
          "on SIGTERM/SIGINT, how long calls in flight may take to finish "
          "(new calls are refused at once; idle connections are not waited "
          "for); the process exits within this plus about a second");
ABSL_FLAG(bool, accept_data_loss, false,
          "Start even though acknowledged writes are lost (the store "
          "recovered to a revision below the one it acknowledged: a damaged "
          "or deleted WAL; or db/ is gone from a data dir that held one). "
          "Without it such a start is refused (DATA_LOSS); restoring a "
          "backup is the better way. For one start, never in a flag file");
ABSL_FLAG(scopekeeper::LogLevel, log_level, scopekeeper::LogLevel::kInfo,
          "least severe log lines written: info, warning or error (applies "
          "to gRPC's and protobuf's own lines too)");
ABSL_FLAG(scopekeeper::LogFormat, log_format, scopekeeper::LogFormat::kLogfmt,
          "log line format on stderr: logfmt (key=value) or json (one JSON "
          "object per line, for log shippers)");
ABSL_FLAG(bool, hold_decisions, false,
          "start without serving decisions (after a restore): Authorizer "
          "calls fail UNAVAILABLE and its health is NOT_SERVING while the "
          "Admin service works; SIGUSR1 releases the hold");
ABSL_FLAG(int64_t, key_cache_capacity, 0,
          "most API-key secrets cached in memory; 0 = all (the whole key set "
          "is loaded at start). With a limit, other keys are read from the "
          "store when used and the least recently used are evicted");

ABSL_FLAG(std::string, etcd_endpoints, "",
          "Run as one replica of a cluster: host:port of each etcd member, "
          "separated by ','. Empty (default): a single node on the embedded "
          "RocksDB store in --data_dir");
ABSL_FLAG(std::string, etcd_prefix, "/scopekeeper/",
          "With --etcd_endpoints: every etcd key of this deployment starts "
          "with it (one prefix per deployment)");
ABSL_FLAG(std::string, etcd_ca, "",
          "With --etcd_endpoints: PEM CA bundle that signed the etcd members' "
          "certificates; enables TLS to etcd");
ABSL_FLAG(std::string, etcd_cert, "",
          "PEM client certificate presented to etcd (with --etcd_key and "
          "--etcd_ca)");
ABSL_FLAG(std::string, etcd_key, "", "PEM private key of --etcd_cert");
ABSL_FLAG(std::string, etcd_user, "",
          "etcd user, when etcd has authentication enabled (with "
          "--etcd_password_file)");
ABSL_FLAG(std::string, etcd_password_file, "",
          "File whose first line is the password of --etcd_user");
ABSL_FLAG(absl::Duration, etcd_call_timeout, absl::Seconds(2),
          "Deadline of each etcd call, failover to other members included");
ABSL_FLAG(int, etcd_max_txn_ops, 128,
          "etcd's --max-txn-ops: larger mutations are refused with "
          "INVALID_ARGUMENT before anything is sent");
ABSL_FLAG(int64_t, etcd_max_request_bytes, 1572864,
          "etcd's --max-request-bytes: larger mutations are refused with "
          "INVALID_ARGUMENT before anything is sent");
ABSL_FLAG(absl::Duration, max_staleness, absl::Seconds(5),
          "With --etcd_endpoints: a replica that cannot confirm it is current "
          "with the etcd cluster for longer answers Authorize, "
          "BatchAuthorize and DescribeKey with UNAVAILABLE and reports "
          "NOT_SERVING (fail closed); also the bound on how long a "
          "revocation takes to reach every serving replica");
ABSL_FLAG(absl::Duration, audit_retention, absl::ZeroDuration(),
          "With --etcd_endpoints: audit events older than this are deleted "
          "(checked every 10 minutes); 0 (default) keeps them forever");
ABSL_FLAG(std::string, restore_from, "",
          "With --etcd_endpoints: a directory written by Admin.CreateBackup "
          "on a cluster; imported into the empty --etcd_prefix at start "
          "(refused if the prefix holds state). Start one replica with it, "
          "then drop the flag");

int main(int argc, char** argv) {
  absl::FlagsUsageConfig usage;
  usage.contains_help_flags = [](absl::string_view f) {
    return absl::EndsWith(f, "server/main.cc");
  };
  usage.contains_helpshort_flags = usage.contains_help_flags;
  absl::SetFlagsUsageConfig(usage);
  absl::SetProgramUsageMessage(
      "Scopekeeper: API-key permission decisions over gRPC.");
  absl::ParseCommandLine(argc, argv);
  scopekeeper::SetLogLevel(absl::GetFlag(FLAGS_log_level));
  scopekeeper::SetLogFormat(absl::GetFlag(FLAGS_log_format));
  scopekeeper::RouteLibraryLogs();
  // Everything the server writes (database, backups, generated token) is
  // for its own user only. RocksDB has no file-mode option, and a backup
  // hard-links the database's files, so the umask is what keeps them 0600.
  umask(077);
  // Debian's Abseil is built with absl::Mutex deadlock detection on (a debug
  // aid: a lock-order graph updated on every acquisition, ~3 % of the
  // server's CPU under load in gRPC's own mutexes). Off, as in release
  // builds of Abseil.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  // Block the stop signals and SIGUSR1 in every thread (gRPC's included);
  // the main thread waits for them with sigwait().
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGUSR1);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  scopekeeper::ServerOptions options;
  options.listen = absl::GetFlag(FLAGS_listen);
  options.data_dir = absl::GetFlag(FLAGS_data_dir);
  options.admin_token_file = absl::GetFlag(FLAGS_admin_token_file);
  options.policy_file = absl::GetFlag(FLAGS_policy_file);
  options.tls_cert_file = absl::GetFlag(FLAGS_tls_cert);
  options.tls_key_file = absl::GetFlag(FLAGS_tls_key);
  options.tls_client_ca_file = absl::GetFlag(FLAGS_tls_client_ca);
  options.admin_subjects =
      scopekeeper::ParseSubjectList(absl::GetFlag(FLAGS_admin_subjects));
  options.authorizer_token_file = absl::GetFlag(FLAGS_authorizer_token_file);
  options.authorizer_subjects =
      scopekeeper::ParseSubjectList(absl::GetFlag(FLAGS_authorizer_subjects));
  options.metrics_listen = absl::GetFlag(FLAGS_metrics_listen);
  options.decision_log_sample_rate =
      absl::GetFlag(FLAGS_decision_log_sample_rate);
  options.max_receive_message_bytes =
      absl::GetFlag(FLAGS_max_receive_message_bytes);
  options.key_cache_capacity = absl::GetFlag(FLAGS_key_cache_capacity);
  options.store_retry_interval = absl::GetFlag(FLAGS_store_retry_interval);
  options.max_watch_streams = absl::GetFlag(FLAGS_max_watch_streams);
  options.shutdown_grace = absl::GetFlag(FLAGS_shutdown_grace);
  options.watch_stall_timeout = absl::GetFlag(FLAGS_watch_stall_timeout);
  options.http_authz_listen = absl::GetFlag(FLAGS_http_authz_listen);
  options.http_authz.threads = absl::GetFlag(FLAGS_http_authz_threads);
  options.http_authz.max_connections =
      absl::GetFlag(FLAGS_http_authz_max_connections);
  options.http_authz.idle_timeout =
      absl::GetFlag(FLAGS_http_authz_idle_timeout);
  options.gateway.key_header =
      absl::AsciiStrToLower(absl::GetFlag(FLAGS_gateway_key_header));
  options.gateway.organization_header =
      absl::AsciiStrToLower(absl::GetFlag(FLAGS_gateway_organization_header));
  options.gateway.api_header =
      absl::AsciiStrToLower(absl::GetFlag(FLAGS_gateway_api_header));
  options.gateway.trace_header =
      absl::AsciiStrToLower(absl::GetFlag(FLAGS_gateway_trace_header));
  options.gateway.hide_credentials =
      absl::GetFlag(FLAGS_gateway_hide_credentials);
  options.accept_data_loss = absl::GetFlag(FLAGS_accept_data_loss);
  options.hold_decisions = absl::GetFlag(FLAGS_hold_decisions);
  for (absl::string_view endpoint : absl::StrSplit(
           absl::GetFlag(FLAGS_etcd_endpoints), ',', absl::SkipWhitespace())) {
    options.cluster.etcd_endpoints.emplace_back(
        absl::StripAsciiWhitespace(endpoint));
  }
  options.cluster.etcd_prefix = absl::GetFlag(FLAGS_etcd_prefix);
  options.cluster.etcd_ca_file = absl::GetFlag(FLAGS_etcd_ca);
  options.cluster.etcd_cert_file = absl::GetFlag(FLAGS_etcd_cert);
  options.cluster.etcd_key_file = absl::GetFlag(FLAGS_etcd_key);
  options.cluster.etcd_user = absl::GetFlag(FLAGS_etcd_user);
  options.cluster.etcd_password_file = absl::GetFlag(FLAGS_etcd_password_file);
  options.cluster.etcd_call_timeout = absl::GetFlag(FLAGS_etcd_call_timeout);
  options.cluster.etcd_max_txn_ops = absl::GetFlag(FLAGS_etcd_max_txn_ops);
  options.cluster.etcd_max_request_bytes =
      absl::GetFlag(FLAGS_etcd_max_request_bytes);
  options.cluster.max_staleness = absl::GetFlag(FLAGS_max_staleness);
  options.cluster.audit_retention = absl::GetFlag(FLAGS_audit_retention);
  options.cluster.restore_from = absl::GetFlag(FLAGS_restore_from);

  absl::StatusOr<std::unique_ptr<scopekeeper::ScopekeeperServer>> server =
      scopekeeper::ScopekeeperServer::Start(options);
  if (!server.ok()) {
    scopekeeper::LogError(
        absl::StrCat("cannot start: ", server.status().ToString()));
    return EXIT_FAILURE;
  }
  int signal = 0;
  while (sigwait(&signals, &signal) == 0 && signal == SIGUSR1) {
    scopekeeper::LogInfo("received SIGUSR1: releasing --hold_decisions");
    (*server)->SetDecisionsServing(scopekeeper::ScopekeeperServer::kStartHold,
                                   /*serving=*/true);
  }
  scopekeeper::LogInfo(
      absl::StrCat("received ", strsignal(signal), ", shutting down"));
  (*server)->Shutdown(options.shutdown_grace);
  scopekeeper::LogInfo("stopped");
  return EXIT_SUCCESS;
}
