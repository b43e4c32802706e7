#include "server/auth/caller_auth.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

TEST(CallerAuthTest, AcceptsOnlyTheBearerToken) {
  CallerAuthenticator auth("admin", "s3cret-token");
  auto ok = auth.Authenticate("Bearer s3cret-token");
  ASSERT_TRUE(ok.ok());
  EXPECT_FALSE(ok->empty());
  for (const char* bad :
       {"Bearer s3cret-tokeN", "Bearer s3cret-token ", "Bearer ",
        "bearer s3cret-token", "s3cret-token", "Basic s3cret-token"}) {
    auto r = auth.Authenticate(absl::string_view(bad));
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnauthenticated) << bad;
    EXPECT_THAT(r.status().message(), Not(HasSubstr("s3cret")));
  }
  EXPECT_EQ(auth.Authenticate(std::nullopt).status().code(),
            absl::StatusCode::kUnauthenticated);
}

TEST(CallerAuthTest, ListedClientCertificateSubjectIsAnAdminWithoutToken) {
  CallerAuthenticator auth("admin", "s3cret-token", {"CN=ops-admin,O=Example"});
  auto by_cert = auth.Authenticate(std::nullopt, {"CN=ops-admin,O=Example"});
  ASSERT_TRUE(by_cert.ok());
  EXPECT_EQ(*by_cert, "mtls:CN=ops-admin,O=Example");
  // Another subject falls back to the token.
  EXPECT_EQ(
      auth.Authenticate(std::nullopt, {"CN=gateway,O=Example"}).status().code(),
      absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(*auth.Authenticate("Bearer s3cret-token", {"CN=gateway,O=Example"}),
            "admin-token");
  // Without a configured list no subject is an admin.
  CallerAuthenticator token_only("admin", "s3cret-token");
  EXPECT_FALSE(
      token_only.Authenticate(std::nullopt, {"CN=ops-admin,O=Example"}).ok());
}

TEST(CallerAuthTest, RoleNamesTheIdentityAndTheErrors) {
  CallerAuthenticator auth("authorizer", "gw-token");
  EXPECT_EQ(*auth.Authenticate("Bearer gw-token"), "authorizer-token");
  const auto wrong = auth.Authenticate("Bearer admin-token");
  EXPECT_EQ(wrong.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(wrong.status().message(), HasSubstr("invalid authorizer token"));
  EXPECT_THAT(auth.Authenticate(std::nullopt).status().message(),
              HasSubstr("Bearer <authorizer token>"));
}

TEST(CallerAuthTest, WithoutTokenOnlyListedSubjectsGetIn) {
  CallerAuthenticator auth("authorizer", "", {"CN=gateway"});
  EXPECT_EQ(*auth.Authenticate(std::nullopt, {"CN=gateway"}),
            "mtls:CN=gateway");
  // No bearer value matches a token that was never set, the empty one
  // included.
  for (const char* bearer : {"Bearer ", "Bearer x"}) {
    EXPECT_EQ(auth.Authenticate(absl::string_view(bearer)).status().code(),
              absl::StatusCode::kUnauthenticated)
        << bearer;
  }
}

TEST(CallerAuthTest, SubjectListsSplitAtSemicolonsNotCommas) {
  // Subjects hold commas; a comma-split flag made multi-part subjects
  // impossible to list.
  EXPECT_THAT(ParseSubjectList("CN=ops-admin,O=Example; CN=backup,O=Example;"),
              ElementsAre("CN=ops-admin,O=Example", "CN=backup,O=Example"));
  EXPECT_THAT(ParseSubjectList(""), IsEmpty());
  EXPECT_THAT(ParseSubjectList(" ; "), IsEmpty());
  const CallerAuthenticator auth("admin", "",
                                 ParseSubjectList("CN=ops-admin,O=Example"));
  EXPECT_TRUE(auth.Authenticate(std::nullopt, {"CN=ops-admin,O=Example"}).ok());
  EXPECT_FALSE(auth.Authenticate(std::nullopt, {"CN=ops-admin"}).ok());
}

TEST(CallerAuthTest, GeneratesTokenFileOnceWithMode0600) {
  const std::string dir = std::string(getenv("TEST_TMPDIR")) + "/gen";
  mkdir(dir.c_str(), 0700);
  auto first = LoadOrCreateAdminToken("", dir);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->created);
  EXPECT_EQ(first->path, dir + "/admin_token");
  EXPECT_EQ(first->token.size(), 64u);
  struct stat st;
  ASSERT_EQ(stat(first->path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  auto second = LoadOrCreateAdminToken("", dir);
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->created);
  EXPECT_EQ(second->token, first->token);
}

// A crash while the token is being generated must not leave an empty or
// partial admin_token, which would stop every later start. The crash: a child
// process generates the token with a file-size limit of 0, so its first
// write() kills it (SIGXFSZ) after the file was created and before anything
// was written. The next start must then generate a whole token.
TEST(CallerAuthTest, CrashWhileGeneratingTokenLeavesNoEmptyTokenFile) {
  const std::string dir = std::string(getenv("TEST_TMPDIR")) + "/crashed";
  ASSERT_EQ(mkdir(dir.c_str(), 0700), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    const struct rlimit zero = {0, 0};
    setrlimit(RLIMIT_CORE, &zero);
    setrlimit(RLIMIT_FSIZE, &zero);
    (void)LoadOrCreateAdminToken("", dir);
    _exit(0);  // not reached: the write kills the child
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status)) << "child exited " << WEXITSTATUS(status);
  EXPECT_EQ(WTERMSIG(status), SIGXFSZ);

  auto restarted = LoadOrCreateAdminToken("", dir);
  ASSERT_TRUE(restarted.ok()) << restarted.status();
  EXPECT_TRUE(restarted->created);
  std::ifstream in(restarted->path);
  std::string content((std::istreambuf_iterator<char>(in)),
                      std::istreambuf_iterator<char>());
  EXPECT_EQ(content, restarted->token + "\n");
  EXPECT_EQ(restarted->token.size(), 64u);
}

constexpr char kStrongToken[] = "9f2c4e7a1b3d5f60718293a4b5c6d7e8f9012345";

// Writes `content` to a new file `name` in TEST_TMPDIR with `mode`.
std::string TokenFile(const std::string& name, const std::string& content,
                      mode_t mode = 0600) {
  const std::string path = std::string(getenv("TEST_TMPDIR")) + "/" + name;
  unlink(path.c_str());
  std::ofstream(path) << content;
  EXPECT_EQ(chmod(path.c_str(), mode), 0);
  return path;
}

TEST(CallerAuthTest, ReadsFirstLineOfTokenFile) {
  const std::string path =
      TokenFile("token", absl::StrCat("  ", kStrongToken, " \nsecond line\n"));
  auto t = LoadOrCreateAdminToken(path, "/nonexistent");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->token, kStrongToken);
  TokenFile("token", "\n");
  EXPECT_EQ(LoadOrCreateAdminToken(path, "").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(LoadOrCreateAdminToken(path + ".missing", "").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

// A token file others can read may have leaked; one others can write lets
// them choose the token.
TEST(CallerAuthTest, RefusesTokenFilesGroupOrOthersCanAccess) {
  for (const mode_t mode : {0644, 0640, 0604, 0620, 0602, 0660}) {
    const std::string path = TokenFile("open_token", kStrongToken, mode);
    const auto token = ReadTokenFile("--authorizer_token_file", path);
    ASSERT_FALSE(token.ok()) << std::oct << mode;
    EXPECT_EQ(token.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(token.status().message(),
                HasSubstr("--authorizer_token_file: " + path +
                          " is accessible by group or others"));
    EXPECT_THAT(token.status().message(), HasSubstr("chmod 600"));
    EXPECT_THAT(token.status().message(), Not(HasSubstr(kStrongToken)));
  }
  for (const mode_t mode : {0600, 0400}) {
    const std::string path = TokenFile("private_token", kStrongToken, mode);
    EXPECT_TRUE(ReadTokenFile("--authorizer_token_file", path).ok())
        << std::oct << mode;
  }
}

TEST(CallerAuthTest, RefusesWeakTokensWithoutQuotingThem) {
  const std::vector<std::pair<std::string, std::string>> weak = {
      {"gateway-token", "it has 13 characters; at least 32"},
      {"0123456789abcdef0123456789abcde", "it has 31 characters"},
      {std::string(40, 'a'), "one pattern of 1 characters repeated"},
      {"0123456789abcdef0123456789abcdef", "one pattern of 16 characters"},
      {"changeme-changeme-changeme-changeme-", "one pattern of 9 characters"},
      {std::string(30, 'a') + "bcdefghij", "too few different characters"},
  };
  for (const auto& [token, reason] : weak) {
    const std::string path = TokenFile("weak_token", token + "\n");
    const auto read = ReadTokenFile("--admin_token_file", path);
    ASSERT_FALSE(read.ok()) << token;
    EXPECT_EQ(read.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(read.status().message(),
                HasSubstr("--admin_token_file: the token in " + path +
                          " is too weak: "));
    EXPECT_THAT(read.status().message(), HasSubstr(reason)) << token;
    EXPECT_THAT(read.status().message(), HasSubstr("openssl rand -hex 32"));
    EXPECT_THAT(read.status().message(), Not(HasSubstr(token)));
  }
}

TEST(CallerAuthTest, RandomTokensAreStrongEnough) {
  // The shortest common form, 16 random bytes in hex (32 characters), has
  // the least character variety; none of many may be refused.
  for (int i = 0; i < 2000; ++i) {
    unsigned char raw[16];
    for (unsigned char& b : raw) b = static_cast<unsigned char>(rand());
    std::string hex;
    for (const unsigned char b : raw) {
      hex.push_back("0123456789abcdef"[b >> 4]);
      hex.push_back("0123456789abcdef"[b & 15]);
    }
    EXPECT_EQ(WeakTokenReason(hex), "") << hex;
  }
  EXPECT_EQ(WeakTokenReason("correct-horse-battery-staple-2026"), "");
  EXPECT_EQ(WeakTokenReason(kStrongToken), "");
}

// A FIFO given as a token file hung the server at start-up.
TEST(CallerAuthTest, RefusesATokenFifoWithoutWaiting) {
  const std::string path = std::string(getenv("TEST_TMPDIR")) + "/token_fifo";
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  const auto token = LoadOrCreateAdminToken(path, "");
  ASSERT_FALSE(token.ok());
  EXPECT_THAT(token.status().message(), HasSubstr("is a FIFO"));
}

}  // namespace
}  // namespace scopekeeper
