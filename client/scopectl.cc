#include "client/scopectl.h"

#include <grpcpp/security/credentials.h>

#include <CLI/CLI.hpp>
#include <cstdint>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "client/scopectl_format.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"
#include "base/redact.h"

namespace scopekeeper {
namespace {

using ::google::protobuf::util::TimeUtil;

// Everything the command line can say; each command reads its own fields.
struct Flags {
  // Global.
  std::string addr;
  std::string admin_token_file;
  std::string authorizer_token_file;
  std::string tls_ca;
  std::string tls_cert;
  std::string tls_key;
  bool json = false;
  double timeout_seconds = 10;
  // Per command.
  std::string file;
  std::string org;
  std::string name;
  std::string environment;
  std::string installation_id;
  std::string expire_time;
  std::string key_id;
  std::string reason;
  std::string grace_period;
  std::string app_id;
  std::string slug;
  std::string live_version_id;
  std::string key;
  std::string key_file;
  std::string api;
  std::string method;
  std::string path;
  std::string trace_id;
  std::string max_duration;
  std::vector<std::string> apis;
  std::vector<std::string> scopes;
  std::vector<std::string> bundles;
  bool include_revoked = false;
  uint64_t min_revision = 0;
  uint64_t after_revision = 0;
  uint64_t from_revision = 0;
  int page_size = 0;
  int64_t max_events = 0;
};

// FirstLineOf() is the first line of the file at `path`, surrounding
// whitespace removed. Errors name the path and `what`, never the content.
absl::StatusOr<std::string> FirstLineOf(const std::string& path,
                                        absl::string_view what) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read the ", what, " from ", path));
  }
  std::string line;
  std::getline(in, line);
  std::string value(absl::StripAsciiWhitespace(line));
  if (value.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the first line of ", path, " (", what, ") is empty"));
  }
  return value;
}

// Contents() is the whole file at `path`; errors name the path and `what`.
absl::StatusOr<std::string> Contents(const std::string& path,
                                     absl::string_view what) {
  std::ifstream in(path);
  std::stringstream text;
  if (!in || !(text << in.rdbuf())) {
    return absl::NotFoundError(
        absl::StrCat("cannot read the ", what, " from ", path));
  }
  return text.str();
}

// TlsCredentials() are the channel credentials the --tls_* flags ask for:
// null (plaintext) when none is set.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> TlsCredentials(
    const Flags& flags) {
  if (flags.tls_ca.empty() && flags.tls_cert.empty() && flags.tls_key.empty()) {
    return nullptr;
  }
  if (flags.tls_ca.empty() || flags.tls_cert.empty() != flags.tls_key.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs --tls_ca, and --tls_cert with --tls_key for a client "
        "certificate");
  }
  grpc::SslCredentialsOptions ssl;
  absl::StatusOr<std::string> pem = Contents(flags.tls_ca, "CA bundle");
  if (!pem.ok()) return pem.status();
  ssl.pem_root_certs = *std::move(pem);
  if (!flags.tls_cert.empty()) {
    pem = Contents(flags.tls_cert, "client certificate");
    if (!pem.ok()) return pem.status();
    ssl.pem_cert_chain = *std::move(pem);
    pem = Contents(flags.tls_key, "client key");
    if (!pem.ok()) return pem.status();
    ssl.pem_private_key = *std::move(pem);
  }
  return grpc::SslCredentials(ssl);
}

// Connect() opens the client for a command: with the admin token when
// `admin` (every command but `check` and `describe`), with the authorizer
// token when one is given, over TLS when asked. Errors (a token or PEM file
// missing or unreadable) are usage errors.
absl::StatusOr<std::unique_ptr<Client>> Connect(const Flags& flags,
                                                const ScopectlEnvironment& env,
                                                bool admin) {
  ConnectionOptions options;
  options.address = flags.addr;
  // With a client certificate the admin identity may be the certificate's
  // (server --admin_subjects), so the token is optional then.
  if (admin && flags.admin_token_file.empty() && flags.tls_cert.empty()) {
    return absl::FailedPreconditionError(
        "no admin token: pass --admin_token_file or set "
        "SCOPEKEEPER_ADMIN_TOKEN_FILE (or use an admin certificate: "
        "--tls_cert, --tls_key)");
  }
  if (admin && !flags.admin_token_file.empty()) {
    absl::StatusOr<std::string> token =
        FirstLineOf(flags.admin_token_file, "admin token");
    if (!token.ok()) return token.status();
    options.admin_token = *std::move(token);
  }
  if (!flags.authorizer_token_file.empty()) {
    absl::StatusOr<std::string> token =
        FirstLineOf(flags.authorizer_token_file, "authorizer token");
    if (!token.ok()) return token.status();
    options.authorizer_token = *std::move(token);
  }
  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
      TlsCredentials(flags);
  if (!credentials.ok()) return credentials.status();
  options.credentials = *std::move(credentials);
  ClientOptions client_options;
  client_options.timeout = absl::Seconds(flags.timeout_seconds);
  auto connect = env.connect ? env.connect : MakeGrpcConnection;
  return std::make_unique<Client>(connect(options), client_options);
}

// One run of a command: the parsed flags, the client and the streams.
class Session {
 public:
  Session(const Flags& flags, Client& client, std::string command,
          std::ostream& out, std::ostream& err)
      : flags_(flags),
        client_(client),
        command_(std::move(command)),
        out_(out),
        err_(err) {}

  const Flags& flags() const { return flags_; }
  Client& client() { return client_; }
  std::ostream& out() { return out_; }
  bool json() const { return flags_.json; }

  // Usage() reports a problem with the command line or its files.
  int Usage(const absl::Status& status) {
    err_ << "scopectl: " << command_ << ": " << status.message() << "\n";
    return kExitUsage;
  }

  // Failed() reports a failed call: the gRPC code name and the server's
  // message, on stderr.
  int Failed(const absl::Status& status, absl::string_view note = "") {
    err_ << "scopectl: " << command_ << ": "
         << absl::StatusCodeToString(status.code()) << ": " << status.message()
         << note << "\n";
    return kExitRpcError;
  }

  // Print() writes `message` as JSON with --json, else with `human`.
  template <typename Message>
  int Print(const Message& message,
            void (*human)(const Message&, std::ostream&)) {
    if (json()) {
      out_ << ToJson(message, /*multiline=*/true) << "\n";
    } else {
      human(message, out_);
    }
    return kExitOk;
  }

  // PrintOrFail() prints the response or reports the error.
  template <typename Message>
  int PrintOrFail(const absl::StatusOr<Message>& response,
                  void (*human)(const Message&, std::ostream&)) {
    if (!response.ok()) return Failed(response.status());
    return Print(*response, human);
  }

 private:
  const Flags& flags_;
  Client& client_;
  const std::string command_;
  std::ostream& out_;
  std::ostream& err_;
};

// Argument conversions; errors name the flag and the value.
absl::StatusOr<google::protobuf::Timestamp> ParseTimestamp(
    absl::string_view flag, const std::string& value) {
  google::protobuf::Timestamp t;
  if (!TimeUtil::FromString(value, &t)) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, ": not an RFC 3339 time (e.g. 2030-01-31T00:00:00Z): ", value));
  }
  return t;
}

absl::StatusOr<absl::Duration> ParseDuration(absl::string_view flag,
                                             const std::string& value) {
  absl::Duration d;
  if (!absl::ParseDuration(value, &d) || d < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": not a duration (e.g. 90s, 15m, 1h30m): ", value));
  }
  return d;
}

// FillExpireTime() sets the request's expire_time from --expire_time, if
// given; INVALID_ARGUMENT naming the flag when it is not an RFC 3339 time.
template <typename Request>
absl::Status FillExpireTime(const Flags& f, Request* request) {
  if (f.expire_time.empty()) return absl::OkStatus();
  absl::StatusOr<google::protobuf::Timestamp> expire =
      ParseTimestamp("--expire_time", f.expire_time);
  if (!expire.ok()) return expire.status();
  *request->mutable_expire_time() = *expire;
  return absl::OkStatus();
}

absl::Status RequireScopesOrBundles(const Flags& f) {
  if (f.scopes.empty() && f.bundles.empty()) {
    return absl::InvalidArgumentError("give at least one --scope or --bundle");
  }
  return absl::OkStatus();
}

// The commands. Each returns the exit status.

int PolicyApply(Session& s) {
  const Flags& f = s.flags();
  std::ifstream in(f.file);
  if (!in) {
    return s.Usage(absl::NotFoundError(absl::StrCat("cannot read ", f.file)));
  }
  std::stringstream text;
  text << in.rdbuf();
  v1::PutPolicyRequest request;
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      text.str(), request.mutable_policy());
  if (!parsed.ok()) {
    return s.Usage(absl::InvalidArgumentError(absl::StrCat(
        f.file, " is not a JSON Policy: ", parsed.message().as_string())));
  }
  absl::StatusOr<v1::PutPolicyResponse> response =
      s.client().PutPolicy(request);
  if (!response.ok()) return s.Failed(response.status());
  if (s.json()) {
    s.out() << ToJson(*response, true) << "\n";
  } else {
    const v1::Policy& p = request.policy();
    s.out() << "policy applied at revision " << response->revision() << ": "
            << p.scopes_size() << " scopes, " << p.apis_size() << " APIs, "
            << p.bundles_size() << " bundles\n";
  }
  return kExitOk;
}

int PolicyGet(Session& s) {
  return s.PrintOrFail(s.client().GetPolicy(), PrintPolicy);
}

// PrintNewSecret() prints a created or rotated key and its secret, once.
int PrintNewSecret(Session& s,
                   const absl::StatusOr<v1::CreateKeyResponse>& response) {
  if (!response.ok()) return s.Failed(response.status());
  if (s.json()) {
    s.out() << ToJson(*response, true) << "\n";
    return kExitOk;
  }
  PrintKey(response->key(), s.out());
  s.out() << "\nsecret: " << response->secret()
          << "\n(shown once: store it now, it cannot be retrieved again)\n";
  return kExitOk;
}

int KeyCreate(Session& s) {
  const Flags& f = s.flags();
  v1::CreateKeyRequest request;
  request.set_organization_id(f.org);
  request.set_name(f.name);
  request.set_environment(f.environment);
  request.set_installation_id(f.installation_id);
  for (const auto& api : f.apis) request.add_apis(api);
  for (const auto& scope : f.scopes) request.add_scopes(scope);
  for (const auto& bundle : f.bundles) request.add_bundles(bundle);
  if (absl::Status ok = FillExpireTime(f, &request); !ok.ok()) {
    return s.Usage(ok);
  }
  return PrintNewSecret(s, s.client().CreateKey(request));
}

int KeyGet(Session& s) {
  v1::GetKeyRequest request;
  request.set_key_id(s.flags().key_id);
  return s.PrintOrFail(s.client().GetKey(request), PrintKey);
}

int KeyList(Session& s) {
  const Flags& f = s.flags();
  v1::ListKeysRequest request;
  request.set_organization_id(f.org);
  request.set_include_revoked(f.include_revoked);
  v1::ListKeysResponse all;  // every page, for --json
  do {
    absl::StatusOr<v1::ListKeysResponse> page = s.client().ListKeys(request);
    if (!page.ok()) return s.Failed(page.status());
    all.mutable_keys()->MergeFrom(page->keys());
    if (page->next_page_token() == request.page_token()) break;  // no loop
    request.set_page_token(page->next_page_token());
  } while (!request.page_token().empty());
  if (s.json()) {
    s.out() << ToJson(all, true) << "\n";
  } else {
    PrintKeyTable({all.keys().begin(), all.keys().end()}, s.out());
  }
  return kExitOk;
}

// FillScopeChange() fills a GrantScopes or RevokeScopes request from the
// flags; INVALID_ARGUMENT when they name no scope or bundle.
template <typename Request>
absl::Status FillScopeChange(const Flags& f, Request* request) {
  if (absl::Status ok = RequireScopesOrBundles(f); !ok.ok()) return ok;
  request->set_key_id(f.key_id);
  for (const auto& scope : f.scopes) request->add_scopes(scope);
  for (const auto& bundle : f.bundles) request->add_bundles(bundle);
  return absl::OkStatus();
}

int KeyGrant(Session& s) {
  const Flags& f = s.flags();
  v1::GrantScopesRequest request;
  if (absl::Status ok = FillScopeChange(f, &request); !ok.ok()) {
    return s.Usage(ok);
  }
  if (absl::Status ok = FillExpireTime(f, &request); !ok.ok()) {
    return s.Usage(ok);
  }
  return s.PrintOrFail(s.client().GrantScopes(request), PrintKey);
}

int KeyRevokeScopes(Session& s) {
  v1::RevokeScopesRequest request;
  if (absl::Status ok = FillScopeChange(s.flags(), &request); !ok.ok()) {
    return s.Usage(ok);
  }
  return s.PrintOrFail(s.client().RevokeScopes(request), PrintKey);
}

int KeyRevoke(Session& s) {
  v1::RevokeKeyRequest request;
  request.set_key_id(s.flags().key_id);
  request.set_reason(s.flags().reason);
  return s.PrintOrFail(s.client().RevokeKey(request), PrintKey);
}

int KeyRotate(Session& s) {
  const Flags& f = s.flags();
  v1::RotateKeyRequest request;
  request.set_key_id(f.key_id);
  if (!f.grace_period.empty()) {
    absl::StatusOr<absl::Duration> grace =
        ParseDuration("--grace_period", f.grace_period);
    if (!grace.ok()) return s.Usage(grace.status());
    *request.mutable_grace_period() =
        TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(*grace));
  }
  return PrintNewSecret(s, s.client().RotateKey(request));
}

int AppPut(Session& s) {
  const Flags& f = s.flags();
  v1::PutAppRequest request;
  v1::App* app = request.mutable_app();
  app->set_app_id(f.app_id);
  app->set_slug(f.slug);
  app->set_live_version_id(f.live_version_id);
  for (const auto& scope : f.scopes) app->add_requested_scopes(scope);
  return s.PrintOrFail(s.client().PutApp(request), PrintApp);
}

int InstallApprove(Session& s) {
  const Flags& f = s.flags();
  v1::ApproveInstallationRequest request;
  request.set_organization_id(f.org);
  request.set_app_id(f.app_id);
  for (const auto& scope : f.scopes) request.add_approved_scopes(scope);
  return s.PrintOrFail(s.client().ApproveInstallation(request),
                       PrintInstallation);
}

// ApiKey() is the API key secret from --key or --key_file.
absl::StatusOr<std::string> ApiKey(const Flags& f) {
  if (f.key.empty() == f.key_file.empty()) {
    return absl::InvalidArgumentError(
        "give the API key with exactly one of --key, --key_file");
  }
  if (f.key.empty()) return FirstLineOf(f.key_file, "API key");
  return f.key;
}

int Check(Session& s) {
  const Flags& f = s.flags();
  absl::StatusOr<std::string> key = ApiKey(f);
  if (!key.ok()) return s.Usage(key.status());
  v1::AuthorizeRequest request;
  request.set_api_key(*std::move(key));
  request.set_organization_id(f.org);
  request.set_min_revision(f.min_revision);
  request.set_trace_id(f.trace_id);
  v1::HttpRequestTarget* http = request.mutable_http();
  http->set_api(f.api);
  http->set_method(f.method);
  http->set_path(f.path);
  const Decision decision = s.client().Authorize(request);
  if (!decision.status.ok()) {
    return s.Failed(decision.status, " (no decision: treat as denied)");
  }
  s.Print(decision.response, PrintDecision);
  return decision.allowed ? kExitOk : kExitDenied;
}

int Describe(Session& s) {
  const Flags& f = s.flags();
  absl::StatusOr<std::string> key = ApiKey(f);
  if (!key.ok()) return s.Usage(key.status());
  v1::DescribeKeyRequest request;
  request.set_api_key(*std::move(key));
  request.set_organization_id(f.org);
  return s.PrintOrFail(s.client().DescribeKey(request), PrintDescribedKey);
}

int Audit(Session& s) {
  const Flags& f = s.flags();
  v1::ListAuditEventsRequest request;
  request.set_key_id(f.key_id);
  request.set_organization_id(f.org);
  request.set_after_revision(f.after_revision);
  request.set_page_size(f.page_size);
  absl::StatusOr<v1::ListAuditEventsResponse> response =
      s.client().ListAuditEvents(request);
  if (!response.ok()) return s.Failed(response.status());
  if (s.json()) {
    s.out() << ToJson(*response, true) << "\n";
  } else {
    PrintAuditEvents({response->events().begin(), response->events().end()},
                     s.out());
  }
  return kExitOk;
}

int Watch(Session& s) {
  const Flags& f = s.flags();
  if (f.max_events < 0) {
    return s.Usage(absl::InvalidArgumentError("--max_events must be >= 0"));
  }
  const bool bounded_in_time = !f.max_duration.empty();
  absl::Time deadline = absl::InfiniteFuture();
  if (bounded_in_time) {
    absl::StatusOr<absl::Duration> duration =
        ParseDuration("--max_duration", f.max_duration);
    if (!duration.ok()) return s.Usage(duration.status());
    deadline = absl::Now() + *duration;
  }
  v1::WatchRequest request;
  request.set_from_revision(f.from_revision);
  int64_t seen = 0;
  const absl::Status status =
      s.client().Watch(request, deadline, [&](const v1::WatchEvent& event) {
        if (s.json()) {
          s.out() << ToJson(event, /*multiline=*/false) << "\n";
        } else {
          PrintWatchEvent(event, s.out());
        }
        s.out().flush();  // a reader of the pipe sees each event at once
        ++seen;
        return f.max_events == 0 || seen < f.max_events;
      });
  // --max_duration running out is the normal end of a bounded watch.
  if (status.ok() || (bounded_in_time && absl::IsDeadlineExceeded(status))) {
    return kExitOk;
  }
  return s.Failed(status);
}

// Adds a repeatable flag that also takes comma-separated lists.
CLI::Option* AddList(CLI::App* app, const std::string& name,
                     std::vector<std::string>* into, const std::string& help) {
  return app->add_option(name, *into, help)
      ->delimiter(',')
      ->allow_extra_args(false)
      ->type_name("NAME");
}

// MissingCommand() explains a RequiredError for a missing or misspelled
// subcommand (`scopectl key frob`: unknown command "frob" for "key"; one
// of: create, get, ...) and returns true; false for other errors.
bool MissingCommand(const CLI::App& app, const CLI::ParseError& error,
                    std::ostream& err) {
  if (dynamic_cast<const CLI::RequiredError*>(&error) == nullptr) return false;
  const CLI::App* where = &app;
  while (!where->get_subcommands().empty()) {
    where = where->get_subcommands().front();
  }
  const std::vector<const CLI::App*> choices =
      where->get_subcommands([](const CLI::App*) { return true; });
  if (choices.empty()) return false;  // a leaf: its own flags are missing
  std::vector<std::string> names;
  for (const CLI::App* choice : choices) names.push_back(choice->get_name());
  const std::vector<std::string> left = app.remaining(/*recurse=*/true);
  if (!left.empty()) {
    err << "unknown command \"" << left.front() << "\"";
  } else {
    err << "a command is required";
  }
  if (where != &app) err << " for \"" << where->get_name() << "\"";
  err << "; one of: " << absl::StrJoin(names, ", ")
      << "\nRun with --help for more information.\n";
  return true;
}

constexpr char kFooter[] = R"(
Environment:
  SCOPEKEEPER_ADDR              default of --addr
  SCOPEKEEPER_ADMIN_TOKEN_FILE  default of --admin_token_file

Exit status:
  0  success (check: allowed)
  1  check: denied
  2  usage error: bad flags or arguments, unreadable file, invalid JSON
  3  the call failed (gRPC code and message on stderr; check: no decision,
     treat as denied)

`key create` and `key rotate` print the new secret once; store it then.
Run `scopectl --help-all` for every command's flags.)";

}  // namespace

int RunScopectl(const std::vector<std::string>& args,
                const ScopectlEnvironment& env, std::ostream& out,
                std::ostream& err) {
  Flags f;
  f.addr = env.addr.empty() ? kDefaultAddress : env.addr;
  f.admin_token_file = env.admin_token_file;

  CLI::App app{"Command line for Scopekeeper, the API-key permission service.",
               "scopectl"};
  app.set_help_all_flag("--help-all", "Print help for every command");
  app.fallthrough();  // global flags may follow the command
  app.require_subcommand(1);
  app.add_option("--addr", f.addr, "Server HOST:PORT")->capture_default_str();
  app.add_option("--admin_token_file", f.admin_token_file,
                 "File whose first line is the admin bearer token")
      ->type_name("PATH");
  app.add_option("--authorizer_token_file", f.authorizer_token_file,
                 "File whose first line is the data-plane bearer token (for "
                 "servers started with --authorizer_token_file)")
      ->type_name("PATH");
  app.add_option("--tls_ca", f.tls_ca,
                 "PEM CA bundle to verify the server with; enables TLS")
      ->type_name("PATH");
  app.add_option("--tls_cert", f.tls_cert,
                 "PEM client certificate chain, for mTLS (with --tls_key)")
      ->type_name("PATH");
  app.add_option("--tls_key", f.tls_key, "PEM client private key, for mTLS")
      ->type_name("PATH");
  app.add_flag("--json", f.json, "Print protobuf JSON instead of tables");
  app.add_option("--timeout", f.timeout_seconds, "Deadline of each call")
      ->check(
          [](const std::string& value) -> std::string {
            double seconds = 0;
            if (absl::SimpleAtod(value, &seconds) && seconds > 0) return "";
            return "must be a positive number of seconds, not " + value;
          },
          "POSITIVE")
      ->type_name("SECONDS")
      ->capture_default_str();

  // Leaf commands and what runs them.
  struct Command {
    CLI::App* app;
    int (*run)(Session&);
    bool admin;  // needs the admin token
  };
  std::vector<Command> commands;
  auto leaf = [&](CLI::App* parent, const std::string& name,
                  const std::string& help, int (*run)(Session&),
                  bool admin = true) {
    CLI::App* cmd = parent->add_subcommand(name, help);
    commands.push_back({cmd, run, admin});
    return cmd;
  };
  auto group = [&](const std::string& name, const std::string& help) {
    CLI::App* g = app.add_subcommand(name, help);
    g->require_subcommand(1);
    return g;
  };
  auto key_id = [&](CLI::App* cmd) {
    cmd->add_option("KEY_ID", f.key_id, "The key's public id")->required();
  };

  CLI::App* policy = group("policy", "Show or replace the policy");
  leaf(policy, "apply", "Replace the whole policy with a JSON Policy file",
       PolicyApply)
      ->add_option("FILE", f.file, "Protobuf-JSON Policy")
      ->required();
  leaf(policy, "get", "Show the policy", PolicyGet);

  CLI::App* key = group("key", "Create, inspect and change API keys");
  CLI::App* cmd =
      leaf(key, "create", "Create a key; prints its secret once", KeyCreate);
  cmd->add_option("--org", f.org, "Organization id")->required();
  AddList(cmd, "--api", &f.apis,
          "API the key is valid for (the first one's key_prefix prefixes "
          "the secret)");
  AddList(cmd, "--scope", &f.scopes, "Scope to grant");
  AddList(cmd, "--bundle", &f.bundles, "Bundle to grant");
  cmd->add_option("--name", f.name, "Human-readable name");
  cmd->add_option("--environment", f.environment, "e.g. live, test");
  cmd->add_option("--installation_id", f.installation_id,
                  "Bind to an app installation");
  cmd->add_option("--expire_time", f.expire_time, "Expiry")
      ->type_name("RFC3339");
  key_id(leaf(key, "get", "Show a key", KeyGet));
  cmd = leaf(key, "list", "List keys", KeyList);
  cmd->add_option("--org", f.org, "Only this organization's keys");
  cmd->add_flag("--include_revoked", f.include_revoked, "Include revoked keys");
  cmd = leaf(key, "grant", "Grant scopes or bundles", KeyGrant);
  key_id(cmd);
  AddList(cmd, "--scope", &f.scopes, "Scope to grant");
  AddList(cmd, "--bundle", &f.bundles, "Bundle to grant");
  cmd->add_option("--expire_time", f.expire_time,
                  "Expiry of the granted scopes")
      ->type_name("RFC3339");
  cmd = leaf(key, "revoke-scopes", "Remove direct grants or bundles",
             KeyRevokeScopes);
  key_id(cmd);
  AddList(cmd, "--scope", &f.scopes, "Direct grant to remove");
  AddList(cmd, "--bundle", &f.bundles, "Bundle to remove");
  cmd = leaf(key, "revoke", "Revoke a key (idempotent)", KeyRevoke);
  key_id(cmd);
  cmd->add_option("--reason", f.reason, "Recorded with the revocation");
  cmd = leaf(key, "rotate", "Issue a new secret; prints it once", KeyRotate);
  key_id(cmd);
  cmd->add_option("--grace_period", f.grace_period,
                  "How long the old secret keeps working")
      ->type_name("DURATION");

  CLI::App* apps = group("app", "Register marketplace apps");
  cmd = leaf(apps, "put", "Create or replace an app", AppPut);
  cmd->add_option("APP_ID", f.app_id, "The app's id")->required();
  cmd->add_option("--slug", f.slug, "Short name");
  cmd->add_option("--live_version_id", f.live_version_id,
                  "The version organizations run");
  AddList(cmd, "--scope", &f.scopes, "Scope the app requests");

  CLI::App* install = group("install", "Approve app installations");
  cmd = leaf(install, "approve",
             "Set the scopes an organization approves for an app",
             InstallApprove);
  cmd->add_option("--org", f.org, "Organization id")->required();
  cmd->add_option("--app_id", f.app_id, "App id")->required();
  AddList(cmd, "--scope", &f.scopes,
          "Approved scope (replaces the approved set)");

  cmd = leaf(&app, "check", "Decide one HTTP request; exit 0 allowed, 1 denied",
             Check, /*admin=*/false);
  cmd->add_option("--key", f.key, "The API key secret, verbatim")
      ->type_name("SECRET");
  cmd->add_option("--key_file", f.key_file,
                  "File whose first line is the API key (keeps it out of ps)")
      ->type_name("PATH");
  cmd->add_option("--api", f.api, "API name, e.g. external-pharmacy")
      ->required();
  cmd->add_option("--org", f.org,
                  "Organization the request names (default: the key's)");
  cmd->add_option("--min_revision", f.min_revision,
                  "Wait until the server has applied this revision");
  cmd->add_option("--trace_id", f.trace_id, "Echoed in the decision");
  cmd->add_option("METHOD", f.method, "GET, POST, PUT, PATCH, DELETE, HEAD")
      ->required();
  cmd->add_option("PATH", f.path, "Request path")->required();

  cmd = leaf(&app, "describe",
             "Show the key behind a secret: metadata, app, effective scopes",
             Describe, /*admin=*/false);
  cmd->add_option("--key", f.key, "The API key secret, verbatim")
      ->type_name("SECRET");
  cmd->add_option("--key_file", f.key_file,
                  "File whose first line is the API key (keeps it out of ps)")
      ->type_name("PATH");
  cmd->add_option("--org", f.org,
                  "Organization the request names (default: the key's)");

  cmd = leaf(&app, "audit", "List audit events, oldest first", Audit);
  cmd->add_option("--key_id", f.key_id, "Only this key's events");
  cmd->add_option("--org", f.org, "Only this organization's events");
  cmd->add_option("--after_revision", f.after_revision,
                  "Only events after this revision (to page on)");
  cmd->add_option("--page_size", f.page_size,
                  "At most this many events (server default 100, max 1000)")
      ->check(CLI::NonNegativeNumber);

  cmd = leaf(&app, "watch", "Stream changes as they happen", Watch);
  cmd->add_option("--from_revision", f.from_revision,
                  "Start after this revision (0: replay all history)");
  cmd->add_option("--max_events", f.max_events,
                  "Stop after this many events (0: no limit)");
  cmd->add_option("--max_duration", f.max_duration,
                  "Stop after this long, exit 0 (default: no limit)")
      ->type_name("DURATION");

  app.footer(kFooter);  // after the subcommands: they would inherit it

  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    app.parse(reversed);  // CLI11 takes the arguments last first
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::ParseError& e) {
    // CLI11 echoes unexpected arguments: a secret typed in the wrong place
    // must not land in a terminal log.
    std::ostringstream message;
    if (!MissingCommand(app, e, message)) app.exit(e, message, message);
    err << "scopectl: " << RedactSecretShapedRuns(message.str());
    return kExitUsage;
  }

  for (const Command& command : commands) {
    if (!command.app->parsed()) continue;
    std::string name = command.app->get_name();
    if (command.app->get_parent() != &app) {
      name = absl::StrCat(command.app->get_parent()->get_name(), " ", name);
    }
    absl::StatusOr<std::unique_ptr<Client>> client =
        Connect(f, env, command.admin);
    if (!client.ok()) {
      err << "scopectl: " << name << ": " << client.status().message() << "\n";
      return kExitUsage;
    }
    Session session(f, **client, name, out, err);
    return command.run(session);
  }
  err << "scopectl: no command given; see scopectl --help\n";
  return kExitUsage;
}

}  // namespace scopekeeper
