#include "client/scopectl_config.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "client/scopectl_files.h"
#include "google/protobuf/util/json_util.h"

namespace scopekeeper {
namespace {

absl::Status OsError(absl::string_view what, const std::string& path) {
  return absl::FailedPreconditionError(
      absl::StrCat("cannot ", what, " ", path, ": ", std::strerror(errno)));
}

// MakeParentDirectories() creates the missing directories above `path`,
// mode 0700.
absl::Status MakeParentDirectories(const std::string& path) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    const std::string dir = path.substr(0, slash);
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return OsError("create the directory", dir);
    }
  }
  return absl::OkStatus();
}

}  // namespace

std::string DefaultConfigPath(absl::string_view scopekeeper_config,
                              absl::string_view xdg_config_home,
                              absl::string_view home) {
  if (!scopekeeper_config.empty()) return std::string(scopekeeper_config);
  if (!xdg_config_home.empty()) {
    return absl::StrCat(xdg_config_home, "/scopekeeper/config");
  }
  if (!home.empty()) return absl::StrCat(home, "/.config/scopekeeper/config");
  return "";
}

absl::StatusOr<scopectl::Config> LoadConfig(const std::string& path) {
  scopectl::Config config;
  absl::StatusOr<std::string> text = ReadFileContents(path, "config");
  if (absl::IsNotFound(text.status())) return config;
  if (!text.ok()) return text.status();
  const auto parsed =
      google::protobuf::util::JsonStringToMessage(*text, &config);
  if (!parsed.ok()) {
    // The file holds paths and addresses, no secrets: the parser's message
    // (which quotes the text around the error) may be shown.
    return absl::InvalidArgumentError(absl::StrCat(
        path,
        " is not a scopectl config (JSON): ", parsed.message().as_string()));
  }
  absl::flat_hash_set<std::string> names;
  for (const scopectl::Context& context : config.contexts()) {
    if (context.name().empty() || !names.insert(context.name()).second) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": context names must be unique and non-empty: \"",
                       context.name(), "\""));
    }
  }
  return config;
}

absl::Status SaveConfig(const std::string& path,
                        const scopectl::Config& config) {
  google::protobuf::util::JsonPrintOptions options;
  options.add_whitespace = true;
  options.preserve_proto_field_names = true;  // as the flags are spelled
  std::string json;
  const auto printed =
      google::protobuf::util::MessageToJsonString(config, &json, options);
  if (!printed.ok()) {
    return absl::InternalError(absl::StrCat("cannot encode the config: ",
                                            printed.message().as_string()));
  }
  if (absl::Status made = MakeParentDirectories(path); !made.ok()) return made;
  const std::string temporary = absl::StrCat(path, ".tmp.", ::getpid());
  const int fd =
      ::open(temporary.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return OsError("write", temporary);
  bool ok = ::write(fd, json.data(), json.size()) ==
            static_cast<ssize_t>(json.size());
  ok = ::fsync(fd) == 0 && ok;
  ok = ::close(fd) == 0 && ok;
  if (!ok || ::rename(temporary.c_str(), path.c_str()) != 0) {
    const absl::Status error = OsError("write", path);
    ::unlink(temporary.c_str());
    return error;
  }
  return absl::OkStatus();
}

const scopectl::Context* FindContext(const scopectl::Config& config,
                                     absl::string_view name) {
  for (const scopectl::Context& context : config.contexts()) {
    if (context.name() == name) return &context;
  }
  return nullptr;
}

scopectl::Context* FindContext(scopectl::Config* config,
                               absl::string_view name) {
  for (scopectl::Context& context : *config->mutable_contexts()) {
    if (context.name() == name) return &context;
  }
  return nullptr;
}

absl::StatusOr<const scopectl::Context*> SelectContext(
    const scopectl::Config& config, absl::string_view name,
    absl::string_view path) {
  const bool from_flag = !name.empty();
  if (!from_flag) name = config.current_context();
  if (name.empty()) return nullptr;
  const scopectl::Context* context = FindContext(config, name);
  if (context == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(from_flag ? "--context" : "the current context", " \"",
                     name, "\" is not in ", path.empty() ? "the config" : path,
                     " (scopectl context list)"));
  }
  return context;
}

ConnectionSettings ResolveSettings(const scopectl::Context& flags,
                                   const scopectl::Context& env,
                                   const scopectl::Context* context) {
  const std::string context_source =
      context == nullptr ? ""
                         : absl::StrCat("context \"", context->name(), "\"");
  // Each setting: its getter, flag and environment variable.
  auto resolve = [&](const std::string& (scopectl::Context::*field)() const,
                     absl::string_view flag, absl::string_view variable,
                     absl::string_view fallback = "") {
    if (!(flags.*field)().empty()) {
      return Setting{(flags.*field)(), std::string(flag)};
    }
    if (!(env.*field)().empty()) {
      return Setting{(env.*field)(), std::string(variable)};
    }
    if (context != nullptr && !(context->*field)().empty()) {
      return Setting{(context->*field)(), context_source};
    }
    return Setting{std::string(fallback), "default"};
  };
  ConnectionSettings settings;
  settings.addr = resolve(&scopectl::Context::addr, "--addr",
                          "SCOPEKEEPER_ADDR", kDefaultAddress);
  settings.admin_token_file =
      resolve(&scopectl::Context::admin_token_file, "--admin_token_file",
              "SCOPEKEEPER_ADMIN_TOKEN_FILE");
  settings.authorizer_token_file =
      resolve(&scopectl::Context::authorizer_token_file,
              "--authorizer_token_file", "SCOPEKEEPER_AUTHORIZER_TOKEN_FILE");
  settings.tls_ca =
      resolve(&scopectl::Context::tls_ca, "--tls_ca", "SCOPEKEEPER_TLS_CA");
  settings.tls_cert = resolve(&scopectl::Context::tls_cert, "--tls_cert",
                              "SCOPEKEEPER_TLS_CERT");
  settings.tls_key =
      resolve(&scopectl::Context::tls_key, "--tls_key", "SCOPEKEEPER_TLS_KEY");
  return settings;
}

}  // namespace scopekeeper
