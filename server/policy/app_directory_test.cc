#include "server/policy/app_directory.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace scopekeeper {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

v1::App App(std::vector<std::string> requested) {
  v1::App app;
  app.set_app_id("app_scribe");
  app.set_slug("scribe");
  for (auto& s : requested) app.add_requested_scopes(s);
  return app;
}

v1::Installation Installation(std::vector<std::string> approved) {
  v1::Installation inst;
  inst.set_installation_id("inst_1");
  inst.set_app_id("app_scribe");
  inst.set_organization_id("org_clinic");
  for (auto& s : approved) inst.add_approved_scopes(s);
  return inst;
}

TEST(AppDirectoryTest, GrantedIsApprovedIntersectRequestedNow) {
  auto dir = AppDirectory()
                 .WithApp(App({"read:patients", "read:notes"}))
                 ->WithInstallation(Installation({"read:patients"}));
  EXPECT_THAT(dir->GrantedScopes("inst_1"), ElementsAre("read:patients"));
  EXPECT_THAT(
      dir->WithPending(*dir->FindInstallation("inst_1")).pending_scopes(),
      ElementsAre("read:notes"));

  // The app drops read:patients: the installation grants nothing now, and
  // nothing is pending.
  auto dropped = dir->WithApp(App({}));
  EXPECT_THAT(dropped->GrantedScopes("inst_1"), IsEmpty());
  EXPECT_THAT(dropped->WithPending(*dropped->FindInstallation("inst_1"))
                  .pending_scopes(),
              IsEmpty());
  // The old snapshot is unchanged.
  EXPECT_THAT(dir->GrantedScopes("inst_1"), ElementsAre("read:patients"));
}

TEST(AppDirectoryTest, LookupsByIdAndByOrganizationAndApp) {
  auto dir =
      AppDirectory().WithApp(App({}))->WithInstallation(Installation({}));
  ASSERT_NE(dir->FindInstallationOf("org_clinic", "app_scribe"), nullptr);
  EXPECT_EQ(
      dir->FindInstallationOf("org_clinic", "app_scribe")->installation_id(),
      "inst_1");
  EXPECT_EQ(dir->FindInstallationOf("org_other", "app_scribe"), nullptr);
  EXPECT_EQ(dir->FindInstallation("inst_2"), nullptr);
  EXPECT_EQ(dir->FindApp("app_other"), nullptr);
  EXPECT_THAT(dir->GrantedScopes("inst_2"), IsEmpty());
}

TEST(AppDirectoryTest, StoredInstallationsNeverKeepPendingScopes) {
  v1::Installation inst = Installation({"a"});
  inst.add_pending_scopes("stale");
  auto dir = AppDirectory().WithApp(App({"a"}))->WithInstallation(inst);
  EXPECT_THAT(dir->FindInstallation("inst_1")->pending_scopes(), IsEmpty());
}

}  // namespace
}  // namespace scopekeeper
