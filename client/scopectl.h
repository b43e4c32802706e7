// scopectl: the Scopekeeper command line, as a library (scopectl_main.cc
// only wires argv, the environment and the standard streams to it).
//
//   scopectl [--addr=HOST:PORT] [--admin_token_file=PATH] [--json]
//            [--timeout=SECONDS] [--tls_ca=PEM [--tls_cert=PEM --tls_key=PEM]]
//            [--authorizer_token_file=PATH] COMMAND ...
//
//   policy apply FILE          replace the policy with FILE (protobuf JSON
//                              Policy, e.g. examples/policies/rxscale.json)
//   policy get                 show the policy
//   key create --org ORG [--api API]... [--scope S]... [--bundle B]...
//              [--name N] [--environment E] [--installation_id ID]
//              [--expire_time RFC3339]
//                              create a key; prints its secret ONCE
//   key get KEY_ID             show a key
//   key list [--org ORG] [--include_revoked]
//   key grant KEY_ID [--scope S]... [--bundle B]... [--expire_time RFC3339]
//   key revoke-scopes KEY_ID [--scope S]... [--bundle B]...
//   key revoke KEY_ID [--reason TEXT]          (idempotent)
//   key rotate KEY_ID [--grace_period DURATION]
//                              new secret, printed ONCE; the old one works
//                              for the grace period (e.g. 1h, 90s)
//   app put APP_ID [--slug S] [--live_version_id V] [--scope S]...
//   install approve --org ORG --app_id APP_ID [--scope S]...
//                              the approved scopes (replaces the set)
//   check (--key SECRET | --key_file PATH) --api API [--org ORG]
//         [--min_revision N] [--trace_id ID] METHOD PATH
//                              decide one HTTP request (no admin token)
//   describe (--key SECRET | --key_file PATH) [--org ORG]
//                              the key behind a secret (no admin token)
//   audit [--key_id ID] [--org ORG] [--after_revision N] [--page_size N]
//   watch [--from_revision N] [--max_events N] [--max_duration DURATION]
//                              stream changes after revision N (0: all)
//
// Repeatable flags also take comma-separated lists (--scope a,b).
// --addr defaults to $SCOPEKEEPER_ADDR, then 127.0.0.1:50051;
// --admin_token_file to $SCOPEKEEPER_ADMIN_TOKEN_FILE (first line of the
// file is the token; every command but `check` needs it).
// --json prints the response in the protobuf JSON mapping (proto field
// names, defaults included); `watch --json` prints one object per line.
//
// Exit status (kExit*): 0 success (`check`: allowed); 1 `check` denied;
// 2 usage error (bad flags or arguments, unreadable file, invalid JSON);
// 3 the call failed (the server's gRPC status code and message are printed
// on stderr; `check` then has no decision and must be treated as denied).
//
// Secrets: `key create` and `key rotate` print the new secret exactly once,
// labelled (or as "secret" in --json). The admin token, the authorizer
// token and the --key of `check` are never printed.
#ifndef SCOPEKEEPER_CLIENT_SCOPECTL_H_
#define SCOPEKEEPER_CLIENT_SCOPECTL_H_

#include <functional>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "client/connection.h"

namespace scopekeeper {

inline constexpr int kExitOk = 0;
inline constexpr int kExitDenied = 1;
inline constexpr int kExitUsage = 2;
inline constexpr int kExitRpcError = 3;

inline constexpr char kDefaultAddress[] = "127.0.0.1:50051";

// What scopectl gets from its process. The library reads no environment
// variables itself: main() copies them here.
struct ScopectlEnvironment {
  std::string addr;              // $SCOPEKEEPER_ADDR; empty: unset
  std::string admin_token_file;  // $SCOPEKEEPER_ADMIN_TOKEN_FILE
  // Opens the connection once the command line is valid. Default:
  // MakeGrpcConnection. Tests inject a MockConnection.
  std::function<std::shared_ptr<Connection>(const ConnectionOptions&)> connect;
};

// RunScopectl() parses `args` (without the program name), runs the command,
// writes results to `out` and diagnostics (prefixed "scopectl: ") to `err`,
// and returns the exit status above. `--help` prints usage to `out` and
// returns 0.
int RunScopectl(const std::vector<std::string>& args,
                const ScopectlEnvironment& env, std::ostream& out,
                std::ostream& err);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_CLIENT_SCOPECTL_H_
