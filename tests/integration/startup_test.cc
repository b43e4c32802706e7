// Start-up safety of the real server: what it refuses, and why, before it
// serves anything. Each test starts servers in-process on real ports.
#include <grpcpp/grpcpp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/server.h"

namespace scopekeeper {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

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

std::string ReadAll(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Writes `content` to `path` (replacing it) with `mode`.
std::string WriteFile(const std::string& path, const std::string& content,
                      mode_t mode = 0600) {
  unlink(path.c_str());
  std::ofstream(path) << content;
  EXPECT_EQ(chmod(path.c_str(), mode), 0) << path;
  return path;
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
  EXPECT_THAT(refused.status().message(), HasSubstr("address already in use"));
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

// The server's TLS files were handed to gRPC unchecked: any problem ended in
// "cannot listen on ...: address in use or invalid".
class TlsFilesTest : public ::testing::Test {
 protected:
  static std::string Dir() { return TestDir("startup_pki"); }

  static void Run(const std::string& command) {
    ASSERT_EQ(std::system(absl::StrCat(command, " >/dev/null 2>&1").c_str()), 0)
        << command;
  }

  // <name>.pem and <name>.key, self-signed.
  static void MakeCert(const std::string& name) {
    Run(absl::StrCat("openssl req -x509 -newkey ec -pkeyopt ",
                     "ec_paramgen_curve:prime256v1 -nodes -keyout ", Dir(), "/",
                     name, ".key -out ", Dir(), "/", name,
                     ".pem -days 1 -subj '/CN=localhost'"));
  }

  static void SetUpTestSuite() {
    fs::create_directories(Dir());
    MakeCert("server");
    MakeCert("other");
    Run(absl::StrCat("openssl pkey -in ", Dir(), "/server.key -aes256 ",
                     "-passout pass:secret-passphrase -out ", Dir(),
                     "/encrypted.key"));
    WriteFile(Dir() + "/garbage.pem", "this is not PEM\n", 0600);
  }

  void SetUp() override {
    options_ = Options(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    options_.tls_cert_file = Dir() + "/server.pem";
    options_.tls_key_file = Dir() + "/server.key";
  }

  absl::Status Start() { return ScopekeeperServer::Start(options_).status(); }

  ServerOptions options_;
};

TEST_F(TlsFilesTest, MatchingFilesStart) { EXPECT_TRUE(Start().ok()); }

TEST_F(TlsFilesTest, CertificateThatIsNotPemIsNamed) {
  options_.tls_cert_file = Dir() + "/garbage.pem";
  EXPECT_THAT(Start().message(),
              AllOf(HasSubstr("--tls_cert: " + Dir() + "/garbage.pem"),
                    HasSubstr("holds no PEM certificate"),
                    Not(HasSubstr("cannot listen"))));
}

TEST_F(TlsFilesTest, KeyThatIsNotPemIsNamed) {
  options_.tls_key_file = Dir() + "/garbage.pem";
  EXPECT_THAT(Start().message(),
              AllOf(HasSubstr("--tls_key: " + Dir() + "/garbage.pem"),
                    HasSubstr("holds no PEM private key")));
}

TEST_F(TlsFilesTest, KeyOfAnotherCertificateIsNamed) {
  options_.tls_key_file = Dir() + "/other.key";
  const absl::Status status = Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(),
              AllOf(HasSubstr(Dir() + "/other.key"),
                    HasSubstr("does not belong to the certificate in "
                              "--tls_cert " +
                              Dir() + "/server.pem")));
}

TEST_F(TlsFilesTest, EncryptedKeyIsNamedWithoutPrompting) {
  options_.tls_key_file = Dir() + "/encrypted.key";
  EXPECT_THAT(Start().message(), HasSubstr("holds an encrypted private key"));
}

TEST_F(TlsFilesTest, UnreadableOrMissingFilesAreNamed) {
  options_.tls_key_file = Dir() + "/missing.key";
  EXPECT_THAT(Start().message(),
              AllOf(HasSubstr("--tls_key"), HasSubstr("No such file")));
}

TEST_F(TlsFilesTest, ClientCaThatIsNotPemIsNamed) {
  options_.tls_client_ca_file = Dir() + "/garbage.pem";
  EXPECT_THAT(Start().message(), AllOf(HasSubstr("--tls_client_ca"),
                                       HasSubstr("holds no PEM certificate")));
}

TEST_F(TlsFilesTest, KeyOthersCanReadIsRefused) {
  const std::string key = Dir() + "/world_readable.key";
  WriteFile(key, ReadAll(Dir() + "/server.key"), 0644);
  options_.tls_key_file = key;
  EXPECT_THAT(Start().message(),
              AllOf(HasSubstr("--tls_key"),
                    HasSubstr("accessible by others (mode 0644)")));
}

}  // namespace
}  // namespace scopekeeper
