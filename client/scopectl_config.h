// scopectl's settings: where the server is and which credential files to
// use, each taken from the first of its flag, its environment variable, the
// selected context of the config file, and the default.
//
// The config file holds named contexts (client/scopectl_config.proto) as
// protobuf JSON, e.g.
//
//   {"current_context": "prod",
//    "contexts": [{"name": "prod", "addr": "sk.prod.internal:50051",
//                  "admin_token_file": "/home/ops/.scopekeeper/prod.token",
//                  "tls_ca": "/etc/ssl/sk-prod-ca.pem"}]}
//
// Nothing here reads the environment: scopectl_main.cc passes the variables
// in (DefaultConfigPath(), the `env` layer of ResolveSettings()).
#ifndef SCOPEKEEPER_CLIENT_SCOPECTL_CONFIG_H_
#define SCOPEKEEPER_CLIENT_SCOPECTL_CONFIG_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "client/scopectl_config.pb.h"

namespace scopekeeper {

inline constexpr char kDefaultAddress[] = "127.0.0.1:50051";

// DefaultConfigPath() is the config file's path: `scopekeeper_config`
// ($SCOPEKEEPER_CONFIG) when set, else $XDG_CONFIG_HOME/scopekeeper/config,
// else $HOME/.config/scopekeeper/config; empty when all three are empty.
std::string DefaultConfigPath(absl::string_view scopekeeper_config,
                              absl::string_view xdg_config_home,
                              absl::string_view home);

// LoadConfig() reads the config file at `path`: an empty Config when it
// does not exist; INVALID_ARGUMENT naming the path when it is not a JSON
// Config or two contexts share a name; the OS error when unreadable.
absl::StatusOr<scopectl::Config> LoadConfig(const std::string& path);

// SaveConfig() replaces the file at `path` with `config` atomically (a
// temporary file renamed over it), mode 0600, creating missing parent
// directories with mode 0700.
absl::Status SaveConfig(const std::string& path,
                        const scopectl::Config& config);

// FindContext() is the context called `name`, or null.
const scopectl::Context* FindContext(const scopectl::Config& config,
                                     absl::string_view name);
scopectl::Context* FindContext(scopectl::Config* config,
                               absl::string_view name);

// SelectContext() is the context a command uses: `name` (--context) when
// given, else the config's current context, else none (null). NOT_FOUND
// naming the context and `path` when the chosen one is not in the config.
absl::StatusOr<const scopectl::Context*> SelectContext(
    const scopectl::Config& config, absl::string_view name,
    absl::string_view path);

// One resolved setting and where it came from ("--addr",
// "SCOPEKEEPER_ADDR", "context \"prod\"", "default"), for messages.
struct Setting {
  std::string value;
  std::string source;
};

// Every connection setting, resolved.
struct ConnectionSettings {
  Setting addr;
  Setting admin_token_file;
  Setting authorizer_token_file;
  Setting tls_ca;
  Setting tls_cert;
  Setting tls_key;
};

// ResolveSettings() takes each setting from the first layer that sets it:
// `flags` (the command line), `env` (the environment variables), `context`
// (may be null), then the default (kDefaultAddress for addr, else empty).
// The `name` fields of the layers are ignored.
ConnectionSettings ResolveSettings(const scopectl::Context& flags,
                                   const scopectl::Context& env,
                                   const scopectl::Context* context);

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_CLIENT_SCOPECTL_CONFIG_H_
