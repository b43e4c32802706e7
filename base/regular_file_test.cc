#include "base/regular_file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

using ::testing::HasSubstr;

std::string TestPath(const std::string& name) {
  return std::string(getenv("TEST_TMPDIR")) + "/" + name;
}

TEST(RegularFileTest, ReadsContentAndMode) {
  const std::string path = TestPath("plain");
  std::ofstream(path) << "hello\n";
  ASSERT_EQ(chmod(path.c_str(), 0640), 0);
  const auto file = ReadRegularFile("--thing", path);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->content, "hello\n");
  EXPECT_EQ(file->mode, 0640u);
}

// Opening a FIFO for reading blocks until a writer appears: the server hung
// at start-up on a FIFO given as a token or TLS file.
TEST(RegularFileTest, RefusesAFifoWithoutBlocking) {
  const std::string path = TestPath("fifo");
  ASSERT_EQ(mkfifo(path.c_str(), 0600), 0);
  const auto file = ReadRegularFile("--tls_key", path);
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(file.status().message(), HasSubstr("--tls_key"));
  EXPECT_THAT(file.status().message(), HasSubstr("is a FIFO"));
  EXPECT_THAT(file.status().message(), HasSubstr(path));
}

TEST(RegularFileTest, RefusesDirectoriesDevicesAndMissingFiles) {
  EXPECT_THAT(ReadRegularFile("--x", TestPath("")).status().message(),
              HasSubstr("is a directory"));
  EXPECT_THAT(ReadRegularFile("--x", "/dev/zero").status().message(),
              HasSubstr("is a character device"));
  EXPECT_THAT(ReadRegularFile("--x", TestPath("missing")).status().message(),
              HasSubstr("No such file"));
  EXPECT_THAT(ReadRegularFile("--x", "").status().message(),
              HasSubstr("no file named"));
}

TEST(RegularFileTest, RefusesFilesOverTheLimit) {
  const std::string path = TestPath("big");
  std::ofstream(path) << std::string(100, 'x');
  EXPECT_TRUE(ReadRegularFile("--x", path, 100).ok());
  const auto file = ReadRegularFile("--x", path, 99);
  ASSERT_FALSE(file.ok());
  EXPECT_THAT(file.status().message(), HasSubstr("too large (100 bytes"));
}

}  // namespace
}  // namespace scopekeeper
