#include "client/scopectl.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/redact.h"
#include "base/version.h"
#include "client/client.h"
#include "client/scopectl_completion.h"
#include "client/scopectl_config.h"
#include "client/scopectl_connect.h"
#include "client/scopectl_files.h"
#include "client/scopectl_format.h"
#include "google/protobuf/util/json_util.h"
#include "google/protobuf/util/time_util.h"

namespace scopekeeper {
namespace {

using ::google::protobuf::util::TimeUtil;

// BatchAuthorize's limit per call; `batch` sends bigger inputs in parts.
constexpr int kMaxBatchRequests = 1000;

// Everything the command line can say; each command reads its own fields.
struct Flags {
  // Global. Connection settings hold the flag only (empty: not given);
  // ResolveSettings() adds the environment, the context and defaults.
  scopectl::Context connection;
  std::string context;
  std::string output;
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
  std::string secret_file;
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
  std::string unused_for;
  std::string page_token;
  std::string destination;
  std::string context_name;
  std::string shell;
  std::vector<std::string> apis;
  std::vector<std::string> scopes;
  std::vector<std::string> bundles;
  std::vector<std::string> all_of;
  std::vector<std::string> any_of;
  bool authenticated_only = false;
  bool include_revoked = false;
  bool follow = false;
  uint64_t min_revision = 0;
  uint64_t after_revision = 0;
  uint64_t from_revision = 0;
  int page_size = 0;
  int64_t max_events = 0;
};

// What a command needs before it runs.
enum class Needs {
  kNothing,    // no server (context, completion)
  kDataPlane,  // a connection, no admin token (check, batch, describe)
  kAdmin,      // a connection with the admin credential
};

// One run of a command: the parsed flags, the settings, the streams, and
// the client, connected on first use (after the command has checked its
// arguments, so that a usage error never opens a connection).
class Session {
 public:
  Session(const Flags& flags, const ScopectlEnvironment& env,
          OutputFormat format, const CLI::App& app, std::string command,
          Needs needs, std::ostream& out, std::ostream& err)
      : flags_(flags),
        env_(env),
        format_(format),
        app_(app),
        command_(std::move(command)),
        needs_(needs),
        out_(out),
        err_(err) {}

  const Flags& flags() const { return flags_; }
  const ScopectlEnvironment& env() const { return env_; }
  const CLI::App& app() const { return app_; }
  std::ostream& out() { return out_; }
  OutputFormat format() const { return format_; }
  bool table() const { return format_ == OutputFormat::kTable; }

  // client() connects on the first call: the config and context, the
  // settings, the files they name. Null when that fails (reported as a
  // usage error: the caller returns kExitUsage).
  Client* client() {
    if (client_ != nullptr) return client_.get();
    absl::StatusOr<scopectl::Config> config = Config();
    if (!config.ok()) return UsageNull(config.status());
    absl::StatusOr<const scopectl::Context*> context =
        SelectContext(*config, flags_.context, env_.config_path);
    if (!context.ok()) return UsageNull(context.status());
    scopectl::Context env_layer;
    env_layer.set_addr(env_.addr);
    env_layer.set_admin_token_file(env_.admin_token_file);
    env_layer.set_authorizer_token_file(env_.authorizer_token_file);
    env_layer.set_tls_ca(env_.tls_ca);
    env_layer.set_tls_cert(env_.tls_cert);
    env_layer.set_tls_key(env_.tls_key);
    settings_ = ResolveSettings(flags_.connection, env_layer, *context);
    absl::StatusOr<ConnectionOptions> options =
        MakeConnectionOptions(settings_, needs_ == Needs::kAdmin);
    if (!options.ok()) return UsageNull(options.status());
    ClientOptions client_options;
    client_options.timeout = absl::Seconds(flags_.timeout_seconds);
    auto connect = env_.connect ? env_.connect : MakeGrpcConnection;
    client_ = std::make_unique<Client>(connect(*options), client_options);
    return client_.get();
  }

  // Config() is the config file's content (empty when there is none).
  absl::StatusOr<scopectl::Config> Config() const {
    if (env_.config_path.empty()) return scopectl::Config();
    return LoadConfig(env_.config_path);
  }

  // Usage() reports a problem with the command line, its files or settings.
  int Usage(const absl::Status& status) {
    err_ << "scopectl: " << command_ << ": " << status.message() << "\n";
    return kExitUsage;
  }

  // Failed() reports a failed call: the gRPC code name and the server's
  // message, on stderr, and a hint when the settings explain more.
  int Failed(const absl::Status& status, absl::string_view note = "") {
    err_ << "scopectl: " << command_ << ": "
         << absl::StatusCodeToString(status.code()) << ": " << status.message()
         << ConnectionHint(status, settings_) << note << "\n";
    return kExitRpcError;
  }

  // Print() writes `message` in the output format; tables with `human`.
  template <typename Message>
  int Print(const Message& message,
            void (*human)(const Message&, std::ostream&)) {
    if (table()) {
      human(message, out_);
    } else {
      PrintMessage(message, format_, out_);
    }
    return kExitOk;
  }

  // PrintData() writes `message` as JSON or YAML. REQUIRES: !table().
  int PrintData(const google::protobuf::Message& message) {
    PrintMessage(message, format_, out_);
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
  std::nullptr_t UsageNull(const absl::Status& status) {
    Usage(status);
    return nullptr;
  }

  const Flags& flags_;
  const ScopectlEnvironment& env_;
  const OutputFormat format_;
  const CLI::App& app_;
  const std::string command_;
  const Needs needs_;
  std::ostream& out_;
  std::ostream& err_;
  ConnectionSettings settings_;
  std::unique_ptr<Client> client_;
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

google::protobuf::Duration ToProto(absl::Duration d) {
  return TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(d));
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
  absl::StatusOr<std::string> text = ReadFileContents(f.file, "policy");
  if (!text.ok()) return s.Usage(text.status());
  v1::PutPolicyRequest request;
  const auto parsed = google::protobuf::util::JsonStringToMessage(
      *text, request.mutable_policy());
  if (!parsed.ok()) {
    return s.Usage(absl::InvalidArgumentError(absl::StrCat(
        f.file, " is not a JSON Policy: ", parsed.message().as_string())));
  }
  Client* client = s.client();
  if (client == nullptr) return kExitUsage;
  absl::StatusOr<v1::PutPolicyResponse> response = client->PutPolicy(request);
  if (!response.ok()) return s.Failed(response.status());
  if (!s.table()) return s.PrintData(*response);
  const v1::Policy& p = request.policy();
  s.out() << "policy applied at revision " << response->revision() << ": "
          << p.scopes_size() << " scopes, " << p.apis_size() << " APIs, "
          << p.bundles_size() << " bundles\n";
  return kExitOk;
}

int PolicyGet(Session& s) {
  Client* client = s.client();
  if (client == nullptr) return kExitUsage;
  return s.PrintOrFail(client->GetPolicy(), PrintPolicy);
}

// OpenSecretFile() creates --secret_file, if given, before the call that
// makes the secret: a path that is taken fails before a key exists.
absl::StatusOr<std::optional<SecretFile>> OpenSecretFile(const Flags& f) {
  if (f.secret_file.empty()) return std::nullopt;
  absl::StatusOr<SecretFile> file = SecretFile::Create(f.secret_file);
  if (!file.ok()) {
    return absl::Status(
        file.status().code(),
        absl::StrCat("--secret_file: ", file.status().message()));
  }
  return std::optional<SecretFile>(*std::move(file));
}

// PrintNewSecret() prints a created or rotated key and its secret, once: on
// `out`, or only into `file` when one is given.
int PrintNewSecret(Session& s,
                   const absl::StatusOr<v1::CreateKeyResponse>& response,
                   std::optional<SecretFile>& file) {
  if (!response.ok()) return s.Failed(response.status());
  v1::CreateKeyResponse shown = *response;
  if (file.has_value()) {
    if (absl::Status written = file->Write(response->secret()); !written.ok()) {
      // The key exists but nobody has its secret: say how to clean up.
      return s.Failed(written,
                      absl::StrCat(" (key ", response->key().key_id(),
                                   " was created but its secret is lost: "
                                   "revoke it with `scopectl key revoke ",
                                   response->key().key_id(), "`)"));
    }
    shown.clear_secret();
  }
  if (!s.table()) return s.PrintData(shown);
  PrintKey(shown.key(), s.out());
  if (file.has_value()) {
    s.out() << "\nsecret: written to " << file->path()
            << " (mode 0600; not shown)\n";
  } else {
    s.out() << "\nsecret: " << shown.secret()
            << "\n(shown once: store it now, it cannot be retrieved again)\n";
  }
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
  absl::StatusOr<std::optional<SecretFile>> file = OpenSecretFile(f);
  if (!file.ok()) return s.Usage(file.status());
  Client* client = s.client();
  if (client == nullptr) return kExitUsage;
  return PrintNewSecret(s, client->CreateKey(request), *file);
}

int KeyGet(Session& s) {
  v1::GetKeyRequest request;
  request.set_key_id(s.flags().key_id);
  Client* client = s.client();
  if (client == nullptr) return kExitUsage;
  return s.PrintOrFail(client->GetKey(request), PrintKey);
}

int KeyList(Session& s) {
  const Flags& f = s.flags();
  v1::ListKeysRequest request;
  request.set_organization_id(f.org);
  request.set_include_revoked(f.include_revoked);
  request.set_page_size(f.page_size);
  request.set_page_token(f.page_token);
  if (!f.unused_for.empty()) {
    absl::StatusOr<absl::Duration> unused =
        ParseDuration("--unused_for", f.unused_for);
    if (!unused.ok()) return s.Usage(unused.status());
    *request.mutable_unused_for() = ToProto(*unused);
  }
  Client* client = s.client();
  if (client == nullptr) return kExitUsage;
  // One page when the caller pages, else every page.
  const bool one_page = f.page_size > 0 || !f.page_token.empty();
  v1::ListKeysResponse all;
  do {
    absl::StatusOr<v1::ListKeysResponse> page = client->ListKeys(request);
    if (!page.ok()) return s.Failed(page.status());
    all.mutable_keys()->MergeFrom(page->keys());
    if (one_page) {
      all.set_next_page_token(page->next_page_token());
      break;
    }
    if (page->next_page_token() == request.page_token()) break;  // no loop
    request.set_page_token(page->next_page_token());
  } while (!request.page_token().empty());
  if (!s.table()) return s.PrintData(all);
  PrintKeyTable({all.keys().begin(), all.keys().end()}, s.out());
  if (!all.next_page_token().empty()) {
    s.out() << "\nnext page: --page_token " << all.next_page_token() << "\n";
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
  Client* client = s.client();
  if (client == nullptr) return kExitUsage;
  return s.PrintOrFail(client->GrantScopes(request), PrintKey);
}

int KeyRevokeScopes(Session& s) {
  v1::RevokeScopesRequest request;
  if (absl::Status ok = FillScopeChange(s.flags(), &request); !ok.ok()) {
    return s.Usage(ok);
  }
  Client* client = s.client();
  if (client == nullptr) return kExitUsage;
  return s.PrintOrFail(client->RevokeScopes(request), PrintKey);
}

int KeyRevoke(Session& s) {
  v1::RevokeKeyRequest request;
  request.set_key_id(s.flags().key_id);
  request.set_reason(s.flags().reason);
  Client* client = s.client();
  if (client == nullptr) return kExitUsage;
  return s.PrintOrFail(client->RevokeKey(request), PrintKey);
}

int KeyRotate(Session& s) {
  const Flags& f = s.flags();
  v1::RotateKeyRequest request;
  request.set_key_id(f.key_id);
  if (!f.grace_period.empty()) {
    absl::StatusOr<absl::Duration> grace =
        ParseDuration("--grace_period", f.grace_period);
    if (!grace.ok()) return s.Usage(grace.status());
    *request.mutable_grace_period() = ToProto(*grace);
  }
  absl::StatusOr<std::optional<SecretFile>> file = OpenSecretFile(f);
  if (!file.ok()) return s.Usage(file.status());
  Client* client = s.client();
  if (client == nullptr) return kExitUsage;
  return PrintNewSecret(s, client->RotateKey(request), *file);
}

int AppPut(Session& s) {
  const Flags& f = s.flags();
  v1::PutAppRequest request;
  v1::App* app = request.mutable_app();
  app->set_app_id(f.app_id);
  app->set_slug(f.slug);
  app->set_live_version_id(f.live_version_id);
  for (const auto& scope : f.scopes) app->add_requested_scopes(scope);
  Client* client = s.client();
  if (client == nullptr) return kExitUsage;
  return s.PrintOrFail(client->PutApp(request), PrintApp);
}

int InstallApprove(Session& s) {
  const Flags& f = s.flags();
  v1::ApproveInstallationRequest request;
  request.set_organization_id(f.org);
  request.set_app_id(f.app_id);
  for (const auto& scope : f.scopes) request.add_approved_scopes(scope);
  Client* client = s.client();
  if (client == nullptr) return kExitUsage;
  return s.PrintOrFail(client->ApproveInstallation(request), PrintInstallation);
}

int InstallGet(Session& s) {
  const Flags& f = s.flags();
  v1::GetInstallationRequest request;
  request.set_organization_id(f.org);
  request.set_app_id(f.app_id);
  Client* client = s.client();
  if (client == nullptr) return kExitUsage;
  return s.PrintOrFail(client->GetInstallation(request), PrintInstallation);
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

// FillTarget() sets what `check` decides: the HTTP request (--api METHOD
// PATH) or an explicit requirement (--all_of, --any_of,
// --authenticated_only), never both.
absl::Status FillTarget(const Flags& f, v1::AuthorizeRequest* request) {
  const bool requirement =
      !f.all_of.empty() || !f.any_of.empty() || f.authenticated_only;
  const bool http = !f.api.empty() || !f.method.empty() || !f.path.empty();
  if (requirement && http) {
    return absl::InvalidArgumentError(
        "give either --api API METHOD PATH or a requirement (--all_of, "
        "--any_of, --authenticated_only), not both");
  }
  if (requirement) {
    if (f.authenticated_only && (!f.all_of.empty() || !f.any_of.empty())) {
      return absl::InvalidArgumentError(
          "--authenticated_only takes no --all_of or --any_of");
    }
    v1::Requirement* r = request->mutable_requirement();
    for (const auto& scope : f.all_of) r->add_all_of(scope);
    for (const auto& scope : f.any_of) r->add_any_of(scope);
    r->set_authenticated_only(f.authenticated_only);
    return absl::OkStatus();
  }
  if (f.api.empty()) {
    return absl::InvalidArgumentError(
        "--api is required, with METHOD and PATH (or give a requirement: "
        "--all_of, --any_of, --authenticated_only)");
  }
  if (f.method.empty()) return absl::InvalidArgumentError("METHOD is required");
  if (f.path.empty()) return absl::InvalidArgumentError("PATH is required");
  v1::HttpRequestTarget* target = request->mutable_http();
  target->set_api(f.api);
  target->set_method(f.method);
  target->set_path(f.path);
  return absl::OkStatus();
}

int Check(Session& s) {
  const Flags& f = s.flags();
  v1::AuthorizeRequest request;
  if (absl::Status ok = FillTarget(f, &request); !ok.ok()) return s.Usage(ok);
  absl::StatusOr<std::string> key = ApiKey(f);
  if (!key.ok()) return s.Usage(key.status());
  request.set_api_key(*std::move(key));
  request.set_organization_id(f.org);
  request.set_min_revision(f.min_revision);
  request.set_trace_id(f.trace_id);
  Client* client = s.client();
  if (client == nullptr) return kExitUsage;
  const Decision decision = client->Authorize(request);
  if (!decision.status.ok()) {
    return s.Failed(decision.status, " (no decision: treat as denied)");
  }
  s.Print(decision.response, PrintDecision);
  return decision.allowed ? kExitOk : kExitDenied;
}

// ReadBatch() parses the lines of `text` (from `name`) into requests,
// skipping blank lines; `lines` gets each request's line number. Errors
// name the line but never show its text: it holds an API key.
absl::Status ReadBatch(absl::string_view name, const std::string& text,
                       v1::BatchAuthorizeRequest* batch,
                       std::vector<std::string>* lines) {
  int number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++number;
    if (absl::StripAsciiWhitespace(line).empty()) continue;
    v1::AuthorizeRequest* request = batch->add_requests();
    const auto parsed = google::protobuf::util::JsonStringToMessage(
        google::protobuf::StringPiece(line.data(), line.size()), request);
    if (!parsed.ok()) {
      // The parser's message goes on to quote the text around the error:
      // keep its first line only, redacted.
      const std::string message = parsed.message().as_string();
      return absl::InvalidArgumentError(absl::StrCat(
          name, " line ", number,
          ": not a JSON AuthorizeRequest (one object per line): ",
          RedactSecretShapedRuns(message.substr(0, message.find('\n')))));
    }
    lines->push_back(absl::StrCat(number));
  }
  if (batch->requests().empty()) {
    return absl::InvalidArgumentError(absl::StrCat("no requests in ", name));
  }
  return absl::OkStatus();
}

int Batch(Session& s) {
  const Flags& f = s.flags();
  const bool from_stdin = f.file.empty() || f.file == "-";
  std::string text;
  if (from_stdin) {
    if (s.env().in == nullptr) {
      return s.Usage(absl::InvalidArgumentError("no standard input"));
    }
    std::ostringstream buffer;
    buffer << s.env().in->rdbuf();
    text = buffer.str();
  } else {
    absl::StatusOr<std::string> contents =
        ReadFileContents(f.file, "batch input");
    if (!contents.ok()) return s.Usage(contents.status());
    text = *std::move(contents);
  }
  v1::BatchAuthorizeRequest all;
  std::vector<std::string> lines;
  if (absl::Status ok =
          ReadBatch(from_stdin ? "standard input" : f.file, text, &all, &lines);
      !ok.ok()) {
    return s.Usage(ok);
  }
  Client* client = s.client();
  if (client == nullptr) return kExitUsage;

  std::vector<std::string> labels;
  std::vector<v1::AuthorizeResponse> decisions;
  bool denied = false;
  int failed = kExitOk;
  for (int begin = 0; begin < all.requests_size(); begin += kMaxBatchRequests) {
    const int end = std::min(all.requests_size(), begin + kMaxBatchRequests);
    v1::BatchAuthorizeRequest part;
    for (int i = begin; i < end; ++i) *part.add_requests() = all.requests(i);
    const std::vector<Decision> answers = client->BatchAuthorize(part);
    if (!answers.empty() && !answers.front().status.ok()) {
      failed =
          s.Failed(answers.front().status,
                   absl::StrCat(" (no decisions for lines ", lines[begin], "-",
                                lines[end - 1], ": treat them as denied)"));
      break;
    }
    for (int i = begin; i < end; ++i) {
      const Decision& d = answers[i - begin];
      denied = denied || !d.allowed;
      if (s.table()) {
        labels.push_back(lines[i]);
        decisions.push_back(d.response);
      } else {
        PrintStreamed(d.response, s.format(), s.out());
      }
    }
  }
  if (s.table() && !decisions.empty()) {
    PrintDecisionRows(labels, decisions, s.out());
  }
  if (failed != kExitOk) return failed;
  return denied ? kExitDenied : kExitOk;
}

int Describe(Session& s) {
  const Flags& f = s.flags();
  absl::StatusOr<std::string> key = ApiKey(f);
  if (!key.ok()) return s.Usage(key.status());
  v1::DescribeKeyRequest request;
  request.set_api_key(*std::move(key));
  request.set_organization_id(f.org);
  Client* client = s.client();
  if (client == nullptr) return kExitUsage;
  return s.PrintOrFail(client->DescribeKey(request), PrintDescribedKey);
}

int Audit(Session& s) {
  const Flags& f = s.flags();
  v1::ListAuditEventsRequest request;
  request.set_key_id(f.key_id);
  request.set_organization_id(f.org);
  request.set_after_revision(f.after_revision);
  request.set_page_size(f.page_size);
  Client* client = s.client();
  if (client == nullptr) return kExitUsage;
  absl::StatusOr<v1::ListAuditEventsResponse> response =
      client->ListAuditEvents(request);
  if (!response.ok()) return s.Failed(response.status());
  if (!s.table()) return s.PrintData(*response);
  PrintAuditEvents({response->events().begin(), response->events().end()},
                   s.out());
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
  // Without --follow the server ends the stream once it has sent what
  // exists: the command ends when the history has been shown.
  request.set_end_when_caught_up(!f.follow);
  Client* client = s.client();
  if (client == nullptr) return kExitUsage;
  int64_t seen = 0;
  const absl::Status status =
      client->Watch(request, deadline, [&](const v1::WatchEvent& event) {
        if (s.table()) {
          PrintWatchEvent(event, s.out());
        } else {
          PrintStreamed(event, s.format(), s.out());
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

int Backup(Session& s) {
  const Flags& f = s.flags();
  if (f.destination.empty() || f.destination.front() != '/') {
    return s.Usage(absl::InvalidArgumentError(absl::StrCat(
        "DESTINATION must be an absolute path on the server's host: ",
        f.destination)));
  }
  v1::CreateBackupRequest request;
  request.set_destination(f.destination);
  Client* client = s.client();
  if (client == nullptr) return kExitUsage;
  return s.PrintOrFail(client->CreateBackup(request), PrintBackup);
}

// Context commands: the config file only, no server.

// ConfigPath() is the config file's path; an error when there is none.
absl::StatusOr<std::string> ConfigPath(Session& s) {
  if (s.env().config_path.empty()) {
    return absl::FailedPreconditionError(
        "no config file: set SCOPEKEEPER_CONFIG (or HOME)");
  }
  return s.env().config_path;
}

void PrintContexts(const scopectl::Config& config, std::ostream& out) {
  TextTable t;
  t.AddRow(
      {"CURRENT", "NAME", "ADDR", "ADMIN_TOKEN_FILE", "TLS_CA", "TLS_CERT"});
  auto dash = [](const std::string& s) { return s.empty() ? "-" : s; };
  for (const scopectl::Context& c : config.contexts()) {
    t.AddRow({c.name() == config.current_context() ? "*" : "", c.name(),
              dash(c.addr()), dash(c.admin_token_file()), dash(c.tls_ca()),
              dash(c.tls_cert())});
  }
  t.Print(out);
}

int ContextList(Session& s) {
  absl::StatusOr<scopectl::Config> config = s.Config();
  if (!config.ok()) return s.Usage(config.status());
  return s.Print(*config, PrintContexts);
}

int ContextUse(Session& s) {
  absl::StatusOr<std::string> path = ConfigPath(s);
  if (!path.ok()) return s.Usage(path.status());
  absl::StatusOr<scopectl::Config> config = LoadConfig(*path);
  if (!config.ok()) return s.Usage(config.status());
  const std::string& name = s.flags().context_name;
  if (FindContext(*config, name) == nullptr) {
    return s.Usage(absl::NotFoundError(absl::StrCat(
        "no context \"", name, "\" in ", *path, " (scopectl context list)")));
  }
  config->set_current_context(name);
  if (absl::Status saved = SaveConfig(*path, *config); !saved.ok()) {
    return s.Usage(saved);
  }
  s.out() << "current context: " << name << "\n";
  return kExitOk;
}

int ContextSet(Session& s) {
  const Flags& f = s.flags();
  absl::StatusOr<std::string> path = ConfigPath(s);
  if (!path.ok()) return s.Usage(path.status());
  const scopectl::Context& given = f.connection;
  if (given.addr().empty() && given.admin_token_file().empty() &&
      given.authorizer_token_file().empty() && given.tls_ca().empty() &&
      given.tls_cert().empty() && given.tls_key().empty()) {
    return s.Usage(absl::InvalidArgumentError(
        "nothing to set: give --addr, --admin_token_file, --tls_ca, "
        "--tls_cert, --tls_key or --authorizer_token_file"));
  }
  if (!given.addr().empty()) {
    if (absl::Status ok = ValidateAddress("--addr", given.addr()); !ok.ok()) {
      return s.Usage(ok);
    }
  }
  absl::StatusOr<scopectl::Config> config = LoadConfig(*path);
  if (!config.ok()) return s.Usage(config.status());
  const std::string& name = f.context_name;
  scopectl::Context* context = FindContext(&*config, name);
  if (context == nullptr) {
    context = config->add_contexts();
    context->set_name(name);
  }
  // Files are kept as absolute paths: the context is used from anywhere.
  auto set_path = [](const std::string& value,
                     void (scopectl::Context::*set)(const std::string&),
                     scopectl::Context* c) {
    if (value.empty()) return;
    (c->*set)(std::filesystem::absolute(value).lexically_normal().string());
  };
  if (!given.addr().empty()) context->set_addr(given.addr());
  set_path(given.admin_token_file(), &scopectl::Context::set_admin_token_file,
           context);
  set_path(given.authorizer_token_file(),
           &scopectl::Context::set_authorizer_token_file, context);
  set_path(given.tls_ca(), &scopectl::Context::set_tls_ca, context);
  set_path(given.tls_cert(), &scopectl::Context::set_tls_cert, context);
  set_path(given.tls_key(), &scopectl::Context::set_tls_key, context);
  // The first context becomes the current one.
  if (config->current_context().empty()) config->set_current_context(name);
  if (absl::Status saved = SaveConfig(*path, *config); !saved.ok()) {
    return s.Usage(saved);
  }
  s.out() << "context \"" << name << "\" saved in " << *path
          << (config->current_context() == name ? " (current)" : "") << "\n";
  return kExitOk;
}

int ContextDelete(Session& s) {
  absl::StatusOr<std::string> path = ConfigPath(s);
  if (!path.ok()) return s.Usage(path.status());
  absl::StatusOr<scopectl::Config> config = LoadConfig(*path);
  if (!config.ok()) return s.Usage(config.status());
  const std::string& name = s.flags().context_name;
  auto* contexts = config->mutable_contexts();
  auto it = std::find_if(
      contexts->begin(), contexts->end(),
      [&](const scopectl::Context& c) { return c.name() == name; });
  if (it == contexts->end()) {
    return s.Usage(absl::NotFoundError(
        absl::StrCat("no context \"", name, "\" in ", *path)));
  }
  contexts->erase(it);
  if (config->current_context() == name) config->clear_current_context();
  if (absl::Status saved = SaveConfig(*path, *config); !saved.ok()) {
    return s.Usage(saved);
  }
  s.out() << "context \"" << name << "\" deleted\n";
  return kExitOk;
}

int Completion(Session& s) {
  WriteBashCompletion(s.app(), s.out());
  return kExitOk;
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
Settings: each from its flag, else its environment variable, else the
context (--context NAME, else the current one of the config file), else the
default (127.0.0.1:50051, plaintext):
  --addr                   SCOPEKEEPER_ADDR
  --admin_token_file       SCOPEKEEPER_ADMIN_TOKEN_FILE
  --authorizer_token_file  SCOPEKEEPER_AUTHORIZER_TOKEN_FILE
  --tls_ca                 SCOPEKEEPER_TLS_CA
  --tls_cert, --tls_key    SCOPEKEEPER_TLS_CERT, SCOPEKEEPER_TLS_KEY
Config file: $SCOPEKEEPER_CONFIG, else ~/.config/scopekeeper/config
(`scopectl context set|use|list|delete`).

Exit status:
  0  success (check, batch: allowed)
  1  check, batch: denied
  2  usage error: bad flags, arguments or settings, unreadable file,
     invalid JSON
  3  the call failed (gRPC code and message on stderr; check, batch: no
     decision, treat as denied)

`key create` and `key rotate` print the new secret once (or write it to
--secret_file); store it then.
Run `scopectl --help-all` for every command's flags.)";

}  // namespace

int RunScopectl(const std::vector<std::string>& args,
                const ScopectlEnvironment& env, std::ostream& out,
                std::ostream& err) {
  Flags f;
  std::string addr, admin_token_file, authorizer_token_file, tls_ca, tls_cert,
      tls_key;

  CLI::App app{"Command line for Scopekeeper, the API-key permission service.",
               "scopectl"};
  app.set_help_all_flag("--help-all", "Print help for every command");
  // The same build stamp as the server's scopekeeper_build_info.
  app.set_version_flag("--version",
                       absl::StrCat("scopectl ", ScopekeeperVersion(),
                                    " (commit ", ScopekeeperCommit(), ")"),
                       "Print the version and commit, and exit");
  app.fallthrough();  // global flags may follow the command
  app.require_subcommand(1);
  app.add_option("--context", f.context,
                 "Context of the config file to use (default: its current "
                 "one)")
      ->type_name("NAME");
  app.add_option("--addr", addr,
                 absl::StrCat("Server address, or the replicas of a cluster "
                              "as HOST:PORT,HOST:PORT,... (default ",
                              kDefaultAddress, ")"))
      ->type_name("HOST:PORT");
  app.add_option("--admin_token_file", admin_token_file,
                 "File whose first line is the admin bearer token")
      ->type_name("PATH");
  app.add_option("--authorizer_token_file", authorizer_token_file,
                 "File whose first line is the data-plane bearer token (for "
                 "servers started with --authorizer_token_file)")
      ->type_name("PATH");
  app.add_option("--tls_ca", tls_ca,
                 "PEM CA bundle to verify the server with; enables TLS")
      ->type_name("PATH");
  app.add_option("--tls_cert", tls_cert,
                 "PEM client certificate chain, for mTLS (with --tls_key)")
      ->type_name("PATH");
  app.add_option("--tls_key", tls_key, "PEM client private key, for mTLS")
      ->type_name("PATH");
  app.add_option("-o,--output", f.output,
                 "Output format: table (default), json (protobuf JSON "
                 "mapping), yaml")
      ->check(CLI::IsMember({"table", "json", "yaml"}))
      ->type_name("FORMAT");
  app.add_flag("--json", f.json, "Same as -o json");
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
    Needs needs;
  };
  std::vector<Command> commands;
  auto leaf = [&](CLI::App* parent, const std::string& name,
                  const std::string& help, int (*run)(Session&),
                  Needs needs = Needs::kAdmin) {
    CLI::App* cmd = parent->add_subcommand(name, help);
    commands.push_back({cmd, run, needs});
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
  auto api_key = [&](CLI::App* cmd) {
    cmd->add_option("--key", f.key, "The API key secret, verbatim")
        ->type_name("SECRET");
    cmd->add_option("--key_file", f.key_file,
                    "File whose first line is the API key (keeps it out of "
                    "ps)")
        ->type_name("PATH");
  };
  auto secret_file = [&](CLI::App* cmd) {
    cmd->add_option("--secret_file", f.secret_file,
                    "Write the new secret to this new file (mode 0600; "
                    "never overwritten) instead of printing it")
        ->type_name("PATH");
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
  secret_file(cmd);
  key_id(leaf(key, "get", "Show a key", KeyGet));
  cmd = leaf(key, "list", "List keys", KeyList);
  cmd->add_option("--org", f.org, "Only this organization's keys");
  cmd->add_flag("--include_revoked", f.include_revoked, "Include revoked keys");
  cmd->add_option("--unused_for", f.unused_for,
                  "Only keys not used for at least this long (e.g. 720h): "
                  "the ones to review and revoke")
      ->type_name("DURATION");
  cmd->add_option("--page_size", f.page_size,
                  "One page of at most this many keys (server default 100, "
                  "max 1000)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--page_token", f.page_token,
                  "The page after the one that printed this token");
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
  secret_file(cmd);

  CLI::App* apps = group("app", "Register marketplace apps");
  cmd = leaf(apps, "put", "Create or replace an app", AppPut);
  cmd->add_option("APP_ID", f.app_id, "The app's id")->required();
  cmd->add_option("--slug", f.slug, "Short name");
  cmd->add_option("--live_version_id", f.live_version_id,
                  "The version organizations run");
  AddList(cmd, "--scope", &f.scopes, "Scope the app requests");

  CLI::App* install = group("install", "App installations of organizations");
  cmd = leaf(install, "approve",
             "Set the scopes an organization approves for an app",
             InstallApprove);
  cmd->add_option("--org", f.org, "Organization id")->required();
  cmd->add_option("--app_id", f.app_id, "App id")->required();
  AddList(cmd, "--scope", &f.scopes,
          "Approved scope (replaces the approved set)");
  cmd = leaf(install, "get",
             "Show an organization's installation of an app: approved and "
             "pending scopes",
             InstallGet);
  cmd->add_option("--org", f.org, "Organization id")->required();
  cmd->add_option("--app_id", f.app_id, "App id")->required();

  cmd = leaf(&app, "check",
             "Decide one request, by route (--api METHOD PATH) or by an "
             "explicit requirement; exit 0 allowed, 1 denied",
             Check, Needs::kDataPlane);
  api_key(cmd);
  cmd->add_option("--api", f.api, "API name, e.g. external-pharmacy");
  cmd->add_option("--org", f.org,
                  "Organization the request names (default: the key's)");
  cmd->add_option("--min_revision", f.min_revision,
                  "Wait until the server has applied this revision");
  cmd->add_option("--trace_id", f.trace_id, "Echoed in the decision");
  AddList(cmd, "--all_of", &f.all_of,
          "Explicit requirement: every one of these scopes (no route)");
  AddList(cmd, "--any_of", &f.any_of,
          "Explicit requirement: at least one of these scopes (no route)");
  cmd->add_flag("--authenticated_only", f.authenticated_only,
                "Explicit requirement: any valid key (no route)");
  cmd->add_option("METHOD", f.method, "GET, POST, PUT, PATCH, DELETE, HEAD");
  cmd->add_option("PATH", f.path, "Request path");

  cmd = leaf(&app, "batch",
             "Decide many requests: JSON lines of AuthorizeRequest (protobuf "
             "JSON); one decision each; exit 0 all allowed, 1 any denied",
             Batch, Needs::kDataPlane);
  cmd->add_option("FILE", f.file,
                  "Input, one JSON object per line (default or \"-\": "
                  "standard input)");

  cmd = leaf(&app, "describe",
             "Show the key behind a secret: metadata, app, effective scopes",
             Describe, Needs::kDataPlane);
  api_key(cmd);
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

  cmd = leaf(&app, "watch",
             "Show the changes after a revision, then exit (--follow: keep "
             "streaming live changes)",
             Watch);
  cmd->add_option("--from_revision", f.from_revision,
                  "Start after this revision (0: all history)");
  cmd->add_flag("--follow", f.follow,
                "After the history, wait for and show live changes");
  cmd->add_option("--max_events", f.max_events,
                  "Stop after this many events (0: no limit)");
  cmd->add_option("--max_duration", f.max_duration,
                  "Stop after this long, exit 0 (default: no limit)")
      ->type_name("DURATION");

  cmd = leaf(&app, "backup",
             "Checkpoint the whole store to a new directory on the server's "
             "host",
             Backup);
  cmd->add_option("DESTINATION", f.destination,
                  "Absolute path on the server's host; must not exist, its "
                  "parent must")
      ->required();

  CLI::App* context = group(
      "context", "Named settings (address, token and TLS files) per server");
  leaf(context, "list", "List the contexts; * marks the current one",
       ContextList, Needs::kNothing);
  leaf(context, "use", "Make a context the current one", ContextUse,
       Needs::kNothing)
      ->add_option("NAME", f.context_name, "Context name")
      ->required();
  cmd = leaf(context, "set",
             "Create or update a context from --addr, --admin_token_file, "
             "--tls_ca, --tls_cert, --tls_key, --authorizer_token_file",
             ContextSet, Needs::kNothing);
  cmd->add_option("NAME", f.context_name, "Context name")->required();
  leaf(context, "delete", "Remove a context", ContextDelete, Needs::kNothing)
      ->add_option("NAME", f.context_name, "Context name")
      ->required();

  leaf(&app, "completion",
       "Print a shell completion script: source <(scopectl completion bash)",
       Completion, Needs::kNothing)
      ->add_option("SHELL", f.shell, "bash")
      ->check(CLI::IsMember({"bash"}))
      ->required();

  app.footer(kFooter);  // after the subcommands: they would inherit it

  try {
    std::vector<std::string> reversed(args.rbegin(), args.rend());
    app.parse(reversed);  // CLI11 takes the arguments last first
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e, out, err);
  } catch (const CLI::CallForVersion& e) {
    out << e.what() << "\n";
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    // CLI11 echoes unexpected arguments: a secret typed in the wrong place
    // must not land in a terminal log.
    std::ostringstream message;
    if (!MissingCommand(app, e, message)) app.exit(e, message, message);
    err << "scopectl: " << RedactSecretShapedRuns(message.str());
    return kExitUsage;
  }
  f.connection.set_addr(addr);
  f.connection.set_admin_token_file(admin_token_file);
  f.connection.set_authorizer_token_file(authorizer_token_file);
  f.connection.set_tls_ca(tls_ca);
  f.connection.set_tls_cert(tls_cert);
  f.connection.set_tls_key(tls_key);

  for (const Command& command : commands) {
    if (!command.app->parsed()) continue;
    std::string name = command.app->get_name();
    if (command.app->get_parent() != &app) {
      name = absl::StrCat(command.app->get_parent()->get_name(), " ", name);
    }
    OutputFormat format = OutputFormat::kTable;
    if (!f.output.empty()) ParseOutputFormat(f.output, &format);
    if (f.json) {
      if (!f.output.empty() && format != OutputFormat::kJson) {
        err << "scopectl: " << name << ": --json is -o json; not with -o "
            << f.output << "\n";
        return kExitUsage;
      }
      format = OutputFormat::kJson;
    }
    Session session(f, env, format, app, name, command.needs, out, err);
    return command.run(session);
  }
  err << "scopectl: no command given; see scopectl --help\n";
  return kExitUsage;
}

}  // namespace scopekeeper
