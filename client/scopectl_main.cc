// scopectl: the Scopekeeper command line. Usage: client/scopectl.h or
// `scopectl --help`. This file only hands argv, the environment and the
// standard streams to RunScopectl(): the one place scopectl reads the
// environment.
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "client/scopectl.h"
#include "client/scopectl_config.h"

int main(int argc, char** argv) {
  auto env_or_empty = [](const char* name) {
    const char* value = std::getenv(name);
    return std::string(value == nullptr ? "" : value);
  };
  scopekeeper::ScopectlEnvironment env;
  env.addr = env_or_empty("SCOPEKEEPER_ADDR");
  env.admin_token_file = env_or_empty("SCOPEKEEPER_ADMIN_TOKEN_FILE");
  env.authorizer_token_file = env_or_empty("SCOPEKEEPER_AUTHORIZER_TOKEN_FILE");
  env.tls_ca = env_or_empty("SCOPEKEEPER_TLS_CA");
  env.tls_cert = env_or_empty("SCOPEKEEPER_TLS_CERT");
  env.tls_key = env_or_empty("SCOPEKEEPER_TLS_KEY");
  env.config_path = scopekeeper::DefaultConfigPath(
      env_or_empty("SCOPEKEEPER_CONFIG"), env_or_empty("XDG_CONFIG_HOME"),
      env_or_empty("HOME"));
  env.in = &std::cin;
  return scopekeeper::RunScopectl(
      std::vector<std::string>(argv + 1, argv + argc), env, std::cout,
      std::cerr);
}
