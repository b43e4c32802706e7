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
#include "proto/scopekeeper/v1/scopekeeper.grpc.pb.h"
#include "server/server.h"

namespace scopekeeper {
namespace {

namespace fs = std::filesystem;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kPolicyFile[] = "examples/policies/rxscale.json";
constexpr char kOtherPolicyFile[] = "examples/policies/maxcare.json";
constexpr char kStrongToken[] = "startup-test-token-8c1f0e6a9b2d4735e1f0";

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

std::string Fifo(absl::string_view name) {
  const std::string path = TestDir(name);
  unlink(path.c_str());
  EXPECT_EQ(mkfifo(path.c_str(), 0600), 0) << path;
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

// Flag values were taken as given: a sample rate of 1.5 or NaN, a message
// limit of 0 (every request refused), a retry interval of 0 or infinity.
TEST(StartupTest, OutOfRangeFlagValuesAreRefusedNamingTheFlag) {
  const std::vector<std::pair<std::function<void(ServerOptions&)>, std::string>>
      cases = {
          {[](ServerOptions& o) { o.max_receive_message_bytes = 0; },
           "--max_receive_message_bytes: must be positive"},
          {[](ServerOptions& o) { o.max_receive_message_bytes = -5; },
           "--max_receive_message_bytes: must be positive"},
          {[](ServerOptions& o) { o.decision_log_sample_rate = 1.5; },
           "--decision_log_sample_rate: must be between 0 and 1"},
          {[](ServerOptions& o) { o.decision_log_sample_rate = -0.1; },
           "--decision_log_sample_rate: must be between 0 and 1"},
          {[](ServerOptions& o) { o.decision_log_sample_rate = std::nan(""); },
           "--decision_log_sample_rate: must be between 0 and 1 (a fraction "
           "of decisions), is nan"},
          {[](ServerOptions& o) {
             o.usage_flush_interval = absl::ZeroDuration();
           },
           "usage_flush_interval: must be a positive, finite duration"},
          {[](ServerOptions& o) { o.store_retry_interval = -absl::Seconds(1); },
           "--store_retry_interval: must be a finite duration of 0 or more"},
          {[](ServerOptions& o) {
             o.store_retry_interval = absl::InfiniteDuration();
           },
           "--store_retry_interval: must be a finite duration of 0 or more"},
          {[](ServerOptions& o) { o.key_cache_capacity = -1; },
           "--key_cache_capacity: must be 0 (unlimited) or positive"},
          {[](ServerOptions& o) { o.listen = "127.0.0.1"; },
           "--listen: expected HOST:PORT"},
          {[](ServerOptions& o) { o.listen = "127.0.0.1:65536"; },
           "--listen: expected HOST:PORT"},
          {[](ServerOptions& o) { o.metrics_listen = "localhost:http"; },
           "--metrics_listen: expected HOST:PORT"},
          {[](ServerOptions& o) { o.server_threads = 0; },
           "server_threads: must be at least 1"},
      };
  int i = 0;
  for (const auto& [set, message] : cases) {
    ServerOptions options = Options(absl::StrCat("bad_flag_", i++));
    set(options);
    const auto server = ScopekeeperServer::Start(options);
    ASSERT_FALSE(server.ok()) << message;
    EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument)
        << server.status();
    EXPECT_THAT(server.status().message(), HasSubstr(message));
    // Refused before the data dir is touched.
    EXPECT_FALSE(fs::exists(options.data_dir)) << message;
  }
}

// Token files: an operator's token file must be private and strong.
class TokenFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    name_ = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    options_ = Options(name_);
  }
  std::string Path(absl::string_view what) {
    return TestDir(absl::StrCat(name_, "-", what));
  }

  std::string name_;
  ServerOptions options_;
};

TEST_F(TokenFileTest, AdminTokenFileOthersCanReadIsRefused) {
  options_.admin_token_file = WriteFile(Path("admin"), kStrongToken, 0644);
  const auto server = ScopekeeperServer::Start(options_);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(server.status().message(),
              AllOf(HasSubstr("--admin_token_file"),
                    HasSubstr("accessible by group or others (mode 0644)"),
                    Not(HasSubstr(kStrongToken))));
}

TEST_F(TokenFileTest, GeneratedAdminTokenOthersCanReadIsRefused) {
  auto first = ScopekeeperServer::Start(options_);
  ASSERT_TRUE(first.ok()) << first.status();
  const std::string token_path = (*first)->admin_token_path();
  first->reset();
  ASSERT_EQ(chmod(token_path.c_str(), 0644), 0);
  const auto server = ScopekeeperServer::Start(options_);
  ASSERT_FALSE(server.ok());
  EXPECT_THAT(server.status().message(),
              AllOf(HasSubstr(token_path), HasSubstr("mode 0644")));
}

TEST_F(TokenFileTest, WeakAuthorizerTokenIsRefused) {
  options_.authorizer_token_file =
      WriteFile(Path("authorizer"), "gateway-token\n");
  const auto server = ScopekeeperServer::Start(options_);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(server.status().message(),
              AllOf(HasSubstr("--authorizer_token_file"),
                    HasSubstr("too weak: it has 13 characters; at least 32"),
                    Not(HasSubstr("gateway-token\""))));
}

TEST_F(TokenFileTest, SameTokenForAdminAndAuthorizerIsRefused) {
  options_.admin_token_file = WriteFile(Path("admin"), kStrongToken);
  options_.authorizer_token_file =
      WriteFile(Path("authorizer"), absl::StrCat(kStrongToken, "\n"));
  const auto server = ScopekeeperServer::Start(options_);
  ASSERT_FALSE(server.ok());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      server.status().message(),
      AllOf(HasSubstr("--authorizer_token_file"),
            HasSubstr("holds the admin token"), Not(HasSubstr(kStrongToken))));
}

TEST_F(TokenFileTest, PrivateStrongTokensStart) {
  options_.admin_token_file = WriteFile(Path("admin"), kStrongToken, 0400);
  options_.authorizer_token_file =
      WriteFile(Path("authorizer"), "another-token-3b9e1c7f52a04d86e2b1c0f9");
  const auto server = ScopekeeperServer::Start(options_);
  EXPECT_TRUE(server.ok()) << server.status();
}

// A FIFO given as a file hung the start forever (opening it for reading
// waits for a writer). Each must be refused at once, naming the flag.
TEST(StartupTest, FifoGivenAsAFileIsRefusedNotWaitedOn) {
  const std::vector<std::pair<std::function<void(ServerOptions&)>, std::string>>
      cases = {
          {[](ServerOptions& o) { o.admin_token_file = Fifo("fifo_admin"); },
           "--admin_token_file"},
          {[](ServerOptions& o) {
             o.authorizer_token_file = Fifo("fifo_authorizer");
           },
           "--authorizer_token_file"},
          {[](ServerOptions& o) { o.policy_file = Fifo("fifo_policy"); },
           "--policy_file"},
          {[](ServerOptions& o) {
             o.tls_cert_file = Fifo("fifo_cert");
             o.tls_key_file = Fifo("fifo_key");
           },
           "--tls_cert"},
      };
  int i = 0;
  for (const auto& [set, flag] : cases) {
    ServerOptions options = Options(absl::StrCat("fifo_", i++));
    set(options);
    const auto server = ScopekeeperServer::Start(options);
    ASSERT_FALSE(server.ok()) << flag;
    EXPECT_THAT(server.status().message(),
                AllOf(HasSubstr(flag), HasSubstr("is a FIFO")));
  }
}

// The stored policy and the audit trail, read over gRPC from a server
// started on `data_dir` without a policy file.
struct StoredState {
  std::vector<std::string> apis;
  int policy_events = 0;
};

StoredState ReadStoredState(const std::string& data_dir) {
  ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.data_dir = data_dir;
  auto server = ScopekeeperServer::Start(options);
  EXPECT_TRUE(server.ok()) << server.status();
  if (!server.ok()) return {};
  std::string token = ReadAll((*server)->admin_token_path());
  token.erase(token.find('\n'));
  auto admin = v1::Admin::NewStub(grpc::CreateChannel(
      (*server)->address(), grpc::InsecureChannelCredentials()));
  StoredState state;
  grpc::ClientContext policy_context;
  policy_context.AddMetadata("authorization", "Bearer " + token);
  v1::Policy policy;
  EXPECT_TRUE(
      admin->GetPolicy(&policy_context, v1::GetPolicyRequest(), &policy).ok());
  for (const v1::Api& api : policy.apis()) state.apis.push_back(api.name());
  grpc::ClientContext audit_context;
  audit_context.AddMetadata("authorization", "Bearer " + token);
  v1::ListAuditEventsRequest request;
  request.set_page_size(1000);
  v1::ListAuditEventsResponse events;
  EXPECT_TRUE(admin->ListAuditEvents(&audit_context, request, &events).ok());
  for (const v1::AuditEvent& event : events.events()) {
    if (event.action() == "PutPolicy") ++state.policy_events;
  }
  return state;
}

// A start that failed on a credential or on the port had already replaced
// the stored policy with --policy_file and written its audit event.
TEST(StartupTest, FailedStartLeavesTheStoredPolicyAlone) {
  const ServerOptions first = Options("policy_kept");
  ASSERT_TRUE(ScopekeeperServer::Start(first).ok());
  const StoredState before = ReadStoredState(first.data_dir);
  ASSERT_EQ(before.apis, (std::vector<std::string>{"external-pharmacy",
                                                   "management", "public"}));
  ASSERT_EQ(before.policy_events, 1);

  auto occupied = ScopekeeperServer::Start(Options("policy_kept_port"));
  ASSERT_TRUE(occupied.ok()) << occupied.status();
  const std::vector<std::pair<std::function<void(ServerOptions&)>, std::string>>
      failures = {
          {[](ServerOptions& o) {
             o.authorizer_token_file =
                 WriteFile(TestDir("policy_kept_authorizer"), "short\n");
           },
           "--authorizer_token_file"},
          {[](ServerOptions& o) {
             o.admin_token_file =
                 WriteFile(TestDir("policy_kept_admin"), kStrongToken, 0644);
           },
           "--admin_token_file"},
          {[&occupied](ServerOptions& o) { o.listen = (*occupied)->address(); },
           "address already in use"},
      };
  for (const auto& [set, cause] : failures) {
    ServerOptions options = first;
    options.policy_file = kOtherPolicyFile;
    set(options);
    const auto refused = ScopekeeperServer::Start(options);
    ASSERT_FALSE(refused.ok()) << cause;
    EXPECT_THAT(refused.status().message(), HasSubstr(cause));
    const StoredState after = ReadStoredState(first.data_dir);
    EXPECT_EQ(after.apis, before.apis) << cause;
    EXPECT_EQ(after.policy_events, 1) << cause;
  }
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

// The data dir holds the key hashes, the audit trail and perhaps the admin
// token.
TEST(StartupTest, DataDirOthersCanReadIsMadePrivate) {
  const ServerOptions options = Options("open_data_dir");
  fs::create_directories(options.data_dir);
  ASSERT_EQ(chmod(options.data_dir.c_str(), 0755), 0);
  ::testing::internal::CaptureStderr();
  const auto server = ScopekeeperServer::Start(options);
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_EQ(fs::status(options.data_dir).permissions(), fs::perms::owner_all);
  EXPECT_THAT(log, HasSubstr("was accessible by group or others (mode 0755); "
                             "changed to 0700"));
}

// A data dir whose db/ is gone must not start as a new, empty store: every
// key, revocation and the policy would silently be gone.
TEST(StartupTest, DataDirThatLostItsDatabaseRefusesToStart) {
  ServerOptions options = Options("lost_db");
  options.admin_token_file = WriteFile(TestDir("lost_db_token"), kStrongToken);
  {
    auto server = ScopekeeperServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
  }
  fs::remove_all(options.data_dir + "/db");
  auto refused = ScopekeeperServer::Start(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(refused.status().message(),
              AllOf(HasSubstr(options.data_dir + "/db is missing"),
                    HasSubstr("Restore db/ from a backup"),
                    HasSubstr("--accept_data_loss")));
  // An empty db/ is no better.
  fs::create_directories(options.data_dir + "/db");
  EXPECT_EQ(ScopekeeperServer::Start(options).status().code(),
            absl::StatusCode::kDataLoss);

  options.accept_data_loss = true;
  ::testing::internal::CaptureStderr();
  auto accepted = ScopekeeperServer::Start(options);
  const std::string log = ::testing::internal::GetCapturedStderr();
  ASSERT_TRUE(accepted.ok()) << accepted.status();
  EXPECT_THAT(log, HasSubstr("ACCEPTED DATA LOSS"));
}

// The brief's case: the generated admin_token stays, db/ goes.
TEST(StartupTest, AdminTokenWithoutDatabaseRefusesToStart) {
  const ServerOptions options = Options("token_without_db");
  {
    auto server = ScopekeeperServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
  }
  fs::remove_all(options.data_dir + "/db");
  fs::remove(options.data_dir + "/store_created");
  const auto refused = ScopekeeperServer::Start(options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(refused.status().message(),
              HasSubstr("(" + options.data_dir + "/admin_token exists)"));
}

TEST(StartupTest, NewDataDirStartsAndRestarts) {
  const ServerOptions options = Options("fresh");
  {
    auto server = ScopekeeperServer::Start(options);
    ASSERT_TRUE(server.ok()) << server.status();
  }
  EXPECT_TRUE(fs::exists(options.data_dir + "/store_created"));
  auto restarted = ScopekeeperServer::Start(options);
  EXPECT_TRUE(restarted.ok()) << restarted.status();
}

}  // namespace
}  // namespace scopekeeper
