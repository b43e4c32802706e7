// AppDirectory: the marketplace apps and their installations in force.
//
// An app requests scopes; an organization's installation of it approves some.
// A key bound to an installation is granted
//   approved ∩ requested-by-the-app-now,
// so scopes an app requests later stay pending until approved again, and a
// scope the app drops is lost at once by every key of its installations.
//
// Immutable and shared like PolicySnapshot: the Registry builds a new one
// per change (there are few apps and installations) and swaps it in.
#ifndef SCOPEKEEPER_SERVER_POLICY_APP_DIRECTORY_H_
#define SCOPEKEEPER_SERVER_POLICY_APP_DIRECTORY_H_

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "proto/scopekeeper/v1/scopekeeper.pb.h"

namespace scopekeeper {

// Thread-safe: immutable.
class AppDirectory {
 public:
  AppDirectory() = default;

  // FindApp() returns the app, or nullptr.
  const v1::App* FindApp(absl::string_view app_id) const;
  // FindInstallation() returns the stored installation (approved scopes
  // only; see WithPending()), or nullptr.
  const v1::Installation* FindInstallation(
      absl::string_view installation_id) const;
  // FindInstallationOf() returns the installation of `app_id` by
  // `organization_id`, or nullptr.
  const v1::Installation* FindInstallationOf(absl::string_view organization_id,
                                             absl::string_view app_id) const;

  // GrantedScopes() is approved ∩ requested by the app now, in the app's
  // order; empty for an unknown installation or app.
  std::vector<std::string> GrantedScopes(
      absl::string_view installation_id) const;
  // WithPending() returns `installation` with pending_scopes filled in:
  // requested by the app now and not approved, in the app's order.
  v1::Installation WithPending(const v1::Installation& installation) const;

  // AppRevision() and InstallationRevision() are the revisions of the
  // records' last changes as given to WithApp()/WithInstallation() (0 when
  // unknown or absent): what a guarded write built from them compares.
  uint64_t AppRevision(absl::string_view app_id) const;
  uint64_t InstallationRevision(absl::string_view installation_id) const;

  // WithApp() and WithInstallation() return a copy with the record (last
  // changed at `revision`) added or replaced.
  std::shared_ptr<const AppDirectory> WithApp(v1::App app,
                                              uint64_t revision = 0) const;
  std::shared_ptr<const AppDirectory> WithInstallation(
      v1::Installation installation, uint64_t revision = 0) const;

 private:
  absl::flat_hash_map<std::string, v1::App> apps_;
  absl::flat_hash_map<std::string, v1::Installation> installations_;
  // (organization_id, app_id) -> installation_id.
  absl::flat_hash_map<std::pair<std::string, std::string>, std::string>
      installation_ids_;
  absl::flat_hash_map<std::string, uint64_t> app_revisions_;
  absl::flat_hash_map<std::string, uint64_t> installation_revisions_;
};

}  // namespace scopekeeper

#endif  // SCOPEKEEPER_SERVER_POLICY_APP_DIRECTORY_H_
