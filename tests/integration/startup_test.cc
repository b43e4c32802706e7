// Start-up safety of the real server: what it refuses, and why, before it
// serves anything. Each test starts servers in-process on real ports.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server.h"

namespace scopekeeper {
namespace {

using ::testing::HasSubstr;

constexpr char kPolicyFile[] = "examples/policies/rxscale.json";

std::string TestDir(absl::string_view name) {
  return absl::StrCat(getenv("TEST_TMPDIR"), "/", name);
}

ServerOptions Options(absl::string_view name) {
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.data_dir = TestDir(name);
  options.policy_file = kPolicyFile;
  return options;
}

TEST(StartupTest, SecondServerOnTheSamePortRefusesToStart) {
  // gRPC's SO_REUSEPORT default let a second server bind the port: the
  // kernel then split connections between two independent databases.
  auto first = ScopekeeperServer::Start(Options("port_first"));
  ASSERT_TRUE(first.ok()) << first.status();
  ServerOptions second = Options("port_second");
  second.listen = (*first)->address();
  auto refused = ScopekeeperServer::Start(second);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("address already in use"));
  EXPECT_THAT(refused.status().message(), HasSubstr((*first)->address()));
}

TEST(StartupTest, SecondServerOnTheSameMetricsPortRefusesToStart) {
  ServerOptions first_options = Options("metrics_first");
  first_options.metrics_listen = "127.0.0.1:0";
  auto first = ScopekeeperServer::Start(first_options);
  ASSERT_TRUE(first.ok()) << first.status();
  ServerOptions second = Options("metrics_second");
  second.metrics_listen = absl::StrCat("127.0.0.1:", (*first)->metrics_port());
  auto refused = ScopekeeperServer::Start(second);
  ASSERT_FALSE(refused.ok());
  EXPECT_THAT(refused.status().message(), HasSubstr("--metrics_listen"));
}

}  // namespace
}  // namespace scopekeeper
