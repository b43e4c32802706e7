#include "server/auth/refusal_reporter.h"

#include <string>
#include <vector>

#include "base/clock.h"
#include "base/log_capture.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/auth/caller_auth.h"

namespace scopekeeper {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

constexpr char kToken[] = "0123456789abcdef0123456789abcdef";

class RefusalReporterTest : public ::testing::Test {
 protected:
  FakeClock clock_;
  LogCapture log_;
  RefusalReporter reporter_{"scopekeeper.v1.Admin", &clock_};
  CallerAuthenticator auth_{"admin", kToken, {"CN=ops,O=Example"}, &reporter_};
};

TEST_F(RefusalReporterTest, EachReasonIsCountedAndLogged) {
  EXPECT_FALSE(auth_.Authenticate(std::nullopt).ok());
  EXPECT_FALSE(auth_.Authenticate("Basic abc").ok());
  EXPECT_FALSE(auth_.Authenticate("Bearer wrong-token-value").ok());
  EXPECT_FALSE(
      auth_.Authenticate(std::nullopt, {"CN=ci-runner,O=Example"}).ok());
  // Accepted credentials are neither counted nor logged.
  EXPECT_TRUE(auth_.Authenticate(std::string("Bearer ") + kToken).ok());
  EXPECT_TRUE(auth_.Authenticate(std::nullopt, {"CN=ops,O=Example"}).ok());

  EXPECT_EQ(reporter_.count(AuthRefusal::kMissingCredential), 1u);
  EXPECT_EQ(reporter_.count(AuthRefusal::kMalformedAuthorization), 1u);
  EXPECT_EQ(reporter_.count(AuthRefusal::kWrongToken), 1u);
  EXPECT_EQ(reporter_.count(AuthRefusal::kSubjectNotListed), 1u);
  const std::string prefix =
      "level=warning msg=\"credential refused\" "
      "service=scopekeeper.v1.Admin reason=";
  EXPECT_THAT(
      log_.Lines(),
      ElementsAre(HasSubstr(prefix + "missing_credential suppressed=0\n"),
                  HasSubstr(prefix + "malformed_authorization suppressed=0\n"),
                  HasSubstr(prefix + "wrong_token suppressed=0\n"),
                  HasSubstr(prefix + "subject_not_listed "
                                     "subject=\"CN=ci-runner,O=Example\" "
                                     "suppressed=0\n")));
  for (const std::string& line : log_.Lines()) {
    EXPECT_THAT(line, Not(HasSubstr("wrong-token-value")));
    EXPECT_THAT(line, Not(HasSubstr(kToken)));
  }
}

TEST_F(RefusalReporterTest, AFloodIsOneLinePerSecondWithTheCountLeftOut) {
  for (int i = 0; i < 50; ++i) {
    EXPECT_FALSE(auth_.Authenticate("Bearer wrong").ok());
    clock_.Advance(absl::Milliseconds(10));  // 50 in 0.5 s
  }
  EXPECT_EQ(log_.Lines().size(), 1u);
  // A wrong token presented with an unlisted certificate names the subject.
  clock_.Advance(absl::Milliseconds(500));
  EXPECT_FALSE(auth_.Authenticate("Bearer wrong", {"CN=x,O=Example"}).ok());
  const std::vector<std::string> lines = log_.Lines();
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_THAT(lines[1],
              HasSubstr("reason=wrong_token subject=\"CN=x,O=Example\""
                        " suppressed=49\n"));
  EXPECT_EQ(reporter_.count(AuthRefusal::kWrongToken), 51u);
}

TEST_F(RefusalReporterTest, WithoutAnObserverNothingIsReported) {
  CallerAuthenticator silent("admin", kToken);
  EXPECT_FALSE(silent.Authenticate(std::nullopt).ok());
  EXPECT_THAT(log_.Lines(), IsEmpty());
}

}  // namespace
}  // namespace scopekeeper
