#include "client/scopectl_config.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  return absl::StrCat(std::getenv("TEST_TMPDIR"), "/config_", name);
}

TEST(DefaultConfigPathTest, ScopekeeperConfigThenXdgThenHome) {
  EXPECT_EQ(DefaultConfigPath("/etc/sk.json", "/xdg", "/home/ops"),
            "/etc/sk.json");
  EXPECT_EQ(DefaultConfigPath("", "/xdg", "/home/ops"),
            "/xdg/scopekeeper/config");
  EXPECT_EQ(DefaultConfigPath("", "", "/home/ops"),
            "/home/ops/.config/scopekeeper/config");
  EXPECT_EQ(DefaultConfigPath("", "", ""), "");
}

TEST(ConfigFileTest, MissingIsEmptySavedIsPrivateAndReadsBack) {
  const std::string path = TempPath("home/.config/scopekeeper/config");
  absl::StatusOr<scopectl::Config> empty = LoadConfig(path);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->contexts_size(), 0);

  scopectl::Config config;
  config.set_current_context("prod");
  scopectl::Context* prod = config.add_contexts();
  prod->set_name("prod");
  prod->set_addr("sk.prod:443");
  prod->set_tls_ca("/etc/ca.pem");
  ASSERT_TRUE(SaveConfig(path, config).ok());  // creates the directories
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  ASSERT_EQ(::stat(TempPath("home/.config/scopekeeper").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700);

  absl::StatusOr<scopectl::Config> loaded = LoadConfig(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(loaded->current_context(), "prod");
  ASSERT_EQ(loaded->contexts_size(), 1);
  EXPECT_EQ(loaded->contexts(0).addr(), "sk.prod:443");
  EXPECT_EQ(loaded->contexts(0).tls_ca(), "/etc/ca.pem");
}

TEST(ConfigFileTest, InvalidFilesAreErrorsNamingThePath) {
  const std::string path = TempPath("bad");
  std::ofstream(path) << R"({"contexts": [{"name": "a", "adress": "x"}]})";
  EXPECT_THAT(LoadConfig(path).status().message(),
              HasSubstr(path + " is not a scopectl config"));
  std::ofstream(path) << R"({"contexts": [{"name": "a"}, {"name": "a"}]})";
  EXPECT_THAT(LoadConfig(path).status().message(),
              HasSubstr("context names must be unique"));
}

TEST(SelectContextTest, FlagThenCurrentThenNone) {
  scopectl::Config config;
  config.add_contexts()->set_name("prod");
  config.add_contexts()->set_name("staging");
  EXPECT_EQ(*SelectContext(config, "", "/c"), nullptr);
  config.set_current_context("prod");
  EXPECT_EQ((*SelectContext(config, "", "/c"))->name(), "prod");
  EXPECT_EQ((*SelectContext(config, "staging", "/c"))->name(), "staging");
  EXPECT_EQ(std::string(SelectContext(config, "dev", "/c").status().message()),
            "--context \"dev\" is not in /c (scopectl context list)");
  config.set_current_context("gone");
  EXPECT_THAT(SelectContext(config, "", "/c").status().message(),
              HasSubstr("the current context \"gone\" is not in /c"));
}

TEST(ResolveSettingsTest, FlagBeatsEnvironmentBeatsContextBeatsDefault) {
  scopectl::Context flags, env, context;
  context.set_name("prod");
  context.set_addr("ctx:1");
  context.set_admin_token_file("/ctx/token");
  context.set_tls_ca("/ctx/ca.pem");
  env.set_addr("env:1");
  env.set_admin_token_file("/env/token");
  flags.set_addr("flag:1");

  ConnectionSettings s = ResolveSettings(flags, env, &context);
  EXPECT_EQ(s.addr.value, "flag:1");
  EXPECT_EQ(s.addr.source, "--addr");
  EXPECT_EQ(s.admin_token_file.value, "/env/token");
  EXPECT_EQ(s.admin_token_file.source, "SCOPEKEEPER_ADMIN_TOKEN_FILE");
  EXPECT_EQ(s.tls_ca.value, "/ctx/ca.pem");
  EXPECT_EQ(s.tls_ca.source, "context \"prod\"");
  EXPECT_EQ(s.tls_cert.value, "");

  s = ResolveSettings(scopectl::Context(), scopectl::Context(), &context);
  EXPECT_EQ(s.addr.value, "ctx:1");
  EXPECT_EQ(s.admin_token_file.value, "/ctx/token");
  s = ResolveSettings(scopectl::Context(), scopectl::Context(), nullptr);
  EXPECT_EQ(s.addr.value, kDefaultAddress);
  EXPECT_EQ(s.addr.source, "default");
}

}  // namespace
}  // namespace scopekeeper
