// scopectl: the Scopekeeper command line, as a library (scopectl_main.cc
// only wires argv, the environment and the standard streams to it).
//
//   scopectl [--context NAME] [--addr HOST:PORT] [--admin_token_file PATH]
//            [--tls_ca PEM [--tls_cert PEM --tls_key PEM]]
//            [--authorizer_token_file PATH] [-o table|json|yaml] [--json]
//            [--timeout SECONDS] [--version] COMMAND ...
//
//   policy apply FILE          replace the policy with FILE (protobuf JSON
//                              Policy, e.g. examples/policies/rxscale.json)
//   policy get                 show the policy
//   key create --org ORG [--api API]... [--scope S]... [--bundle B]...
//              [--name N] [--environment E] [--installation_id ID]
//              [--expire_time RFC3339] [--secret_file PATH]
//                              create a key; prints its secret ONCE, or
//                              writes it to a new file (mode 0600)
//   key get KEY_ID             show a key
//   key list [--org ORG] [--include_revoked] [--unused_for DURATION]
//            [--page_size N] [--page_token TOKEN]
//                              every page, or one page when --page_size or
//                              --page_token is given
//   key grant KEY_ID [--scope S]... [--bundle B]... [--expire_time RFC3339]
//   key revoke-scopes KEY_ID [--scope S]... [--bundle B]...
//   key revoke KEY_ID [--reason TEXT]          (idempotent)
//   key rotate KEY_ID [--grace_period DURATION] [--secret_file PATH]
//                              new secret, printed ONCE (or to the file);
//                              the old one works for the grace period
//   app put APP_ID [--slug S] [--live_version_id V] [--scope S]...
//   install approve --org ORG --app_id APP_ID [--scope S]...
//                              the approved scopes (replaces the set)
//   install get --org ORG --app_id APP_ID
//   check (--key SECRET | --key_file PATH) [--org ORG] [--min_revision N]
//         [--trace_id ID] (--api API METHOD PATH | [--all_of S]...
//         [--any_of S]... | --authenticated_only)
//                              decide one request, by route or by an
//                              explicit requirement (no admin token)
//   batch [FILE | -]           decide JSON lines of AuthorizeRequest (proto
//                              JSON); one decision per line (no admin token)
//   describe (--key SECRET | --key_file PATH) [--org ORG]
//                              the key behind a secret (no admin token)
//   audit [--key_id ID] [--org ORG] [--after_revision N] [--page_size N]
//   watch [--from_revision N] [--follow] [--max_events N]
//         [--max_duration DURATION]
//                              the changes after revision N (0: all), then
//                              exit; with --follow, live changes too
//   backup DESTINATION         checkpoint the store to a new directory on
//                              the server's host (absolute path)
//   context list | use NAME | delete NAME
//   context set NAME [--addr A] [--admin_token_file F] [--tls_ca F]
//               [--tls_cert F --tls_key F] [--authorizer_token_file F]
//                              named settings in the config file
//   completion bash            a bash completion script
//
// Repeatable flags also take comma-separated lists (--scope a,b).
// Settings (address, token files, TLS files) come from the first of: the
// flag, the environment (SCOPEKEEPER_ADDR, SCOPEKEEPER_ADMIN_TOKEN_FILE,
// SCOPEKEEPER_AUTHORIZER_TOKEN_FILE, SCOPEKEEPER_TLS_CA,
// SCOPEKEEPER_TLS_CERT, SCOPEKEEPER_TLS_KEY), the context (--context, else
// the config's current context), the default (127.0.0.1:50051, plaintext).
// -o json prints the protobuf JSON mapping (as grpcurl: lowerCamelCase,
// defaults omitted); streams (watch, batch) print one object per line;
// -o yaml prints the same data as YAML.
//
// Exit status (kExit*): 0 success (`check`, `batch`: all allowed); 1 `check`
// or `batch` denied; 2 usage error (bad flags, arguments or settings,
// unreadable file, invalid JSON); 3 the call failed (the gRPC status code and
// message on stderr; `check`/`batch` then have no decision: treat as
// denied).
//
// Secrets: `key create` and `key rotate` print the new secret exactly once,
// labelled (or as "secret" in JSON/YAML), unless --secret_file takes it. The
// admin token, the authorizer token and the API key of `check`, `batch` and
// `describe` are never printed.
#ifndef SCOPEKEEPER_CLIENT_SCOPECTL_H_
#define SCOPEKEEPER_CLIENT_SCOPECTL_H_

#include <functional>
#include <istream>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "client/connection.h"
#include "client/scopectl_config.h"

namespace scopekeeper {

inline constexpr int kExitOk = 0;
inline constexpr int kExitDenied = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitRpcError = 3;

// What scopectl gets from its process. The library reads no environment
// variables itself: main() copies them here (empty: unset).
struct ScopectlEnvironment {
  std::string addr;                   // $SCOPEKEEPER_ADDR
  std::string admin_token_file;       // $SCOPEKEEPER_ADMIN_TOKEN_FILE
  std::string authorizer_token_file;  // $SCOPEKEEPER_AUTHORIZER_TOKEN_FILE
  std::string tls_ca;                 // $SCOPEKEEPER_TLS_CA
  std::string tls_cert;               // $SCOPEKEEPER_TLS_CERT
  std::string tls_key;                // $SCOPEKEEPER_TLS_KEY
  // The config file (DefaultConfigPath()); empty: none.
  std::string config_path;
  // Standard input, for `batch` (and `batch -`); null: none.
  std::istream* in = nullptr;
  // Opens the connection once the command line is valid. Default:
  // MakeGrpcConnection. Tests inject a MockConnection.
  std::function<std::shared_ptr<Connection>(const ConnectionOptions&)> connect;
};

// RunScopectl() parses `args` (without the program name), runs the command,
// writes results to `out` and diagnostics (prefixed "scopectl: ") to `err`,
// and returns the exit status above. `--help` and `--version` print to
// `out` and return 0.
int RunScopectl(const std::vector<std::string>& args,
                const ScopectlEnvironment& env, std::ostream& out,
                std::ostream& err);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_CLIENT_SCOPECTL_H_
