// scopectl: the Scopekeeper command line. Usage: client/scopectl.h or
// `scopectl --help`. This file only hands argv, the environment and the
// standard streams to RunScopectl().
#include <cstdlib>
#include <iostream>
#include <string>
#include <vector>

#include "client/scopectl.h"

int main(int argc, char** argv) {
  auto env_or_empty = [](const char* name) {
    const char* value = std::getenv(name);
    return std::string(value == nullptr ? "" : value);
  };
  scopekeeper::ScopectlEnvironment env;
  env.addr = env_or_empty("SCOPEKEEPER_ADDR");
  env.admin_token_file = env_or_empty("SCOPEKEEPER_ADMIN_TOKEN_FILE");
  return scopekeeper::RunScopectl(
      std::vector<std::string>(argv + 1, argv + argc), env, std::cout,
      std::cerr);
}
