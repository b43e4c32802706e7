#include "server/caller_auth.h"

#include <sys/stat.h>

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

using ::testing::HasSubstr;
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
