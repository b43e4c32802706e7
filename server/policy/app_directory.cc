#include "server/policy/app_directory.h"

#include <algorithm>

namespace scopekeeper {
namespace {

bool Contains(const google::protobuf::RepeatedPtrField<std::string>& list,
              const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

}  // namespace

const v1::App* AppDirectory::FindApp(absl::string_view app_id) const {
  const auto it = apps_.find(app_id);
  return it == apps_.end() ? nullptr : &it->second;
}

const v1::Installation* AppDirectory::FindInstallation(
    absl::string_view installation_id) const {
  const auto it = installations_.find(installation_id);
  return it == installations_.end() ? nullptr : &it->second;
}

const v1::Installation* AppDirectory::FindInstallationOf(
    absl::string_view organization_id, absl::string_view app_id) const {
  const auto it = installation_ids_.find(
      std::make_pair(std::string(organization_id), std::string(app_id)));
  return it == installation_ids_.end() ? nullptr : FindInstallation(it->second);
}

std::vector<std::string> AppDirectory::GrantedScopes(
    absl::string_view installation_id) const {
  std::vector<std::string> out;
  const v1::Installation* installation = FindInstallation(installation_id);
  if (installation == nullptr) return out;
  const v1::App* app = FindApp(installation->app_id());
  if (app == nullptr) return out;
  for (const std::string& scope : app->requested_scopes()) {
    if (Contains(installation->approved_scopes(), scope)) out.push_back(scope);
  }
  return out;
}

v1::Installation AppDirectory::WithPending(
    const v1::Installation& installation) const {
  v1::Installation out = installation;
  out.clear_pending_scopes();
  if (const v1::App* app = FindApp(installation.app_id())) {
    for (const std::string& scope : app->requested_scopes()) {
      if (!Contains(installation.approved_scopes(), scope)) {
        out.add_pending_scopes(scope);
      }
    }
  }
  return out;
}

uint64_t AppDirectory::AppRevision(absl::string_view app_id) const {
  const auto it = app_revisions_.find(app_id);
  return it == app_revisions_.end() ? 0 : it->second;
}

uint64_t AppDirectory::InstallationRevision(
    absl::string_view installation_id) const {
  const auto it = installation_revisions_.find(installation_id);
  return it == installation_revisions_.end() ? 0 : it->second;
}

std::shared_ptr<const AppDirectory> AppDirectory::WithApp(
    v1::App app, uint64_t revision) const {
  auto out = std::make_shared<AppDirectory>(*this);
  out->app_revisions_[app.app_id()] = revision;
  std::string id = app.app_id();
  out->apps_[std::move(id)] = std::move(app);
  return out;
}

std::shared_ptr<const AppDirectory> AppDirectory::WithInstallation(
    v1::Installation installation, uint64_t revision) const {
  auto out = std::make_shared<AppDirectory>(*this);
  out->installation_revisions_[installation.installation_id()] = revision;
  installation.clear_pending_scopes();
  out->installation_ids_[std::make_pair(installation.organization_id(),
                                        installation.app_id())] =
      installation.installation_id();
  std::string id = installation.installation_id();
  out->installations_[std::move(id)] = std::move(installation);
  return out;
}

}  // namespace scopekeeper
