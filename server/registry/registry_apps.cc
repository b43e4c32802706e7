// Registry: marketplace apps and their installations.
#include <algorithm>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/redact.h"
#include "base/status_macros.h"
#include "base/time_util.h"
#include "server/policy/key_secret.h"
#include "server/policy/names.h"
#include "server/registry/registry.h"

namespace scopekeeper {

absl::StatusOr<v1::App> Registry::PutAppUnlogged(
    const v1::PutAppRequest& request, absl::string_view actor,
    uint64_t* revision) {
  const v1::App& app = request.app();
  SK_RETURN_IF_ERROR(ValidateId("app.app_id", app.app_id()));
  if (!app.slug().empty()) {
    SK_RETURN_IF_ERROR(ValidateId("app.slug", app.slug()));
  }
  if (!app.live_version_id().empty()) {
    SK_RETURN_IF_ERROR(
        ValidateId("app.live_version_id", app.live_version_id()));
  }
  // Validated against the serving state: first hold every change made
  // before this call, on any replica.
  SK_RETURN_IF_ERROR(committer_->CatchUp());
  SK_RETURN_IF_ERROR(ValidateScopeList(
      *state_->policy(), app.requested_scopes(), "app.requested_scopes",
      /*allow_undeclared=*/false));
  v1::App stored = app;
  stored.clear_requested_scopes();
  for (const std::string& scope : app.requested_scopes()) {
    AddUnique(stored.mutable_requested_scopes(), scope);
  }
  Prepared change;
  change.mutation.put_apps.push_back(stored);
  change.mutation.audit_event =
      NewAuditEvent("PutApp", actor, nullptr, AuditDetail(stored));
  // A barrier: the keys of the app's installations are recompiled with it.
  SK_ASSIGN_OR_RETURN(
      *revision,
      committer_->Commit(
          /*barrier=*/true,
          [&]() -> absl::StatusOr<std::optional<Prepared>> { return change; }));
  return stored;
}

absl::StatusOr<v1::Installation> Registry::ApproveInstallationUnlogged(
    const v1::ApproveInstallationRequest& request, absl::string_view actor,
    uint64_t* revision) {
  SK_RETURN_IF_ERROR(ValidateId("organization_id", request.organization_id()));
  SK_RETURN_IF_ERROR(ValidateId("app_id", request.app_id()));
  // Validated against the serving state: first hold every change made
  // before this call, on any replica.
  SK_RETURN_IF_ERROR(committer_->CatchUp());
  SK_RETURN_IF_ERROR(ValidateScopeList(
      *state_->policy(), request.approved_scopes(), "approved_scopes",
      /*allow_undeclared=*/false));
  v1::Installation installation;
  // A barrier: builds on the app directory in force.
  SK_ASSIGN_OR_RETURN(
      *revision,
      committer_->Commit(
          /*barrier=*/true, [&]() -> absl::StatusOr<std::optional<Prepared>> {
            const std::shared_ptr<const AppDirectory> apps = state_->apps();
            const v1::App* app = apps->FindApp(request.app_id());
            if (app == nullptr) {
              return absl::NotFoundError(
                  absl::StrCat("app_id: no app ", Quote(request.app_id())));
            }
            installation.Clear();                // a rebuild starts afresh
            uint64_t installation_revision = 0;  // 0: a new one
            if (const v1::Installation* existing = apps->FindInstallationOf(
                    request.organization_id(), request.app_id())) {
              installation.set_installation_id(existing->installation_id());
              installation_revision =
                  apps->InstallationRevision(existing->installation_id());
            } else {
              SK_ASSIGN_OR_RETURN(std::string id, GenerateId("inst"));
              installation.set_installation_id(std::move(id));
            }
            installation.set_app_id(request.app_id());
            installation.set_organization_id(request.organization_id());
            const auto& requested = app->requested_scopes();
            for (int i = 0; i < request.approved_scopes_size(); ++i) {
              const std::string& scope = request.approved_scopes(i);
              if (std::find(requested.begin(), requested.end(), scope) ==
                  requested.end()) {
                return absl::InvalidArgumentError(absl::StrCat(
                    "approved_scopes[", i, "]: app ", Quote(app->app_id()),
                    " does not request scope ", Quote(scope)));
              }
              AddUnique(installation.mutable_approved_scopes(), scope);
            }
            *installation.mutable_approve_time() = ToProtoTime(clock_->Now());
            Prepared change;
            // Guarded on the app it was checked against and the
            // installation it replaces. The app is written back
            // unchanged: that moves its revision, so two approvals of
            // one app on different replicas are serialized (otherwise
            // both could create an installation for the same
            // organization, under two ids).
            change.mutation.guards.push_back(
                {storage::Guard::Kind::kApp, app->app_id(),
                 apps->AppRevision(app->app_id())});
            change.mutation.guards.push_back(
                {storage::Guard::Kind::kInstallation,
                 installation.installation_id(), installation_revision});
            change.mutation.put_apps.push_back(*app);
            change.mutation.put_installations.push_back(installation);
            change.mutation.audit_event =
                NewAuditEvent("ApproveInstallation", actor, nullptr,
                              AuditDetail(installation));
            change.mutation.audit_event->set_organization_id(
                request.organization_id());
            return change;
          }));
  return state_->apps()->WithPending(installation);
}

absl::StatusOr<v1::Installation> Registry::GetInstallation(
    const v1::GetInstallationRequest& request) const {
  SK_RETURN_IF_ERROR(ValidateId("organization_id", request.organization_id()));
  SK_RETURN_IF_ERROR(ValidateId("app_id", request.app_id()));
  const std::shared_ptr<const AppDirectory> apps = state_->apps();
  const v1::Installation* installation =
      apps->FindInstallationOf(request.organization_id(), request.app_id());
  if (installation == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("no installation of app ", Quote(request.app_id()),
                     " by organization ", Quote(request.organization_id())));
  }
  return apps->WithPending(*installation);
}

}  // namespace scopekeeper
