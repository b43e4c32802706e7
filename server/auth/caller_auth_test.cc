#include "server/auth/caller_auth.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <fstream>
#include <iterator>
#include <string>

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

TEST(CallerAuthTest, ReadsFirstLineOfTokenFile) {
  const std::string path = std::string(getenv("TEST_TMPDIR")) + "/token";
  std::ofstream(path) << "  my-token \nsecond line\n";
  auto t = LoadOrCreateAdminToken(path, "/nonexistent");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->token, "my-token");
  std::ofstream(path) << "\n";
  EXPECT_EQ(LoadOrCreateAdminToken(path, "").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(LoadOrCreateAdminToken(path + ".missing", "").status().code(),
            absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace scopekeeper
