#include "client/scopectl_files.h"

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

using ::testing::HasSubstr;

std::string TempPath(const std::string& name) {
  return absl::StrCat(std::getenv("TEST_TMPDIR"), "/files_", name);
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(ReadFileTest, ErrorsSayWhyAndNameThePath) {
  absl::StatusOr<std::string> missing =
      ReadFileContents("/nonexistent/token", "admin token");
  EXPECT_TRUE(absl::IsNotFound(missing.status()));
  EXPECT_EQ(std::string(missing.status().message()),
            "cannot read the admin token from /nonexistent/token: No such "
            "file or directory");
  absl::StatusOr<std::string> directory =
      ReadFileContents(std::getenv("TEST_TMPDIR"), "admin token");
  EXPECT_THAT(directory.status().message(), HasSubstr("Is a directory"));

  const std::string path = TempPath("token");
  std::ofstream(path) << "  tok3n  \nsecond line\n";
  EXPECT_EQ(*FirstLineOf(path, "admin token"), "tok3n");
  std::ofstream(path) << "\n";
  EXPECT_THAT(FirstLineOf(path, "admin token").status().message(),
              HasSubstr("(admin token) is empty"));
}

TEST(SecretFileTest, ExclusiveModeSixHundredAndRemovedUnlessWritten) {
  const std::string path = TempPath("secret");
  const mode_t umask = ::umask(0);  // the mode must not depend on it
  {
    absl::StatusOr<SecretFile> file = SecretFile::Create(path);
    ASSERT_TRUE(file.ok()) << file.status();
    ASSERT_TRUE(file->Write("rxs_ph_s3cret").ok());
  }
  struct stat st;
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600);
  ::umask(umask);
  EXPECT_EQ(Slurp(path), "rxs_ph_s3cret\n");

  // Never overwritten.
  absl::StatusOr<SecretFile> again = SecretFile::Create(path);
  EXPECT_TRUE(absl::IsAlreadyExists(again.status()));
  EXPECT_THAT(again.status().message(), HasSubstr("never overwritten"));
  EXPECT_EQ(Slurp(path), "rxs_ph_s3cret\n");

  // Created, then the call that makes the secret failed: no file is left.
  const std::string unused = TempPath("unused");
  { ASSERT_TRUE(SecretFile::Create(unused).ok()); }
  EXPECT_NE(::stat(unused.c_str(), &st), 0);

  EXPECT_THAT(SecretFile::Create("/nonexistent/dir/secret").status().message(),
              HasSubstr("No such file or directory"));
}

}  // namespace
}  // namespace scopekeeper
